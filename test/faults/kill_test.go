package faults

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

// The SIGKILL cases run the real binary as slurmctld would and kill it at a step found from
// outside (no test seams in production code): a hung scontrol, a slow EC2 action, a count of
// EC2 calls.

// child is one run of bin/slurm-ec2.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has been reaped
	err  error         // its Wait error, once done
	once sync.Once
}

func (e *env) start(args ...string) *child {
	e.t.Helper()
	cmd := exec.Command(binary(e.t), args...)
	cmd.Env = os.Environ() // the test's AWS_*, FAKESLURM_DIR, SLURM_EC2_CONFIG_DIR
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting %v: %v", args, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	e.t.Cleanup(func() { c.kill() })
	return c
}

// kill sends SIGKILL to the child (only it: the scontrol it started lives on, as with a real
// slurmctld killing its ResumeProgram) and reaps it.
func (c *child) kill() {
	c.once.Do(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Signal(syscall.SIGKILL)
			<-c.done
		}
	})
}

// waitFor polls cond until it holds; false if the child exits first or after limit.
func (e *env) waitFor(c *child, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		select {
		case <-c.done:
			e.t.Fatalf("the program ended (%v) before %s; logs:\n%s", c.err, what, tail(e.logs.String(), 6000))
		case <-time.After(5 * time.Millisecond):
		}
	}
	e.t.Fatalf("timed out waiting for %s", what)
}

// hungCall reports whether a scontrol call of kind is hanging now.
func (e *env) hungCall(kind string) bool {
	for _, c := range e.fake.Calls() {
		if c.Exit == -1 && c.Kind() == kind {
			return true
		}
	}
	return false
}

