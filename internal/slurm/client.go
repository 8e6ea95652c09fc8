package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/trust"
)

// Batch limits for `scontrol update`. Measured on real 22.05: one call with
// 1,000 node names, 1,000 addresses and 1,000 hostnames (36 KB of
// arguments) is accepted and applied in 7-10 ms, order kept; a 59 KB
// nodename= argument (5,000 entries) is accepted in 10 ms; a 142 KB one
// cannot even be exec'd ("Argument list too long", E2BIG): the hard limit is
// Linux's MAX_ARG_STRLEN, 128 KiB per argv string (ARG_MAX, 2 MiB here,
// bounds the total). We cap each argument at half of that and 1,000 nodes.
const (
	DefaultMaxBatch      = 1000
	DefaultMaxArgBytes   = 64 * 1024
	DefaultTimeout       = 60 * time.Second
	defaultBinDir        = "/usr/bin"
	killWaitDelay        = 2 * time.Second
	maxStderrInError     = 2048
	slurmUpdateKeyPrefix = "nodename="
)

// Client runs scontrol. The zero value is usable.
type Client struct {
	BinDir  string        // SlurmBinPath; "" means /usr/bin
	Timeout time.Duration // per call; 0 means 60s. A hung scontrol is killed (whole process group) at Timeout.
	Logger  *slog.Logger  // every call at DEBUG with args, duration, exit status; nil discards

	// MaxBatch caps node names per `scontrol update` (0: DefaultMaxBatch).
	MaxBatch int
	// MaxArgBytes caps the length of one argument, e.g. "nodename=a,b,..."
	// (0: DefaultMaxArgBytes).
	MaxArgBytes int
}

// CommandError is a failed scontrol/sinfo run.
type CommandError struct {
	Args     []string // full argv, argv[0] is the program path
	ExitCode int      // -1 if the program did not exit normally (killed, not started)
	Stderr   string   // trimmed; for scontrol show, the "not found" lines come on stdout instead
	Err      error    // underlying error (*exec.ExitError, context.DeadlineExceeded, ...)
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString(quoteArgs(e.Args))
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, ": exit status %d", e.ExitCode)
	} else if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

// NotFoundError lists node names that scontrol does not know ("Node X not
// found", exit 1). ShowNodes returns it together with the nodes it found.
type NotFoundError struct{ Names []string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("slurm does not know node(s) %s (not in slurm.conf, or powered-down cloud nodes hidden because PrivateData=cloud is missing)", strings.Join(e.Names, ","))
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) bin(name string) string {
	dir := c.BinDir
	if dir == "" {
		dir = defaultBinDir
	}
	return filepath.Join(dir, name)
}

// run executes BinDir/prog with args in its own process group; at Timeout
// or ctx cancellation the whole group gets SIGKILL. It returns stdout, and a
// *CommandError on any failure (stdout is returned then too).
func (c *Client) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := c.bin(prog)
	// Never run a program another user could have replaced: slurm-ec2 runs as root or SlurmUser.
	// A missing program is left to exec, whose error says so.
	if err := trust.Self().File(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("refusing to run %s: %w", path, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Negative pid: the whole process group (scontrol and anything it forked).
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = killWaitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	argv := append([]string{path}, args...)
	c.logger().DebugContext(ctx, "slurm command", "argv", logArgs(argv), "duration", time.Since(start), "exit", code, "stdout_bytes", stdout.Len())
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			err = fmt.Errorf("killed after %v timeout: %w", timeout, ctxErr)
		} else {
			err = fmt.Errorf("cancelled: %w", ctxErr)
		}
		code = -1
	}
	se := strings.TrimSpace(stderr.String())
	if len(se) > maxStderrInError {
		se = se[:maxStderrInError] + "..."
	}
	return stdout.Bytes(), &CommandError{Args: argv, ExitCode: code, Stderr: se, Err: err}
}

