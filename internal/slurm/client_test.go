package slurm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

func scontrolCalls(f *fakeslurm.Fake, kind string) []fakeslurm.Call {
	var out []fakeslurm.Call
	for _, c := range f.Calls() {
		if c.Kind() == kind {
			out = append(out, c)
		}
	}
	return out
}

func TestNodesOneExec(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-9]", "aws-od-[0-2]")
	f.Set("aws-spot-3", func(n *slurm.Node) {
		n.State = "DOWN"
		n.Reason = "ResumeTimeout reached"
		n.ReasonTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	})
	c := &slurm.Client{BinDir: f.BinDir}
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 13 {
		t.Fatalf("got %d nodes, want 13", len(nodes))
	}
	if calls := f.Calls(); len(calls) != 1 || strings.Join(calls[0].Argv, " ") != "scontrol -o show nodes" {
		t.Errorf("calls = %+v, want one `scontrol -o show nodes`", calls)
	}
	for _, n := range nodes {
		switch n.Name {
		case "aws-spot-3":
			if !n.IsDown() || n.Reason != "ResumeTimeout reached" || !n.ReasonTime.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)) {
				t.Errorf("aws-spot-3 = %+v", n)
			}
		default:
			if !n.PoweredDown() || n.IsDown() || !n.Has("CLOUD") || n.Addr != n.Name {
				t.Errorf("%s = %+v, want idle~ with NodeAddr=name", n.Name, n)
			}
		}
	}
}

func TestSetAddressesBatching(t *testing.T) {
	tests := map[string]struct {
		client    slurm.Client
		n         int
		wantExecs int
	}{
		"2500 default":   {slurm.Client{}, 2500, 3},
		"2500 by count":  {slurm.Client{MaxBatch: 500}, 2500, 5},
		"10 by bytes":    {slurm.Client{MaxArgBytes: 13 + 4*len("ip-10-1-0-0") + 3}, 10, 3}, // 4 per call (longest list is hostnames)
		"1 single":       {slurm.Client{}, 1, 1},
		"1000 one batch": {slurm.Client{}, 1000, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := fakeslurm.New(t, fmt.Sprintf("aws-spot-[0-%d]", tc.n-1))
			c := tc.client
			c.BinDir = f.BinDir
			// Reverse order: the fake must match by position, not by sort.
			var addrs []slurm.Address
			for i := tc.n - 1; i >= 0; i-- {
				addrs = append(addrs, slurm.Address{Node: fmt.Sprintf("aws-spot-%d", i),
					Addr: fmt.Sprintf("10.1.%d.%d", i/256, i%256), Hostname: fmt.Sprintf("ip-10-1-%d-%d", i/256, i%256)})
			}
			if err := c.SetAddresses(context.Background(), addrs); err != nil {
				t.Fatal(err)
			}
			if got := len(scontrolCalls(f, "update")); got != tc.wantExecs {
				t.Errorf("%d scontrol update execs, want %d", got, tc.wantExecs)
			}
			for _, call := range f.Calls() {
				for _, a := range call.Argv {
					if lim := c.MaxArgBytes; lim > 0 && len(a) > lim {
						t.Errorf("argument of %d bytes exceeds MaxArgBytes %d", len(a), lim)
					}
				}
			}
			for _, n := range f.Nodes() {
				var i int
				fmt.Sscanf(n.Name, "aws-spot-%d", &i)
				if want := fmt.Sprintf("10.1.%d.%d", i/256, i%256); n.Addr != want || n.Hostname != fmt.Sprintf("ip-10-1-%d-%d", i/256, i%256) {
					t.Fatalf("%s: addr %s host %s, want %s", n.Name, n.Addr, n.Hostname, want)
				}
			}
		})
	}
}