// reapHung kills the hung fake scontrol processes the killed program left behind (by pid, after
// checking the pid is still a fakeslurm).
func (e *env) reapHung() {
	for _, c := range e.fake.Calls() {
		if c.Exit != -1 || c.PID <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + itoa(c.PID) + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte("scontrol")) && !bytes.Contains(b, []byte("sinfo")) {
			continue
		}
		_ = syscall.Kill(c.PID, syscall.SIGKILL)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func (e *env) calls(action string) int { return e.sim.Counters()[action].Total }

func (e *env) liveCount() int { return len(e.liveIDs()) }

func TestSIGKILL(t *testing.T) {
	type step struct {
		name string
		run  func(e *env)
	}
	resumeKill := func(nodes string, arm func(e *env), at string, cond func(e *env) bool) func(e *env) {
		return func(e *env) {
			arm(e)
			names := e.ctld.beginResume(expand(e.t, nodes))
			c := e.start("resume", strings.Join(names, ","))
			e.waitFor(c, at, func() bool { return cond(e) })
			c.kill()
			e.note("SIGKILL resume " + at)
		}
	}
	steps := []step{
		{"resume/before-CreateFleet", resumeKill("aws-ondemand-[0-3]",
			func(e *env) { e.fake.SetFaults(fakeslurm.Faults{Hang: map[string]int{"show": 1}}) },
			"before CreateFleet (scontrol show hangs)", func(e *env) bool { return e.hungCall("show") })},
		{"resume/in-CreateFleet", resumeKill("aws-ondemand-[0-3]",
			func(e *env) { e.lat.set("CreateFleet", 30*time.Second) },
			"after EC2 launched, before CreateFleet returned", func(e *env) bool { return e.liveCount() >= 4 })},
		{"resume/before-scontrol", resumeKill("aws-ondemand-[0-3]",
			func(e *env) { e.fake.SetFaults(fakeslurm.Faults{Hang: map[string]int{"update": 1}}) },
			"after CreateFleet, before scontrol update returned", func(e *env) bool { return e.hungCall("update") })},
		{"resume/halfway-tagging", resumeKill("aws-spot-[0-15]",
			func(e *env) { e.lat.set("CreateTags", 30*time.Second) },
			"halfway through tagging (8 of 16 CreateTags)", func(e *env) bool { return e.calls("CreateTags") >= 8 })},
		{"suspend/before-TerminateInstances", func(e *env) {
			bootNodes(e, "aws-ondemand-[0-3]")
			e.inject(ec2sim.Fault{Action: "TerminateInstances", ExtraLatency: 30 * time.Second})
			names := e.ctld.beginSuspend(expand(e.t, "aws-ondemand-[0-3]"))
			c := e.start("suspend", strings.Join(names, ","))
			e.waitFor(c, "TerminateInstances sent", func() bool { return e.calls("TerminateInstances") >= 1 })
			c.kill()
			e.note("SIGKILL suspend before TerminateInstances took effect")
		}},
		{"suspend/in-TerminateInstances", func(e *env) {
			bootNodes(e, "aws-ondemand-[0-3]")
			e.lat.set("TerminateInstances", 30*time.Second)
			names := e.ctld.beginSuspend(expand(e.t, "aws-ondemand-[0-3]"))
			c := e.start("suspend", strings.Join(names, ","))
			e.waitFor(c, "TerminateInstances done", func() bool { return e.liveCount() == 0 })
			c.kill()
			e.note("SIGKILL suspend after TerminateInstances took effect, before it returned")
		}},
		{"reconcile/before-scontrol", func(e *env) {
			bootNodes(e, "aws-ondemand-[0-3]")
			if err := e.sim.TerminateAsUser(e.liveIDs("aws-ondemand-0", "aws-ondemand-1")); err != nil {
				e.t.Fatal(err)
			}
			e.fake.SetFaults(fakeslurm.Faults{Hang: map[string]int{"update": 1}})
			c := e.start("reconcile", "--force")
			e.waitFor(c, "reconcile's scontrol update", func() bool { return e.hungCall("update") })
			c.kill()
			e.note("2 instances terminated by someone else; SIGKILL reconcile before scontrol update returned")
		}},
		{"reconcile/in-TerminateInstances", func(e *env) {
			// Reconcile measures instance ages on EC2's clock (its Date header): move EC2's
			// clock past the orphan grace after the launch.
			bootNodes(e, "aws-ondemand-[0-3]")
			e.clk.Advance(orphanGrace + time.Minute)
			e.fake.Set("aws-ondemand-3", func(n *fakeslurm.Node) { n.Flags = append(n.Flags, "POWERED_DOWN"); n.Addr = n.Name })
			e.lat.set("TerminateInstances", 30*time.Second)
			c := e.start("reconcile", "--force")
			e.waitFor(c, "reconcile's TerminateInstances", func() bool { return e.calls("TerminateInstances") >= 1 })
			c.kill()
			e.note("orphan of a powered-down node; SIGKILL reconcile in TerminateInstances")
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			s.run(e)
			e.reapHung()
			e.finish(e.recoverAndCheck())
		})
	}
}

// bootNodes resumes nodes in-process and lets them register.
func bootNodes(e *env, nodes string) {
	e.t.Helper()
	if err := e.powerUp(nodes); err != nil {
		e.t.Fatalf("resume %s: %v", nodes, err)
	}
	e.ctld.tick()
}

// TestClockSkew runs a resume killed after CreateFleet (its instances carry no Name and Slurm
// never learnt their addresses: only the orphan rule, which compares EC2's LaunchTime with the
// head node's clock, can find them) with ec2sim's clock off from the head node's.
func TestClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{-10 * time.Minute, 2 * time.Minute, 10 * time.Minute} {
		t.Run("ec2"+signed(skew), func(t *testing.T) {
			e := newEnv(t, envOptions{skew: skew})
			e.note("EC2 clock " + signed(skew) + " from the head node")
			if err := e.powerUp("aws-spot-[0-3]"); err != nil {
				t.Logf("resume: %v", err)
			}
			e.ctld.tick()
			e.fake.SetFaults(fakeslurm.Faults{Hang: map[string]int{"update": 1}})
			names := e.ctld.beginResume(expand(t, "aws-ondemand-[0-3]"))
			c := e.start("resume", strings.Join(names, ","))
			e.waitFor(c, "scontrol update", func() bool { return e.hungCall("update") })
			c.kill()
			e.reapHung()
			e.note("SIGKILL resume after CreateFleet")
			e.finish(e.recoverAndCheck())
		})
	}
}

func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}
