package faults

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/latency"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

// workload is what every EC2-fault case does while the fault is on: a resume of two groups,
// nodes booting, a suspend, a reconcile and a second resume. Errors are the faults' doing and
// only logged: what counts is the state after recovery.
func workload(e *env) {
	logErr := func(what string, err error) {
		if err != nil {
			e.t.Logf("%s (under fault): %v", what, err)
		}
	}
	logErr("resume", e.powerUp("aws-ondemand-[0-3]", "aws-spot-[0-5]"))
	e.ctld.tick()
	logErr("suspend", e.powerDown("aws-ondemand-[2-3]", "aws-spot-5"))
	logErr("reconcile", e.reconcile())
	logErr("resume", e.powerUp("aws-ondemand-[4-5]"))
	e.ctld.tick()
}

func TestThrottling(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    ec2sim.Fault
	}{
		{"30pct", ec2sim.Fault{Action: "*", Rate: 0.3, Code: "RequestLimitExceeded"}},
		{"100pct-for-a-while", ec2sim.Fault{Action: "*", Rate: 1, Code: "RequestLimitExceeded", Duration: 1500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.inject(tc.f)
			workload(e)
			if c := e.sim.Counters(); totalErrors(c, "RequestLimitExceeded") == 0 {
				t.Errorf("no call was throttled: the case tested nothing (counters %v)", c)
			}
			e.finish(e.recoverAndCheck())
		})
	}
}

func totalErrors(c map[string]ec2sim.ActionCounters, code string) int {
	n := 0
	for _, a := range c {
		n += a.Errors[code] + a.Faulted
	}
	return n
}

// Test5xx makes one action fail with a 5xx on every call while the workload runs.
func Test5xx(t *testing.T) {
	for _, action := range []string{"CreateFleet", "CreateTags", "DescribeInstances", "TerminateInstances"} {
		for _, code := range []string{"InternalError", "Unavailable"} {
			t.Run(action+"-"+code, func(t *testing.T) {
				e := newEnv(t, envOptions{})
				e.inject(ec2sim.Fault{Action: action, Rate: 1, Code: code})
				workload(e)
				if e.sim.Counters()[action].Faulted == 0 {
					t.Errorf("%s was never called under the fault", action)
				}
				e.finish(e.recoverAndCheck())
			})
		}
	}
}

// TestSlowEC2 runs with ten times EC2's usual latencies (CreateFleet instant: ~25 s), a resume and
// a reconcile racing for the same node group.
func TestSlowEC2(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.lat.setModel(latency.AWS().WithScale(10))
	e.note("latency x10 on every action (AWS model)")
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.powerUp("aws-ondemand-[0-1]", "aws-spot-[0-1]"); err != nil {
			t.Logf("resume: %v", err)
		}
	})
	wg.Go(func() {
		if err := e.reconcile(); err != nil {
			t.Logf("reconcile: %v", err)
		}
	})
	wg.Wait()
	e.ctld.tick()
	if err := e.powerDown("aws-spot-1"); err != nil {
		t.Logf("suspend: %v", err)
	}
	e.finish(e.recoverAndCheck())
}