func TestSetAddressesHostnameDefaultsToAddr(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-1]")
	c := &slurm.Client{BinDir: f.BinDir}
	if err := c.SetAddresses(context.Background(), []slurm.Address{{Node: "aws-spot-1", Addr: "10.0.0.9"}}); err != nil {
		t.Fatal(err)
	}
	if n := f.Node("aws-spot-1"); n.Addr != "10.0.0.9" || n.Hostname != "10.0.0.9" {
		t.Errorf("got %+v", n)
	}
	if err := c.SetAddresses(context.Background(), []slurm.Address{{Node: "aws-spot-1", Addr: "1.2.3.4,5.6.7.8"}}); err == nil {
		t.Error("address with a comma accepted")
	}
}

func TestUpdate(t *testing.T) {
	tests := map[string]struct {
		setup   func(*slurm.Node)
		state   slurm.State
		reason  string
		wantErr string // substring; "" = success
		execs   int
		check   func(slurm.Node) bool
	}{
		"down with reason": {state: slurm.StateDown, reason: `EC2 said "no": InsufficientInstanceCapacity (x=y)`, execs: 1,
			check: func(n slurm.Node) bool {
				return n.IsDown() && n.Reason == `EC2 said "no": InsufficientInstanceCapacity (x=y)` && !n.ReasonTime.IsZero()
			}},
		"down without reason refused before exec": {state: slurm.StateDown, wantErr: "requires a reason", execs: 0,
			check: func(n slurm.Node) bool { return !n.IsDown() }},
		"drain": {state: slurm.StateDrain, reason: "cool-down", execs: 1, check: slurm.Node.Drained},
		"resume clears down": {setup: func(n *slurm.Node) { n.State = "DOWN"; n.Reason = "x" }, state: slurm.StateResume, execs: 1,
			check: func(n slurm.Node) bool { return n.State == "IDLE" && n.Reason == "" && n.PoweredDown() }},
		"power_down resets addr": {setup: func(n *slurm.Node) {
			n.Flags = []string{"CLOUD"}
			n.Addr = "10.0.0.1"
		}, state: slurm.StatePowerDown, execs: 1,
			check: func(n slurm.Node) bool { return n.PoweredDown() && n.Addr == n.Name }},
		"power_down_force on allocated": {setup: func(n *slurm.Node) { n.State = "ALLOCATED"; n.Flags = []string{"CLOUD"} },
			state: slurm.StatePowerDownForce, execs: 1,
			check: func(n slurm.Node) bool { return n.PoweredDown() && n.State == "IDLE" }},
		"power_up": {state: slurm.StatePowerUp, execs: 1,
			check: func(n slurm.Node) bool { return n.PoweringUp() && !n.PoweredDown() && !n.Responding() }},
		"invalid state": {state: "BOGUS", wantErr: "Invalid input: state=bogus", execs: 1,
			check: func(n slurm.Node) bool { return n.PoweredDown() }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := fakeslurm.New(t, "aws-spot-[0-3]")
			if tc.setup != nil {
				f.Set("aws-spot-2", tc.setup)
			}
			c := &slurm.Client{BinDir: f.BinDir}
			err := c.Update(context.Background(), []string{"aws-spot-2"}, tc.state, tc.reason)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if got := len(f.Calls()); got != tc.execs {
				t.Errorf("%d execs, want %d", got, tc.execs)
			}
			if n := f.Node("aws-spot-2"); !tc.check(n) {
				t.Errorf("node after update: %+v", n)
			}
			if n := f.Node("aws-spot-1"); !n.PoweredDown() || n.IsDown() {
				t.Errorf("bystander changed: %+v", n)
			}
		})
	}
}

func TestUpdateUnknownNodeSurfacesStderr(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-3]")
	c := &slurm.Client{BinDir: f.BinDir}
	err := c.Update(context.Background(), []string{"aws-spot-1", "aws-nope-1"}, slurm.StateDown, "x")
	var ce *slurm.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CommandError", err)
	}
	if ce.ExitCode != 1 || ce.Stderr != "slurm_update error: Invalid node name specified" {
		t.Errorf("exit %d stderr %q", ce.ExitCode, ce.Stderr)
	}
	if !strings.Contains(err.Error(), "Invalid node name specified") || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("message lacks stderr/exit: %v", err)
	}
	if f.Node("aws-spot-1").IsDown() {
		t.Error("real scontrol refuses the whole call; the fake changed aws-spot-1")
	}
}