// updateAttempts bounds the tries of an `scontrol update`. Updates are idempotent (they set
// absolute values), and a busy slurmctld answers "Socket timed out on send/recv operation" while
// it holds its locks (observed in the end-to-end tests when it resolves unresolvable node
// names): such an update is worth another try, a refused one is not.
const updateAttempts = 3

// transient reports errors of scontrol that a retry may cure: slurmctld busy or unreachable.
func transient(err error) bool {
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode < 0 {
		return false
	}
	for _, s := range []string{"Socket timed out", "Unable to contact slurm controller", "Connection refused", "Resource temporarily unavailable"} {
		if strings.Contains(ce.Stderr, s) {
			return true
		}
	}
	return false
}

// update runs an idempotent `scontrol update`, retrying transient failures with a short backoff.
func (c *Client) update(ctx context.Context, args ...string) error {
	var err error
	for attempt := 1; ; attempt++ {
		if _, err = c.run(ctx, "scontrol", append([]string{"update"}, args...)...); err == nil || attempt == updateAttempts || !transient(err) {
			return err
		}
		c.logger().WarnContext(ctx, "scontrol update failed; retrying", "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}

// Nodes returns every node slurmctld reports, with one `scontrol -o show
// nodes` exec whatever the cluster size. Powered-down cloud nodes are
// included only with PrivateData=cloud in slurm.conf (see package doc).
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	out, err := c.run(ctx, "scontrol", "-o", "show", "nodes")
	if err != nil {
		return nil, fmt.Errorf("reading Slurm nodes: %w", err)
	}
	nodes, _, err := ParseNodes(out)
	if err != nil {
		return nil, fmt.Errorf("parsing `scontrol -o show nodes`: %w", err)
	}
	return nodes, nil
}

// ShowNodes returns the named nodes, one exec per batch of names. Names
// Slurm does not know produce a *NotFoundError (errors.As), returned
// together with the nodes that were found.
func (c *Client) ShowNodes(ctx context.Context, names []string) ([]Node, error) {
	var all []Node
	var missing []string
	for _, batch := range c.batches(names, "") {
		out, err := c.run(ctx, "scontrol", "-o", "show", "node", strings.Join(batch, ","))
		nodes, notFound, perr := ParseNodes(out)
		if perr != nil {
			return all, fmt.Errorf("parsing `scontrol -o show node`: %w", perr)
		}
		all = append(all, nodes...)
		missing = append(missing, notFound...)
		// Exit 1 with "not found" lines on stdout is the not-found case;
		// anything else is a real failure.
		var ce *CommandError
		if err != nil && !(errors.As(err, &ce) && ce.ExitCode == 1 && len(notFound) > 0) {
			return all, fmt.Errorf("reading Slurm nodes %s: %w", summarize(batch), err)
		}
	}
	if len(missing) > 0 {
		return all, &NotFoundError{Names: missing}
	}
	return all, nil
}

// Address is a node's new NodeAddr and NodeHostName. An empty Hostname
// means "same as Addr".
type Address struct{ Node, Addr, Hostname string }

// SetAddresses runs `scontrol update nodename=a,b nodeaddr=ip1,ip2
// nodehostname=h1,h2` in as few execs as the batch limits allow. 22.05
// matches the lists by position (verified: nodename=aws-spot-8,aws-spot-7
// nodeaddr=X,Y gives aws-spot-8 X); a count mismatch is rejected with
// "slurm_update error: Invalid node name specified". On error, earlier
// batches stay applied and the error names the failed batch.
func (c *Client) SetAddresses(ctx context.Context, addrs []Address) error {
	if len(addrs) == 0 {
		return nil
	}
	for _, a := range addrs {
		if a.Node == "" || a.Addr == "" || strings.ContainsAny(a.Node+a.Addr+a.Hostname, ", \t\n") {
			return fmt.Errorf("invalid address update %+v: node and addr are required and may not contain commas or spaces", a)
		}
	}
	// Batch by the longest of the three lists so that all three stay
	// within MaxArgBytes.
	widest := make([]string, len(addrs))
	for i, a := range addrs {
		h := a.Hostname
		if h == "" {
			h = a.Addr
		}
		widest[i] = longest(a.Node, a.Addr, h)
	}
	off := 0
	for _, b := range c.batches(widest, "nodehostname=") {
		part := addrs[off : off+len(b)]
		off += len(b)
		ns, as, hs := make([]string, len(part)), make([]string, len(part)), make([]string, len(part))
		for i, a := range part {
			ns[i], as[i], hs[i] = a.Node, a.Addr, a.Hostname
			if hs[i] == "" {
				hs[i] = a.Addr
			}
		}
		err := c.update(ctx,
			"nodename="+strings.Join(ns, ","),
			"nodeaddr="+strings.Join(as, ","),
			"nodehostname="+strings.Join(hs, ","))
		if err != nil {
			return fmt.Errorf("setting NodeAddr/NodeHostName of %s: %w", summarize(ns), err)
		}
	}
	return nil
}

// State is a target for `scontrol update state=`.
type State string

// States accepted by Update. 22.05's scontrol lists "NoResp DRAIN FAIL
// FUTURE RESUME POWER_DOWN POWER_UP UNDRAIN" as valid and also takes DOWN,
// IDLE, POWER_DOWN_ASAP and POWER_DOWN_FORCE.
const (
	StateDown           State = "DOWN"
	StateDrain          State = "DRAIN"
	StateResume         State = "RESUME"
	StateIdle           State = "IDLE"
	StatePowerDown      State = "POWER_DOWN"
	StatePowerDownForce State = "POWER_DOWN_FORCE"
	StatePowerDownASAP  State = "POWER_DOWN_ASAP"
	StatePowerUp        State = "POWER_UP"
	StateUndrain        State = "UNDRAIN"
)

// NeedsReason reports states that scontrol refuses without a reason:
// "You must specify a reason when DOWNING or DRAINING a node. Request
// denied" (stderr, exit 1).
func (s State) NeedsReason() bool {
	u := State(strings.ToUpper(string(s)))
	return u == StateDown || u == StateDrain || u == "FAIL"
}

// Update runs `scontrol update nodename=<list> state=X [reason=...]`,
// batched. Observed on 22.05 (see package doc and testdata/README.md):
//   - DOWN/DRAIN without reason: refused (see NeedsReason); Update checks
//     this before running anything.
//   - POWER_DOWN on DOWN+CLOUD+POWERED_DOWN: exit 0, state becomes
//     DOWN+CLOUD+POWER_DOWN (reason kept); a later RESUME turns it into
//     IDLE+CLOUD+POWERING_DOWN, then IDLE+CLOUD+POWERED_DOWN.
//   - RESUME on a DOWN node: exit 0, reason cleared.
//   - POWER_DOWN_FORCE on IDLE+CLOUD+NOT_RESPONDING+POWERING_UP: exit 0,
//     IDLE+CLOUD+POWERING_DOWN at once (SuspendProgram runs); on an
//     allocated node it requeues/kills its jobs first.
//   - POWER_DOWN_ASAP: sets DRAIN with reason "POWER_DOWN_ASAP", powers
//     down when the jobs end.
//   - unknown node: "slurm_update error: Invalid node name specified", exit 1
//     (the whole call is refused, no node of the batch is changed).
//   - unknown state: "Invalid input: state=bogus" + "Valid states are: ...",
//     exit 1.
func (c *Client) Update(ctx context.Context, names []string, state State, reason string) error {
	if len(names) == 0 {
		return nil
	}
	if state == "" {
		return errors.New("scontrol update: empty target state")
	}
	if state.NeedsReason() && strings.TrimSpace(reason) == "" {
		return fmt.Errorf("setting %s to %s: Slurm requires a reason for DOWN and DRAIN", summarize(names), state)
	}
	if strings.ContainsAny(reason, "\n\r") {
		reason = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(reason)
	}
	for _, b := range c.batches(names, "") {
		args := []string{"nodename=" + strings.Join(b, ","), "state=" + string(state)}
		if reason != "" {
			// One argv element: no shell, so spaces and quotes need no escaping.
			args = append(args, "reason="+reason)
		}
		if err := c.update(ctx, args...); err != nil {
			return fmt.Errorf("setting %s to %s: %w", summarize(b), state, err)
		}
	}
	return nil
}

// Ping runs `scontrol ping` and returns the host of the controller that is
// in charge: the primary if it is UP, else the first backup that is UP.
// 22.05 prints one line per controller, "Slurmctld(primary) at vm is UP" /
// "Slurmctld(backup) at h2 is DOWN", and exits 1 when any is DOWN (with a
// "RESTORE SLURMCTLD DAEMON TO SERVICE" banner when all are), so the output
// is read whatever the exit status.
func (c *Client) Ping(ctx context.Context) (string, error) {
	out, runErr := c.run(ctx, "scontrol", "ping")
	ctrls := ParsePing(out)
	for _, ct := range ctrls {
		if ct.Up {
			return ct.Host, nil
		}
	}
	if runErr != nil {
		return "", fmt.Errorf("no Slurm controller is up: %w", runErr)
	}
	return "", fmt.Errorf("no Slurm controller is up (scontrol ping printed %q)", truncate(strings.TrimSpace(string(out)), 200))
}

// Controller is one line of `scontrol ping`.
type Controller struct {
	Role string // "primary", "backup", "backup1", ...
	Host string
	Up   bool
}

// ParsePing parses `scontrol ping` output, primary first as printed.
func ParsePing(out []byte) []Controller {
	var cs []Controller
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "Slurmctld(")
		if !ok {
			continue
		}
		role, rest, ok := strings.Cut(rest, ")")
		if !ok {
			continue
		}
		rest, ok = strings.CutPrefix(rest, " at ")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, " is ")
		if i < 0 {
			continue
		}
		status := strings.TrimSpace(rest[i+len(" is "):])
		cs = append(cs, Controller{Role: role, Host: rest[:i], Up: strings.HasPrefix(status, "UP")})
	}
	return cs
}

