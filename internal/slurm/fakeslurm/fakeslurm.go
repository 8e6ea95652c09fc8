// Package fakeslurm is a recording stand-in for Slurm's scontrol and sinfo,
// for tests and benchmarks of code that drives Slurm through
// internal/slurm.Client. One program (cmd/fakeslurm) acts as scontrol or
// sinfo by argv[0]; its state lives in the directory named by
// $FAKESLURM_DIR:
//
//	nodes.json   the node table ({"nodes":[slurm.Node...]})
//	calls.jsonl  one JSON line per invocation: argv, time, exit status
//	faults.json  optional fault knobs, consumed as they fire (see Faults)
//	lock         flock(2)ed around every read-modify-write, so concurrent
//	             invocations from many processes are safe
//
// It prints the exact text of real Slurm 22.05 (`scontrol -o show nodes`
// lines, error messages and exit codes recorded in
// internal/slurm/testdata), so the same parser reads both.
//
// Simplifications (documented, deliberate):
//   - state=power_down / power_down_force / power_down_asap on a node that
//     is not ALLOCATED/MIXED powers it down at once (real Slurm shows
//     POWERING_DOWN for SuspendTimeout first): flags POWERED_DOWN, no
//     POWERING_UP/NOT_RESPONDING/DRAIN, NodeAddr and NodeHostName reset to
//     the node name (as the brief for this fake asked; real 22.05 was seen
//     to KEEP the NodeAddr after a power-down and to reset it to slurm.conf's
//     value only on `scontrol reconfigure`). On a busy node power_down only adds POWER_DOWN;
//     power_down_force makes it IDLE and powers it down.
//   - state=power_up on a powered-down node goes straight to
//     POWERING_UP+NOT_RESPONDING (no SuspendProgram/ResumeProgram runs).
//   - `scontrol show node(s)` always prints the one-line (-o) format.
//   - sinfo ignores its options and prints "NAME state+flags" (lower case,
//     like -N -h -O NodeList,StateComplete).
//   - A node's partition is taken from Node.Partitions; New sets it to the
//     name's first dash-separated component ("aws-spot-3" -> "aws").
package fakeslurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// EnvDir names the state directory.
const EnvDir = "FAKESLURM_DIR"

// Node is the fake's node record (the slurm package's type).
type Node = slurm.Node

// Call is one recorded invocation.
type Call struct {
	Argv []string  `json:"argv"` // argv[0] is the base name: "scontrol" or "sinfo"
	Time time.Time `json:"time"`
	Exit int       `json:"exit"` // -1: hung (then killed)
	PID  int       `json:"pid"`
}

// Kind classifies a call the way faults do: "show", "update", "ping",
// "sinfo", or the first scontrol word.
func (c Call) Kind() string { return kindOf(c.Argv) }

// Faults are injected failures, consumed as they fire. Counters are per
// command kind ("show", "update", "ping", "sinfo", or "*" for any).
type Faults struct {
	Fail     map[string]int `json:"fail,omitempty"`      // the next N calls of a kind exit with ExitCode, printing Stderr
	Hang     map[string]int `json:"hang,omitempty"`      // the next N calls of a kind sleep until killed
	ExitCode int            `json:"exit_code,omitempty"` // for Fail; 0 means 1
	Stderr   string         `json:"stderr,omitempty"`    // for Fail; "" means a slurm_update-style error
}

type table struct {
	Nodes []Node `json:"nodes"`
}

// Main runs the fake as scontrol or sinfo (chosen by filepath.Base(args[0]))
// and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		fmt.Fprintf(stderr, "fakeslurm: $%s is not set\n", EnvDir)
		return 2
	}
	if len(args) == 0 {
		args = []string{"scontrol"}
	}
	argv := slices.Clone(args)
	argv[0] = filepath.Base(argv[0])
	s := &store{dir: dir}
	unlock, err := s.lock()
	if err != nil {
		fmt.Fprintf(stderr, "fakeslurm: %v\n", err)
		return 2
	}
	kind := kindOf(argv)
	hang, fail, f, err := s.takeFault(kind)
	if err != nil {
		unlock()
		fmt.Fprintf(stderr, "fakeslurm: %v\n", err)
		return 2
	}
	if hang {
		_ = s.record(Call{Argv: argv, Time: time.Now().UTC(), Exit: -1, PID: os.Getpid()})
		unlock()
		for {
			time.Sleep(time.Hour) // until the caller kills us
		}
	}
	code := 0
	if fail {
		code = f.ExitCode
		if code == 0 {
			code = 1
		}
		msg := f.Stderr
		if msg == "" {
			msg = "slurm_update error: Unable to contact slurm controller (connect failure)"
		}
		fmt.Fprintln(stderr, msg)
	} else {
		code = s.exec(argv, stdout, stderr)
	}
	if err := s.record(Call{Argv: argv, Time: time.Now().UTC(), Exit: code, PID: os.Getpid()}); err != nil {
		fmt.Fprintf(stderr, "fakeslurm: %v\n", err)
	}
	unlock()
	return code
}