// TestCapacityGone gives EC2 room for only part of a launch.
func TestCapacityGone(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, az := range []string{"us-east-1a", "us-east-1b"} {
		for _, p := range []struct{ itype, life string }{{"c5.xlarge", "on-demand"}, {"c5.xlarge", "spot"}, {"c4.xlarge", "spot"}} {
			if err := e.sim.SetCapacity(p.itype, az, p.life, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.note("capacity 1 per pool (type, AZ, lifecycle) for 4 on-demand + 6 spot nodes")
	if err := e.powerUp("aws-ondemand-[0-3]", "aws-spot-[0-5]"); err != nil {
		t.Logf("resume: %v", err)
	}
	down := 0
	for _, n := range e.fake.Nodes() {
		if n.IsDown() {
			down++
		}
	}
	if down == 0 {
		t.Errorf("no node was set DOWN although EC2 had capacity for only part of the launch")
	}
	e.ctld.tick()
	// A second resume while the group cools down must not launch.
	if err := e.powerUp("aws-ondemand-[4-5]"); err != nil {
		t.Logf("resume during cool-down: %v", err)
	}
	e.finish(e.recoverAndCheck())
}

// TestTerminatedBySomeoneElse terminates booted instances behind the plugin's back.
func TestTerminatedBySomeoneElse(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.powerUp("aws-ondemand-[0-3]"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	e.ctld.tick()
	ids := e.liveIDs("aws-ondemand-1", "aws-ondemand-2")
	if len(ids) != 2 {
		t.Fatalf("want 2 live instances for aws-ondemand-[1-2], got %v", ids)
	}
	if err := e.sim.TerminateAsUser(ids); err != nil {
		t.Fatal(err)
	}
	e.note("TerminateInstances by another user on 2 of 4 running nodes")
	e.finish(e.recoverAndCheck())
}

// TestSpotInterruptionBulk interrupts 30 spot instances at once.
func TestSpotInterruptionBulk(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.powerUp("aws-spot-[0-29]"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	e.ctld.tick()
	ids := e.liveIDs()
	if len(ids) != 30 {
		t.Fatalf("want 30 live spot instances, got %d", len(ids))
	}
	if err := e.sim.SpotInterrupt(ids, 0); err != nil {
		t.Fatal(err)
	}
	e.note("spot interruption of 30 instances at once")
	e.finish(e.recoverAndCheck())
}

// TestScontrolFailing makes scontrol exit 1 (controller unreachable) for calls of a kind.
func TestScontrolFailing(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fakeslurm.Faults
	}{
		{"update-x2", fakeslurm.Faults{Fail: map[string]int{"update": 2}}},
		{"show-x1", fakeslurm.Faults{Fail: map[string]int{"show": 1}}},
		{"every-call-x4", fakeslurm.Faults{Fail: map[string]int{"*": 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.fake.SetFaults(tc.f)
			e.note("scontrol fails: " + faultDesc(tc.f))
			workload(e)
			e.finish(e.recoverAndCheck())
		})
	}
}

func faultDesc(f fakeslurm.Faults) string {
	var parts []string
	for k, v := range f.Fail {
		parts = append(parts, fmt.Sprintf("%s x%d exit 1", k, v))
	}
	for k, v := range f.Hang {
		parts = append(parts, fmt.Sprintf("%s x%d hangs", k, v))
	}
	return strings.Join(parts, ", ")
}

// TestScontrolHanging makes scontrol hang until killed: every program must return (the Slurm
// client kills scontrol at CommandTimeoutSeconds) and say so.
func TestScontrolHanging(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fakeslurm.Faults
	}{
		{"update", fakeslurm.Faults{Hang: map[string]int{"update": 1}}},
		{"show", fakeslurm.Faults{Hang: map[string]int{"show": 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.fake.SetFaults(tc.f)
			e.note("scontrol hangs: " + faultDesc(tc.f))
			err := e.powerUp("aws-ondemand-[0-3]") // fails the case itself if it does not return
			if tc.name == "update" && (err == nil || !strings.Contains(err.Error(), "timeout")) {
				t.Errorf("resume with a hung `scontrol update`: want an error naming the timeout, got %v", err)
			}
			e.ctld.tick()
			e.fake.SetFaults(tc.f)
			if err := e.reconcile(); err == nil && tc.name == "show" {
				t.Errorf("reconcile with a hung `scontrol show`: want an error, got none")
			}
			e.finish(e.recoverAndCheck())
		})
	}
}

// TestConcurrentRounds runs resume, suspend, reconcile and slurmctld's own transitions
// concurrently on overlapping nodes, 100 random rounds, with 5% of EC2 calls failing (500).
func TestConcurrentRounds(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.inject(ec2sim.Fault{Action: "*", Rate: 0.05, Code: "InternalError"})
	e.note("100 rounds of 3 random concurrent programs on aws-ondemand-[0-7]")
	rng := rand.New(rand.NewPCG(9, 9))
	pick := func() []string {
		var out []string
		for i := range 8 {
			if rng.IntN(3) == 0 {
				out = append(out, fmt.Sprintf("aws-ondemand-%d", i))
			}
		}
		return out
	}
	for round := range 100 {
		var ops []func()
		for range 3 {
			switch rng.IntN(4) {
			case 0:
				nodes := e.ctld.beginResume(pick())
				ops = append(ops, func() { _ = e.resumeProgram(nodes) })
			case 1:
				nodes := e.ctld.beginSuspend(pick())
				ops = append(ops, func() { _ = e.suspendProgram(nodes) })
			case 2:
				ops = append(ops, func() { _ = e.reconcile() })
			default:
				ops = append(ops, func() { e.clk.Advance(30 * time.Second); e.ctld.tick() })
			}
		}
		var wg sync.WaitGroup
		for _, op := range ops {
			wg.Go(op)
		}
		wg.Wait()
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	e.finish(e.recoverAndCheck())
}