func TestShowNodesNotFound(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-3]")
	c := &slurm.Client{BinDir: f.BinDir}
	nodes, err := c.ShowNodes(context.Background(), []string{"aws-spot-1", "aws-nope-7", "aws-spot-3"})
	var nf *slurm.NotFoundError
	if !errors.As(err, &nf) || len(nf.Names) != 1 || nf.Names[0] != "aws-nope-7" {
		t.Fatalf("err = %v, want NotFoundError{aws-nope-7}", err)
	}
	if len(nodes) != 2 || nodes[0].Name != "aws-spot-1" || nodes[1].Name != "aws-spot-3" {
		t.Errorf("nodes = %+v", nodes)
	}
	nodes, err = c.ShowNodes(context.Background(), []string{"aws-spot-0"})
	if err != nil || len(nodes) != 1 {
		t.Errorf("ShowNodes(aws-spot-0) = %v, %v", nodes, err)
	}
}

func TestShowNodesBatches(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-24]")
	c := &slurm.Client{BinDir: f.BinDir, MaxBatch: 10}
	var names []string
	for i := range 25 {
		names = append(names, fmt.Sprintf("aws-spot-%d", i))
	}
	nodes, err := c.ShowNodes(context.Background(), names)
	if err != nil || len(nodes) != 25 {
		t.Fatalf("got %d nodes, %v", len(nodes), err)
	}
	if got := len(f.Calls()); got != 3 {
		t.Errorf("%d execs, want 3", got)
	}
}

func TestTimeoutKillsHungScontrol(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-3]")
	f.SetFaults(fakeslurm.Faults{Hang: map[string]int{"show": 1}})
	c := &slurm.Client{BinDir: f.BinDir, Timeout: 500 * time.Millisecond}
	_, err := c.Nodes(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	var ce *slurm.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Errorf("err = %#v, want CommandError with ExitCode -1", err)
	}
	calls := f.Calls()
	if len(calls) != 1 || calls[0].Exit != -1 {
		t.Fatalf("calls = %+v", calls)
	}
	// The hung process must be gone (killed with its process group).
	if err := syscall.Kill(calls[0].PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("hung fake pid %d still exists (kill 0: %v)", calls[0].PID, err)
	}
	// The fault is consumed: the next call works.
	if _, err := c.Nodes(context.Background()); err != nil {
		t.Errorf("after the hang: %v", err)
	}
}

func TestFailFault(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-3]")
	// A refusal (not a busy controller: that is retried, see TestUpdateRetriesTransientFailures)
	// surfaces with its exit status and stderr.
	f.SetFaults(fakeslurm.Faults{Fail: map[string]int{"update": 2}, ExitCode: 3, Stderr: "slurm_update error: Invalid node state specified"})
	c := &slurm.Client{BinDir: f.BinDir}
	for i := range 2 {
		err := c.Update(context.Background(), []string{"aws-spot-0"}, slurm.StateResume, "")
		var ce *slurm.CommandError
		if !errors.As(err, &ce) || ce.ExitCode != 3 || !strings.Contains(ce.Stderr, "Invalid node state specified") {
			t.Fatalf("call %d: err = %v", i, err)
		}
	}
	if err := c.Update(context.Background(), []string{"aws-spot-0"}, slurm.StateResume, ""); err != nil {
		t.Errorf("third call: %v", err)
	}
}