func kindOf(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	if filepath.Base(argv[0]) == "sinfo" {
		return "sinfo"
	}
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		return strings.ToLower(a)
	}
	return ""
}

type store struct{ dir string }

func (s *store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func (s *store) load() (*table, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "nodes.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &table{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading node table: %w", err)
	}
	var t table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", filepath.Join(s.dir, "nodes.json"), err)
	}
	return &t, nil
}

func (s *store) save(t *table) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding node table: %w", err)
	}
	return writeAtomic(filepath.Join(s.dir, "nodes.json"), b)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

func (s *store) record(c Call) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "calls.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("recording call: %w", err)
	}
	defer f.Close()
	_, err = f.Write(append(b, '\n'))
	return err
}

func (s *store) loadFaults() (Faults, error) {
	var f Faults
	b, err := os.ReadFile(filepath.Join(s.dir, "faults.json"))
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("reading faults: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("decoding faults.json: %w", err)
	}
	return f, nil
}

// takeFault consumes one hang or fail fault for kind (or "*"), if any.
func (s *store) takeFault(kind string) (hang, fail bool, f Faults, err error) {
	f, err = s.loadFaults()
	if err != nil {
		return false, false, f, err
	}
	take := func(m map[string]int) bool {
		for _, k := range []string{kind, "*"} {
			if m[k] > 0 {
				m[k]--
				return true
			}
		}
		return false
	}
	hang = take(f.Hang)
	if !hang {
		fail = take(f.Fail)
	}
	if hang || fail {
		b, _ := json.Marshal(f)
		err = writeAtomic(filepath.Join(s.dir, "faults.json"), b)
	}
	return hang, fail, f, err
}

// exec emulates one command against the table.
func (s *store) exec(argv []string, stdout, stderr io.Writer) int {
	if argv[0] == "sinfo" {
		t, err := s.load()
		if err != nil {
			fmt.Fprintf(stderr, "sinfo: %v\n", err)
			return 1
		}
		for _, n := range t.Nodes {
			fmt.Fprintf(stdout, "%s %s\n", n.Name, strings.ToLower(StateString(n)))
		}
		return 0
	}
	var words []string
	for _, a := range argv[1:] {
		if a == "-o" || a == "--oneliner" || a == "-a" || a == "--all" {
			continue
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		fmt.Fprintln(stderr, "fakeslurm: no scontrol command given")
		return 1
	}
	switch strings.ToLower(words[0]) {
	case "ping":
		fmt.Fprintln(stdout, "Slurmctld(primary) at fakeslurm is UP")
		return 0
	case "show":
		if len(words) < 2 {
			fmt.Fprintln(stderr, "fakeslurm: show what?")
			return 1
		}
		switch strings.ToLower(words[1]) {
		case "node", "nodes":
			return s.show(words[2:], stdout, stderr)
		case "config":
			// The keys slurm-ec2 reads, in 22.05's layout.
			fmt.Fprintf(stdout, "Configuration data as of %s\n", time.Now().Format("2006-01-02T15:04:05"))
			for _, kv := range [][2]string{{"ClusterName", "fakeslurm"}, {"PrivateData", "cloud"},
				{"SLURM_VERSION", "22.05.8"}, {"SlurmctldHost[0]", "fakeslurm(127.0.0.1)"}} {
				fmt.Fprintf(stdout, "%-23s = %s\n", kv[0], kv[1])
			}
			fmt.Fprintln(stdout, "\nSlurmctld(primary) at fakeslurm is UP")
			return 0
		case "hostnames":
			if len(words) < 3 {
				return 1
			}
			names, err := expand(words[2])
			if err != nil {
				fmt.Fprintf(stderr, "Invalid hostlist: %s\n", words[2])
				return 1
			}
			for _, n := range names {
				fmt.Fprintln(stdout, n)
			}
			return 0
		}
	case "update":
		return s.update(words[1:], stderr)
	}
	fmt.Fprintf(stderr, "invalid keyword: %s\n", words[0])
	return 1
}

func (s *store) show(args []string, stdout, stderr io.Writer) int {
	t, err := s.load()
	if err != nil {
		fmt.Fprintf(stderr, "slurm_load_node error: %v\n", err)
		return 1
	}
	if len(args) == 0 {
		if len(t.Nodes) == 0 {
			fmt.Fprintln(stdout, "No nodes in the system")
		}
		for _, n := range t.Nodes {
			writeNode(stdout, n)
		}
		return 0
	}
	idx := index(t)
	names, err := expand(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "Invalid node name specified\n")
		return 1
	}
	code := 0
	for _, name := range names {
		i, ok := idx[name]
		if !ok {
			fmt.Fprintf(stdout, "Node %s not found\n", name)
			code = 1
			continue
		}
		writeNode(stdout, t.Nodes[i])
	}
	return code
}

