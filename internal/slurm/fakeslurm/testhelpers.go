package fakeslurm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Build compiles cmd/fakeslurm once per test binary and returns its path.
func Build(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakeslurm-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "fakeslurm")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/slurm-ec2/slurm-ec2/cmd/fakeslurm")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		tb.Fatalf("building cmd/fakeslurm: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// Fake is one fake cluster: Dir holds the state, BinDir the scontrol and
// sinfo symlinks (use it as slurm.Client.BinDir / SlurmBinPath).
type Fake struct {
	Dir, BinDir string
	tb          testing.TB
}

// New builds the fake if needed, creates a state directory with the given
// nodes (hostlist expressions or names), all CLOUD+IDLE+POWERED_DOWN with
// NodeAddr = NodeHostName = name and partition = the name's first
// dash-separated component, and sets $FAKESLURM_DIR via tb.Setenv (so the
// test cannot be parallel).
func New(tb testing.TB, nodes ...string) *Fake {
	tb.Helper()
	bin := Build(tb)
	dir := tb.TempDir()
	f := &Fake{Dir: dir, BinDir: filepath.Join(dir, "bin"), tb: tb}
	if err := os.Mkdir(f.BinDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, name := range []string{"scontrol", "sinfo"} {
		if err := os.Symlink(bin, filepath.Join(f.BinDir, name)); err != nil {
			tb.Fatal(err)
		}
	}
	var t table
	for _, expr := range nodes {
		names, err := expand(expr)
		if err != nil {
			tb.Fatalf("fakeslurm.New: %v", err)
		}
		for _, n := range names {
			part, _, _ := strings.Cut(n, "-")
			t.Nodes = append(t.Nodes, Node{Name: n, State: "IDLE", Flags: []string{"CLOUD", "POWERED_DOWN"},
				Addr: n, Hostname: n, Partitions: []string{part}})
		}
	}
	s := &store{dir: dir}
	if err := s.save(&t); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv(EnvDir, dir)
	return f
}

func (f *Fake) mustLoad() *table {
	tb := f.tb
	tb.Helper()
	t, err := (&store{dir: f.Dir}).load()
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// Nodes returns the current node table.
func (f *Fake) Nodes() []Node {
	tb := f.tb
	tb.Helper()
	return f.mustLoad().Nodes
}

// Node returns one node's current state; the test fails if it is unknown.
func (f *Fake) Node(name string) Node {
	tb := f.tb
	tb.Helper()
	for _, n := range f.mustLoad().Nodes {
		if n.Name == name {
			return n
		}
	}
	tb.Fatalf("fakeslurm: no node %q", name)
	return Node{}
}

// Set changes a node under the lock (to arrange a state for a test).
func (f *Fake) Set(name string, mutate func(*Node)) {
	tb := f.tb
	tb.Helper()
	s := &store{dir: f.Dir}
	unlock, err := s.lock()
	if err != nil {
		tb.Fatal(err)
	}
	defer unlock()
	t, err := s.load()
	if err != nil {
		tb.Fatal(err)
	}
	i, ok := index(t)[name]
	if !ok {
		tb.Fatalf("fakeslurm: no node %q", name)
	}
	mutate(&t.Nodes[i])
	if err := s.save(t); err != nil {
		tb.Fatal(err)
	}
}

// Calls returns the recorded invocations, oldest first.
func (f *Fake) Calls() []Call {
	tb := f.tb
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(f.Dir, "calls.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var calls []Call
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var c Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			tb.Fatalf("fakeslurm: bad calls.jsonl line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}

// ResetCalls forgets the recorded invocations.
func (f *Fake) ResetCalls() {
	tb := f.tb
	tb.Helper()
	if err := os.Remove(filepath.Join(f.Dir, "calls.jsonl")); err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
}

// SetFaults replaces the fault knobs.
func (f *Fake) SetFaults(faults Faults) {
	tb := f.tb
	tb.Helper()
	b, err := json.Marshal(faults)
	if err != nil {
		tb.Fatal(err)
	}
	if err := writeAtomic(filepath.Join(f.Dir, "faults.json"), b); err != nil {
		tb.Fatal(err)
	}
}