func TestPing(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-0")
	c := &slurm.Client{BinDir: f.BinDir}
	host, err := c.Ping(context.Background())
	if err != nil || host != "fakeslurm" {
		t.Errorf("Ping = %q, %v", host, err)
	}
	f.SetFaults(fakeslurm.Faults{Fail: map[string]int{"ping": 1}})
	if _, err := c.Ping(context.Background()); err == nil {
		t.Error("Ping succeeded with a failing scontrol")
	}
}

func TestMissingBinary(t *testing.T) {
	c := &slurm.Client{BinDir: t.TempDir()}
	_, err := c.Nodes(context.Background())
	var ce *slurm.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 || !strings.Contains(err.Error(), "scontrol") {
		t.Errorf("err = %v", err)
	}
}

// TestConcurrentUpdates: several processes updating the same table at once
// lose no update (flock around read-modify-write).
func TestConcurrentUpdates(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-15]")
	c := &slurm.Client{BinDir: f.BinDir}
	var g errgroup.Group
	g.SetLimit(8)
	for i := range 16 {
		g.Go(func() error {
			return c.SetAddresses(context.Background(), []slurm.Address{{Node: fmt.Sprintf("aws-spot-%d", i), Addr: fmt.Sprintf("10.0.0.%d", i)}})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes() {
		var i int
		fmt.Sscanf(n.Name, "aws-spot-%d", &i)
		if n.Addr != fmt.Sprintf("10.0.0.%d", i) {
			t.Errorf("%s addr %s: an update was lost", n.Name, n.Addr)
		}
	}
	if got := len(f.Calls()); got != 16 {
		t.Errorf("%d calls recorded, want 16", got)
	}
}

func BenchmarkNodes10k(b *testing.B) {
	f := fakeslurm.New(b, "aws-spot-[0-9999]")
	c := &slurm.Client{BinDir: f.BinDir}
	for b.Loop() {
		nodes, err := c.Nodes(context.Background())
		if err != nil || len(nodes) != 10000 {
			b.Fatalf("%d nodes, %v", len(nodes), err)
		}
	}
}

func BenchmarkSetAddresses10k(b *testing.B) {
	f := fakeslurm.New(b, "aws-spot-[0-9999]")
	c := &slurm.Client{BinDir: f.BinDir}
	addrs := make([]slurm.Address, 10000)
	for i := range addrs {
		addrs[i] = slurm.Address{Node: fmt.Sprintf("aws-spot-%d", i), Addr: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)}
	}
	for b.Loop() {
		if err := c.SetAddresses(context.Background(), addrs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConfig(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-0")
	c := &slurm.Client{BinDir: f.BinDir}
	cfg, err := c.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slurm.CloudNodesVisible(cfg) || cfg["SLURM_VERSION"] != "22.05.8" {
		t.Errorf("cfg = %v", cfg)
	}
}

// A busy slurmctld times out an update; the client tries again, and gives up on a refusal.
func TestUpdateRetriesTransientFailures(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-3]")
	c := &slurm.Client{BinDir: f.BinDir, Timeout: 10 * time.Second}
	f.SetFaults(fakeslurm.Faults{Fail: map[string]int{"update": 2}, Stderr: "slurm_update error: Socket timed out on send/recv operation"})
	if err := c.SetAddresses(context.Background(), []slurm.Address{{Node: "aws-spot-1", Addr: "10.1.0.9"}}); err != nil {
		t.Fatalf("transient failures not retried: %v", err)
	}
	if n := f.Node("aws-spot-1"); n.Addr != "10.1.0.9" {
		t.Fatalf("address not set: %q", n.Addr)
	}
	f.SetFaults(fakeslurm.Faults{Fail: map[string]int{"update": 1}, Stderr: "slurm_update error: Invalid node name specified"})
	f.ResetCalls()
	if err := c.Update(context.Background(), []string{"aws-spot-1"}, slurm.StateDown, "x"); err == nil {
		t.Fatal("a refused update succeeded")
	}
	if n := len(f.Calls()); n != 1 {
		t.Fatalf("a refused update was tried %d times, want 1", n)
	}
}