func index(t *table) map[string]int {
	m := make(map[string]int, len(t.Nodes))
	for i, n := range t.Nodes {
		m[n.Name] = i
	}
	return m
}

// Error texts of real 22.05 scontrol (stderr, exit 1).
const (
	msgInvalidNode  = "slurm_update error: Invalid node name specified"
	msgNeedReason   = "You must specify a reason when DOWNING or DRAINING a node. Request denied"
	msgInvalidState = "Request aborted\nValid states are: NoResp DRAIN FAIL FUTURE RESUME POWER_DOWN POWER_UP UNDRAIN\nNot all states are valid given a node's prior state"
)

func (s *store) update(args []string, stderr io.Writer) int {
	kv := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(stderr, "invalid keyword: %s\n", a)
			return 1
		}
		kv[strings.ToLower(k)] = strings.Trim(v, `"`)
	}
	if id, ok := kv["jobid"]; ok {
		// Jobs are not modelled: a job update is recorded (calls.jsonl) and accepted.
		if _, err := strconv.Atoi(id); err != nil {
			fmt.Fprintf(stderr, "Invalid job id specified\n")
			return 1
		}
		return 0
	}
	names, err := expand(kv["nodename"])
	if err != nil || len(names) == 0 {
		fmt.Fprintln(stderr, msgInvalidNode)
		return 1
	}
	var addrs, hosts []string
	if v, ok := kv["nodeaddr"]; ok {
		addrs = strings.Split(v, ",")
		if len(addrs) != len(names) {
			fmt.Fprintln(stderr, msgInvalidNode)
			return 1
		}
	}
	if v, ok := kv["nodehostname"]; ok {
		hosts = strings.Split(v, ",")
		if len(hosts) != len(names) {
			fmt.Fprintln(stderr, msgInvalidNode)
			return 1
		}
	}
	state, hasState := kv["state"]
	state = strings.ToUpper(state)
	reason := kv["reason"]
	if hasState {
		switch state {
		case "DOWN", "DRAIN", "FAIL":
			if reason == "" {
				fmt.Fprintln(stderr, msgNeedReason)
				return 1
			}
		case "RESUME", "IDLE", "UNDRAIN", "POWER_DOWN", "POWER_DOWN_FORCE", "POWER_DOWN_ASAP", "POWER_UP", "NORESP", "FUTURE":
		default:
			fmt.Fprintf(stderr, "Invalid input: state=%s\n%s\n", strings.ToLower(state), msgInvalidState)
			return 1
		}
	}
	t, err := s.load()
	if err != nil {
		fmt.Fprintf(stderr, "slurm_update error: %v\n", err)
		return 1
	}
	idx := index(t)
	for _, n := range names {
		if _, ok := idx[n]; !ok {
			fmt.Fprintln(stderr, msgInvalidNode)
			return 1
		}
	}
	now := time.Now().Truncate(time.Second)
	for k, name := range names {
		n := &t.Nodes[idx[name]]
		if addrs != nil {
			n.Addr = addrs[k]
		}
		if hosts != nil {
			n.Hostname = hosts[k]
		}
		if hasState {
			applyState(n, state, reason, now)
		} else if reason != "" {
			setReason(n, reason, now)
		}
	}
	if err := s.save(t); err != nil {
		fmt.Fprintf(stderr, "slurm_update error: %v\n", err)
		return 1
	}
	return 0
}

func setReason(n *Node, reason string, now time.Time) {
	n.Reason, n.ReasonUser, n.ReasonTime = reason, "root", now
}

func clearReason(n *Node) { n.Reason, n.ReasonUser, n.ReasonTime = "", "", time.Time{} }

func addFlag(n *Node, f string) {
	if !slices.Contains(n.Flags, f) {
		n.Flags = append(n.Flags, f)
	}
}

func delFlags(n *Node, fs ...string) {
	n.Flags = slices.DeleteFunc(n.Flags, func(f string) bool { return slices.Contains(fs, f) })
}

