package faults

import (
	"slices"
	"sync"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// slurmctld is a small model of what Slurm 22.05's power saving does to cloud nodes, acting on
// the fake Slurm's node table. The fake only applies `scontrol update`; the model adds what
// slurmctld does by itself (internal/slurm/testdata/README.md, /work/shared/slurm/NOTES.md):
//
//   - Resuming: before ResumeProgram runs, the nodes become ALLOCATED+CLOUD+NOT_RESPONDING+
//     POWERING_UP (a job waits for them).
//   - Registering: a POWERING_UP node whose NodeAddr is the private IP of a running instance
//     "boots": its slurmd registers and the node becomes ALLOCATED+CLOUD (the job runs; jobs
//     outlast the cases, so nodes stay up unless a case suspends them).
//   - ResumeTimeout: a node still POWERING_UP ResumeTimeout after its resume began becomes
//     DOWN+CLOUD+POWERED_DOWN+NOT_RESPONDING with reason "ResumeTimeout reached" (a DOWN node
//     keeps the reason it had), and ResumeFailProgram is run for those nodes.
//   - Suspending: SuspendProgram runs for nodes slurmctld powers down (a case calls
//     beginSuspend for idle nodes, as after SuspendTime); they are POWERING_DOWN for
//     SuspendTimeout, then IDLE+CLOUD+POWERED_DOWN with NodeAddr reset to the node name.
//   - A node powered down by `scontrol update state=power_down_force` (the fake applies it at
//     once) also gets SuspendProgram, as slurmctld runs it for every node it powers down.
//
// Not modelled: SlurmdTimeout (a node whose instance vanished is found by reconcile, not by
// slurmctld's ping), job scheduling, reconfigure resetting NodeAddr.
type slurmctld struct {
	e *env

	mu        sync.Mutex
	resumeAt  map[string]time.Time // POWERING_UP since
	suspendAt map[string]time.Time // POWERING_DOWN since
	up        map[string]bool      // powered up at the last look
}

func newSlurmctld(e *env) *slurmctld {
	return &slurmctld{e: e, resumeAt: map[string]time.Time{}, suspendAt: map[string]time.Time{}, up: map[string]bool{}}
}

func poweredUp(n *slurm.Node) bool { return !n.PoweredDown() && !n.PoweringDown() }

// beginResume makes the powered-down, usable nodes among names POWERING_UP and returns them:
// the nodes ResumeProgram is run for.
func (s *slurmctld) beginResume(names []string) []string {
	now := s.e.clk.Now()
	var out []string
	for _, name := range names {
		ok := false
		s.e.fake.Set(name, func(n *slurm.Node) {
			if !n.Has("POWERED_DOWN") || n.IsDown() || n.Drained() || n.PoweringUp() {
				return
			}
			n.State = "ALLOCATED"
			n.Flags = slices.DeleteFunc(n.Flags, func(f string) bool { return f == "POWERED_DOWN" })
			addFlags(n, "NOT_RESPONDING", "POWERING_UP")
			ok = true
		})
		if ok {
			s.mu.Lock()
			s.resumeAt[name] = now
			s.up[name] = true
			s.mu.Unlock()
			out = append(out, name)
		}
	}
	return out
}

// beginSuspend makes the powered-up, registered nodes among names POWERING_DOWN (their jobs
// ended) and returns them: the nodes SuspendProgram is run for.
func (s *slurmctld) beginSuspend(names []string) []string {
	now := s.e.clk.Now()
	var out []string
	for _, name := range names {
		ok := false
		s.e.fake.Set(name, func(n *slurm.Node) {
			if !poweredUp(n) || n.PoweringUp() || n.IsDown() {
				return
			}
			n.State = "IDLE"
			addFlags(n, "POWERING_DOWN")
			ok = true
		})
		if ok {
			s.mu.Lock()
			s.suspendAt[name] = now
			s.mu.Unlock()
			out = append(out, name)
		}
	}
	return out
}

// tick applies slurmctld's own transitions at the current time, then runs ResumeFailProgram and
// SuspendProgram for the nodes that need them.
func (s *slurmctld) tick() {
	e := s.e
	e.sim.Advance()
	now := e.clk.Now()
	running := map[string]bool{}
	for _, in := range e.instances() {
		if in.State == "running" {
			running[in.PrivateIP] = true
		}
	}
	var failed, suspend []string
	for _, node := range e.fake.Nodes() {
		name := node.Name
		e.fake.Set(name, func(n *slurm.Node) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch {
			case n.Has("POWERING_UP"):
				start, ok := s.resumeAt[name]
				if !ok {
					start = now
					s.resumeAt[name] = now
				}
				if !n.IsDown() && n.Addr != name && running[n.Addr] {
					delFlags(n, "POWERING_UP", "NOT_RESPONDING")
					delete(s.resumeAt, name)
					break
				}
				if now.Sub(start) >= resumeTimeout {
					delFlags(n, "POWERING_UP", "POWER_UP")
					addFlags(n, "POWERED_DOWN", "NOT_RESPONDING")
					if !n.IsDown() {
						n.State = "DOWN"
						n.Reason, n.ReasonUser, n.ReasonTime = "ResumeTimeout reached", "slurm", now
					}
					delete(s.resumeAt, name)
					failed = append(failed, name)
				}
			case n.Has("POWERING_DOWN"):
				start, ok := s.suspendAt[name]
				if !ok {
					start = now
					s.suspendAt[name] = now
				}
				if now.Sub(start) >= suspendTimeout {
					delFlags(n, "POWERING_DOWN", "POWER_DOWN")
					addFlags(n, "POWERED_DOWN")
					if n.State == "ALLOCATED" || n.State == "MIXED" {
						n.State = "IDLE"
					}
					n.Addr, n.Hostname = name, name
					delete(s.suspendAt, name)
				}
			case n.Has("POWERED_DOWN") && s.up[name]:
				// Powered down by scontrol (POWER_DOWN_FORCE) behind our back: slurmctld runs
				// SuspendProgram for it.
				if _, suspending := s.suspendAt[name]; !suspending {
					suspend = append(suspend, name)
				}
			}
			s.up[name] = poweredUp(n)
		})
	}
	if err := e.resumeFailProgram(failed); err != nil {
		e.t.Logf("ResumeFailProgram %v: %v", failed, err)
	}
	if err := e.suspendProgram(suspend); err != nil {
		e.t.Logf("SuspendProgram %v: %v", suspend, err)
	}
}

func addFlags(n *slurm.Node, fs ...string) {
	for _, f := range fs {
		if !slices.Contains(n.Flags, f) {
			n.Flags = append(n.Flags, f)
		}
	}
}

func delFlags(n *slurm.Node, fs ...string) {
	n.Flags = slices.DeleteFunc(n.Flags, func(f string) bool { return slices.Contains(fs, f) })
}