// batches splits items so that each batch has at most MaxBatch items and
// prefix + items joined by commas fits in MaxArgBytes.
func (c *Client) batches(items []string, prefix string) [][]string {
	maxN, maxB := c.MaxBatch, c.MaxArgBytes
	if maxN <= 0 {
		maxN = DefaultMaxBatch
	}
	if maxB <= 0 {
		maxB = DefaultMaxArgBytes
	}
	if len(prefix) < len(slurmUpdateKeyPrefix) {
		prefix = slurmUpdateKeyPrefix
	}
	var out [][]string
	start, size := 0, len(prefix)
	for i, it := range items {
		add := len(it)
		if i > start {
			add++ // comma
		}
		if i > start && (i-start >= maxN || size+add > maxB) {
			out = append(out, items[start:i])
			start, size, add = i, len(prefix), len(it)
		}
		size += add
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

func longest(ss ...string) string {
	l := ""
	for _, s := range ss {
		if len(s) > len(l) {
			l = s
		}
	}
	return l
}

// summarize names a batch briefly for error messages.
func summarize(names []string) string {
	switch len(names) {
	case 0:
		return "no nodes"
	case 1:
		return names[0]
	case 2, 3:
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s,...,%s (%d nodes)", names[0], names[len(names)-1], len(names))
}

// logArgs shortens long arguments for the debug log.
func logArgs(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if len(a) > 200 {
			a = fmt.Sprintf("%s...(%d bytes)", a[:200], len(a))
		}
		out[i] = a
	}
	return out
}

func quoteArgs(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if len(a) > 120 {
			a = a[:120] + "..."
		}
		if strings.ContainsAny(a, " \t\"'") || a == "" {
			a = fmt.Sprintf("%q", a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