func busy(n *Node) bool { return n.State == "ALLOCATED" || n.State == "MIXED" }

func powerDown(n *Node) {
	delFlags(n, "POWERING_UP", "POWER_UP", "NOT_RESPONDING", "POWER_DOWN", "POWERING_DOWN", "COMPLETING")
	addFlag(n, "POWERED_DOWN")
	n.Addr, n.Hostname = n.Name, n.Name
	if busy(n) {
		n.State = "IDLE"
	}
}

func applyState(n *Node, state, reason string, now time.Time) {
	switch state {
	case "DOWN", "FAIL":
		n.State = "DOWN"
		setReason(n, reason, now)
	case "DRAIN":
		addFlag(n, "DRAIN")
		setReason(n, reason, now)
	case "UNDRAIN":
		delFlags(n, "DRAIN")
		if n.State != "DOWN" {
			clearReason(n)
		}
	case "RESUME", "IDLE":
		if n.State == "DOWN" {
			n.State = "IDLE"
		}
		delFlags(n, "DRAIN")
		clearReason(n)
	case "POWER_DOWN":
		if busy(n) {
			addFlag(n, "POWER_DOWN")
			return
		}
		powerDown(n)
		if reason != "" {
			setReason(n, reason, now)
		}
	case "POWER_DOWN_FORCE":
		powerDown(n)
		if reason != "" {
			setReason(n, reason, now)
		}
	case "POWER_DOWN_ASAP":
		if busy(n) {
			addFlag(n, "DRAIN")
			addFlag(n, "POWER_DOWN")
			setReason(n, "POWER_DOWN_ASAP", now)
			return
		}
		powerDown(n)
		delFlags(n, "DRAIN")
	case "POWER_UP":
		if slices.Contains(n.Flags, "POWERED_DOWN") {
			delFlags(n, "POWERED_DOWN")
			addFlag(n, "NOT_RESPONDING")
			addFlag(n, "POWERING_UP")
		}
	case "NORESP":
		addFlag(n, "NOT_RESPONDING")
	case "FUTURE":
		n.State = "FUTURE"
	}
}

// flagOrder is the order the fake prints flags in (real Slurm's order
// varies: IDLE+CLOUD+NOT_RESPONDING+POWERING_UP but
// IDLE+CLOUD+POWERED_DOWN+NOT_RESPONDING; parsers must not care).
var flagOrder = []string{"CLOUD", "COMPLETING", "DRAIN", "FAIL", "MAINTENANCE", "REBOOT_REQUESTED",
	"NOT_RESPONDING", "POWER_DOWN", "POWER_UP", "POWERED_DOWN", "POWERING_DOWN", "POWERING_UP"}

// StateString renders a node's State field like scontrol ("IDLE+CLOUD+POWERED_DOWN").
func StateString(n Node) string {
	fs := slices.Clone(n.Flags)
	slices.SortStableFunc(fs, func(a, b string) int {
		ia, ib := slices.Index(flagOrder, a), slices.Index(flagOrder, b)
		if ia < 0 {
			ia = len(flagOrder)
		}
		if ib < 0 {
			ib = len(flagOrder)
		}
		return ia - ib
	})
	base := n.State
	if base == "" {
		base = "UNKNOWN"
	}
	return strings.Join(append([]string{base}, fs...), "+")
}

// writeNode prints one node exactly like 22.05's `scontrol -o show node`
// for a 1-CPU cloud node (fields we do not model are the real defaults).
func writeNode(w io.Writer, n Node) {
	parts := "(null)"
	if len(n.Partitions) > 0 {
		parts = strings.Join(n.Partitions, ",")
	}
	fmt.Fprintf(w, "NodeName=%s CoresPerSocket=1  CPUAlloc=0 CPUEfctv=1 CPUTot=1 CPULoad=N/A AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=%s NodeHostName=%s  RealMemory=100 AllocMem=0 FreeMem=N/A Sockets=1 Boards=1 State=%s ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=%s  BootTime=None SlurmdStartTime=None LastBusyTime=Unknown CfgTRES=cpu=1,mem=100M,billing=1 AllocTRES= CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
		n.Name, n.Addr, n.Hostname, StateString(n), parts)
	if n.Reason != "" {
		user := n.ReasonUser
		if user == "" {
			user = "root"
		}
		ts := n.ReasonTime
		if ts.IsZero() {
			ts = time.Unix(0, 0)
		}
		fmt.Fprintf(w, " Reason=%s [%s@%s]", n.Reason, user, ts.In(time.Local).Format("2006-01-02T15:04:05"))
	}
	fmt.Fprintln(w)
}
