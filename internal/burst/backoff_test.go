package burst

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

var testPolicy = backOffPolicy{base: 300 * time.Second, max: 1800 * time.Second, holdAfter: 3, resumeTimeout: 300 * time.Second}

var t0 = time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)

func TestBackOffDelay(t *testing.T) {
	tests := []struct {
		count int
		want  time.Duration
	}{{0, 0}, {1, 300 * time.Second}, {2, 600 * time.Second}, {3, 1200 * time.Second}, {4, 1800 * time.Second}, {40, 1800 * time.Second}}
	for _, tc := range tests {
		if got := testPolicy.delay(tc.count); got != tc.want {
			t.Errorf("delay(%d) = %v, want %v", tc.count, got, tc.want)
		}
	}
	if got := testPolicy.probeInterval(1); got != 360*time.Second {
		t.Errorf("probeInterval(1) = %v, want ResumeTimeout + 1m = 6m0s", got)
	}
}

func TestBackOffReasonRoundTrip(t *testing.T) {
	tests := map[string]struct {
		r    failureRecord
		want string
	}{
		"back-off after a launch error": {
			r:    failureRecord{Count: 1, HoldAfter: 3, Kind: kindLaunch, Detail: "InvalidLaunchTemplateName.NotFoundException", Until: t0},
			want: "slurm-ec2: back-off 1/3: launch failure (InvalidLaunchTemplateName.NotFoundException); launches wait until 2026-12-01T22:00:00Z",
		},
		"held after boot failures": {
			r:    failureRecord{Count: 3, HoldAfter: 3, Kind: kindBoot, Detail: "aws-node-0 never registered", Until: t0},
			want: "slurm-ec2: held 3/3: boot failure (aws-node-0 never registered); next probe 2026-12-01T22:00:00Z; release now: slurm-ec2 release aws-node",
		},
		"detail with parentheses and newlines is cleaned": {
			r:    failureRecord{Count: 2, HoldAfter: 5, Kind: kindBoot, Detail: "x (y)\nz", Until: t0},
			want: "slurm-ec2: back-off 2/5: boot failure (x y z); launches wait until 2026-12-01T22:00:00Z",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := backOffReason("aws-node", tc.r)
			if got != tc.want {
				t.Fatalf("reason = %q\nwant     %q", got, tc.want)
			}
			back, ok := parseBackOffReason(got)
			if !ok {
				t.Fatalf("parseBackOffReason(%q) failed", got)
			}
			want := tc.r
			want.Detail = cleanDetail(tc.r.Detail)
			if diff := cmp.Diff(want, back); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			// Still "ours" for the rules that predate back-off (status, old reconcile).
			if p := ParseReason(got); !p.Ours || p.IsCapacity() {
				t.Fatalf("ParseReason(%q) = %+v", got, p)
			}
		})
	}
	for _, s := range []string{"", "ResumeTimeout reached", "slurm-ec2: held x/3: boot failure (a); next probe 2026-12-01T22:00:00Z",
		"slurm-ec2: back-off 1/3: nap failure (a); launches wait until 2026-12-01T22:00:00Z",
		"slurm-ec2: back-off 0/3: boot failure (a); launches wait until 2026-12-01T22:00:00Z",
		"slurm-ec2: back-off 1/3: boot failure (a); launches wait until tomorrow"} {
		if _, ok := parseBackOffReason(s); ok {
			t.Errorf("parseBackOffReason(%q) accepted", s)
		}
	}
	if long := cleanDetail(strings.Repeat("é", 200)); len(long) > maxDetail+3 {
		t.Errorf("detail not bounded: %d bytes", len(long))
	}
}

func FuzzParseBackOffReason(f *testing.F) {
	f.Add("slurm-ec2: held 3/3: boot failure (aws-node-0 never registered); next probe 2026-12-01T22:00:00Z; release now: slurm-ec2 release aws-node")
	f.Add("slurm-ec2: back-off 1/3: launch failure (X); launches wait until 2026-12-01T22:00:00Z")
	f.Add("ResumeTimeout reached")
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := parseBackOffReason(s)
		if !ok {
			return
		}
		if r.Count < 1 || r.HoldAfter < 1 || (r.Kind != kindBoot && r.Kind != kindLaunch) {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		// What we parse, we write back the same way (the detail is already clean).
		if again, ok := parseBackOffReason(backOffReason("g", r)); !ok || again.Count != r.Count || !again.Until.Equal(r.Until) {
			t.Fatalf("rewrite of %q does not parse back: %+v", s, again)
		}
	})
}

// backOffConfig is a config with one group "aws-node" of n nodes.
func backOffConfig(t *testing.T, n int) *config.Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir+"/config.json", `{"SlurmConf": {"ResumeProgram": "/a/resume", "SuspendProgram": "/a/suspend"}}`)
	writeFile(t, dir+"/partitions.json", fmt.Sprintf(`{"Partitions": [{"PartitionName": "aws", "NodeGroups": [{"NodeGroupName": "node",
	  "MaxNodes": %d, "Region": "us-east-1", "PurchasingOption": "on-demand",
	  "LaunchTemplateSpecification": {"LaunchTemplateName": "t", "Version": "$Latest"}, "SubnetIds": ["subnet-1"]}]}]}`, n))
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func idleNode(name string) slurm.Node {
	return slurm.Node{Name: name, State: "IDLE", Flags: []string{"CLOUD", "POWERED_DOWN"}}
}

func downNode(name, reason string, at time.Time) slurm.Node {
	return slurm.Node{Name: name, State: "DOWN", Flags: []string{"CLOUD", "POWERED_DOWN"}, Reason: reason, ReasonTime: at}
}

func TestReadFailures(t *testing.T) {
	cfg := backOffConfig(t, 4)
	r1 := backOffReason("aws-node", failureRecord{Count: 1, HoldAfter: 3, Kind: kindBoot, Detail: "a", Until: t0})
	r2 := backOffReason("aws-node", failureRecord{Count: 2, HoldAfter: 3, Kind: kindLaunch, Detail: "b", Until: t0.Add(time.Hour)})
	nodes := []slurm.Node{downNode("aws-node-2", r1, t0.Add(-time.Hour)), downNode("aws-node-0", r2, t0.Add(-time.Minute)),
		idleNode("aws-node-1"), downNode("aws-node-3", "admin says no", t0), idleNode("other-node-0")}
	gf := readFailures(cfg, nodes)["aws-node"]
	want := &groupFailures{Group: "aws-node", failureRecord: failureRecord{Count: 2, HoldAfter: 3, Kind: kindLaunch, Detail: "b", Until: t0.Add(time.Hour)},
		Since: t0.Add(-time.Minute), Holders: []string{"aws-node-0", "aws-node-2"}, Idle: []string{"aws-node-1"}, Stale: []string{"aws-node-2"}}
	if diff := cmp.Diff(want, gf, cmp.AllowUnexported(groupFailures{})); diff != "" {
		t.Fatalf("readFailures (-want +got):\n%s", diff)
	}
}

func TestGateLaunch(t *testing.T) {
	backing := failureRecord{Count: 1, HoldAfter: 3, Kind: kindLaunch, Detail: "InvalidLaunchTemplateName.NotFoundException", Until: t0.Add(5 * time.Minute)}
	held := failureRecord{Count: 3, HoldAfter: 3, Kind: kindBoot, Detail: "x", Until: t0}
	probeNext := held
	probeNext.Until = t0.Add(20 * time.Minute)
	tests := map[string]struct {
		gf    *groupFailures
		nodes []string
		want  launchGate
	}{
		"no failures": {nil, []string{"a-0", "a-1"}, launchGate{Launch: []string{"a-0", "a-1"}}},
		"backing off": {&groupFailures{Group: "a", failureRecord: backing, Holders: []string{"a-5"}}, []string{"a-0", "a-1"},
			launchGate{Down: []string{"a-0", "a-1"}, Reason: backOffReason("a", backing)}},
		"back-off over: launch all, tagged": {&groupFailures{Group: "a", failureRecord: failureRecord{Count: 2, HoldAfter: 3, Kind: kindBoot, Until: t0}, Holders: []string{"a-5"}},
			[]string{"a-0", "a-1"}, launchGate{Launch: []string{"a-0", "a-1"}, Tag: 2}},
		"held, probe due: one node": {&groupFailures{Group: "a", failureRecord: held, Holders: []string{"a-0", "a-5", "a-6"}}, []string{"a-1", "a-2", "a-5"},
			launchGate{Launch: []string{"a-1"}, Down: []string{"a-2", "a-5"}, Restamp: []string{"a-0", "a-6"}, Reason: backOffReason("a", probeNext), Probe: true, Tag: 3}},
		"held, probe not due": {&groupFailures{Group: "a", failureRecord: probeNext, Holders: []string{"a-0"}}, []string{"a-1"},
			launchGate{Down: []string{"a-1"}, Reason: backOffReason("a", probeNext)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := gateLaunch(tc.gf, tc.nodes, t0, testPolicy)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("gateLaunch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordFailure(t *testing.T) {
	gf := &groupFailures{Group: "a", failureRecord: failureRecord{Count: 2, HoldAfter: 3, Kind: kindBoot, Until: t0.Add(time.Hour)}}
	tests := map[string]struct {
		gf        *groupFailures
		at        int
		wantCount int
		wantUntil time.Time
	}{
		"first":                                 {nil, -1, 1, t0.Add(5 * time.Minute)},
		"first, instance launched at 0":         {nil, 0, 1, t0.Add(5 * time.Minute)},
		"next, unknown launch count":            {gf, -1, 3, t0.Add(20 * time.Minute)},
		"instance launched at the count":        {gf, 2, 3, t0.Add(20 * time.Minute)},
		"same try counted already: no wait cut": {gf, 1, 2, t0.Add(time.Hour)},
		"lost record, the tag remembers":        {&groupFailures{Group: "a"}, 4, 5, t0.Add(30 * time.Minute)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := recordFailure(tc.gf, kindBoot, "d", tc.at, t0, testPolicy)
			if r.Count != tc.wantCount || !r.Until.Equal(tc.wantUntil) || r.HoldAfter != 3 {
				t.Fatalf("recordFailure = %+v, want count %d until %v", r, tc.wantCount, tc.wantUntil)
			}
		})
	}
}

func TestPlanBackOff(t *testing.T) {
	rec := func(count int, until time.Time) failureRecord {
		return failureRecord{Count: count, HoldAfter: 3, Kind: kindBoot, Detail: "x", Until: until}
	}
	tests := map[string]struct {
		gf       *groupFailures
		timedOut map[string]int
		check    func(t *testing.T, p backOffPlan)
	}{
		"ResumeTimeout counts and holds the node": {&groupFailures{Group: "a", Idle: []string{"a-1"}}, map[string]int{"a-0": -1},
			func(t *testing.T, p backOffPlan) {
				r, ok := parseBackOffReason(p.Down["a-0"])
				if !ok || r.Count != 1 || !r.Until.Equal(t0.Add(5*time.Minute)) || len(p.Return) != 0 || !p.Handled["a-0"] {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"third failure holds the group: idle nodes DOWN": {&groupFailures{Group: "a", failureRecord: rec(2, t0), Holders: []string{"a-3"}, Idle: []string{"a-1", "a-2"}},
			map[string]int{"a-0": 2}, func(t *testing.T, p backOffPlan) {
				r, _ := parseBackOffReason(p.Down["a-1"])
				if !r.Held() || r.Count != 3 || p.Down["a-2"] != p.Down["a-1"] || p.Down["a-0"] != p.Down["a-1"] || p.Probe != "" || len(p.Return) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"held, not due: holders stay, new idle nodes go DOWN": {&groupFailures{Group: "a", failureRecord: rec(3, t0.Add(time.Minute)), Holders: []string{"a-0"}, Idle: []string{"a-4"}},
			nil, func(t *testing.T, p backOffPlan) {
				if len(p.Down) != 1 || p.Down["a-4"] == "" || len(p.Return) != 0 || !p.Handled["a-0"] {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"held, due: an idle node stays up as the probe": {&groupFailures{Group: "a", failureRecord: rec(3, t0), Holders: []string{"a-0"}, Idle: []string{"a-4", "a-5"}},
			nil, func(t *testing.T, p backOffPlan) {
				if p.Probe != "a-4" || p.Down["a-4"] != "" || p.Down["a-5"] == "" || len(p.Return) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"held, due, no idle node: a holder returns as the probe": {&groupFailures{Group: "a", failureRecord: rec(3, t0), Holders: []string{"a-0", "a-1"}},
			nil, func(t *testing.T, p backOffPlan) {
				if p.Probe != "a-0" || !slices.Equal(p.Return, []string{"a-0"}) || len(p.Down) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"back-off over, no idle node: every holder returns": {&groupFailures{Group: "a", failureRecord: rec(1, t0), Holders: []string{"a-0"}},
			nil, func(t *testing.T, p backOffPlan) {
				if !slices.Equal(p.Return, []string{"a-0"}) {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"back-off over: all holders but the keeper return": {&groupFailures{Group: "a", failureRecord: rec(1, t0), Holders: []string{"a-0", "a-1", "a-2"}, Idle: []string{"a-3"}},
			nil, func(t *testing.T, p backOffPlan) {
				if !slices.Equal(p.Return, []string{"a-0", "a-1"}) || len(p.Down) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"no failure for a whole max back-off after it ended: forgotten": {&groupFailures{Group: "a", failureRecord: rec(2, t0.Add(-31*time.Minute)), Holders: []string{"a-0", "a-1"}, Idle: []string{"a-2"}},
			nil, func(t *testing.T, p backOffPlan) {
				if !slices.Equal(p.Return, []string{"a-0", "a-1"}) || len(p.Down) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"held is never forgotten": {&groupFailures{Group: "a", failureRecord: rec(3, t0.Add(-time.Hour)), Holders: []string{"a-0", "a-1"}},
			nil, func(t *testing.T, p backOffPlan) {
				if !slices.Equal(p.Return, []string{"a-0"}) || p.Probe != "a-0" {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"back-off running: nothing moves": {&groupFailures{Group: "a", failureRecord: rec(2, t0.Add(time.Second)), Holders: []string{"a-0", "a-1"}},
			nil, func(t *testing.T, p backOffPlan) {
				if len(p.Return) != 0 || len(p.Down) != 0 || !p.Handled["a-1"] {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"a node registered after the failure: reset": {&groupFailures{Group: "a", failureRecord: rec(3, t0.Add(time.Hour)), Since: t0.Add(-time.Hour), Healthy: t0.Add(-time.Minute), Holders: []string{"a-0", "a-1"}},
			nil, func(t *testing.T, p backOffPlan) {
				if !p.Reset || !slices.Equal(p.Return, []string{"a-0", "a-1"}) || len(p.Down) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
		"a node launched before the failure is no reset": {&groupFailures{Group: "a", failureRecord: rec(1, t0.Add(time.Hour)), Since: t0.Add(-time.Minute), Healthy: t0.Add(-time.Hour), Holders: []string{"a-0"}},
			nil, func(t *testing.T, p backOffPlan) {
				if p.Reset || len(p.Return) != 0 {
					t.Fatalf("plan = %+v", p)
				}
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { tc.check(t, planBackOff(tc.gf, tc.timedOut, t0, testPolicy)) })
	}
}

// simGroup runs the deciding logic against an in-process Slurm node table, with time flowing
// in a synctest bubble: a job wants one node of the group every cycle, as Slurm's scheduler
// would ask (the lowest powered-down node that is not DOWN).
type simGroup struct {
	cfg      *config.Config
	nodes    map[string]*slurm.Node
	launched int
	boots    bool           // whether an instance's slurmd registers
	tags     map[string]int // node -> failures tag of its instance
	launchAt map[string]time.Time
}

func newSimGroup(t *testing.T, n int) *simGroup {
	s := &simGroup{cfg: backOffConfig(t, n), nodes: map[string]*slurm.Node{}, tags: map[string]int{}, launchAt: map[string]time.Time{}}
	for i := range n {
		nd := idleNode(fmt.Sprintf("aws-node-%d", i))
		s.nodes[nd.Name] = &nd
	}
	return s
}

func (s *simGroup) list() []slurm.Node {
	var out []slurm.Node
	for _, n := range s.nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b slurm.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *simGroup) setDown(name, reason string) {
	n := s.nodes[name]
	n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN"}, reason, time.Now()
}

// schedule picks the node Slurm would power up for a one-node job.
func (s *simGroup) schedule() string {
	for _, n := range s.list() {
		if n.PoweredDown() && !n.IsDown() {
			return n.Name
		}
	}
	return ""
}

// resume is the resume gate, then the launch.
func (s *simGroup) resume(name string) {
	gf := readFailures(s.cfg, s.list())["aws-node"]
	g := gateLaunch(gf, []string{name}, time.Now(), testPolicy)
	for _, n := range g.Down {
		s.setDown(n, g.Reason)
	}
	for _, n := range g.Restamp {
		s.setDown(n, g.Reason)
	}
	for _, n := range g.Launch {
		s.launched++
		s.tags[n] = g.Tag
		s.launchAt[n] = time.Now()
		s.nodes[n].Flags = []string{"CLOUD", "NOT_RESPONDING", "POWERING_UP"}
	}
}

// reconcile is the back-off part of reconcile.
func (s *simGroup) reconcile() backOffPlan {
	gf := readFailures(s.cfg, s.list())["aws-node"]
	timedOut := map[string]int{}
	for _, n := range s.list() {
		if n.IsDown() && n.Reason == resumeTimeoutReason {
			timedOut[n.Name] = s.tags[n.Name]
		}
		if n.State == "IDLE" && !n.PoweredDown() && !n.PoweringUp() && s.launchAt[n.Name].After(gf.Healthy) {
			gf.Healthy = s.launchAt[n.Name]
		}
	}
	p := planBackOff(gf, timedOut, time.Now(), testPolicy)
	for n, r := range p.Down {
		s.setDown(n, r)
	}
	for _, n := range p.Return {
		nd := s.nodes[n]
		nd.State, nd.Reason, nd.ReasonTime = "IDLE", "", time.Time{}
	}
	return p
}

// cycle is one launch → ResumeTimeout → reconcile → schedule round of ResumeTimeout.
func (s *simGroup) cycle() {
	if name := s.schedule(); name != "" {
		s.resume(name)
	}
	time.Sleep(testPolicy.resumeTimeout)
	for _, n := range s.list() {
		if n.PoweringUp() {
			if s.boots {
				s.nodes[n.Name].Flags = []string{"CLOUD"}
			} else {
				s.setDown(n.Name, resumeTimeoutReason)
			}
		}
	}
	s.reconcile()
}

func TestBackOffSimulationNeverBoots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimGroup(t, 10)
		for range 6 {
			s.cycle()
		}
		if s.launched > 3 {
			t.Fatalf("6 cycles of a node that never boots launched %d instances, want at most 3", s.launched)
		}
		st := backOffState(s.cfg, s.list(), testPolicy)[0]
		if !st.Held || st.Failures != 3 {
			t.Fatalf("after 6 cycles: %+v, want held after 3 failures", st)
		}
		down := 0
		for _, n := range s.list() {
			if n.IsDown() {
				down++
			}
		}
		if down != 10 {
			t.Fatalf("held group has %d of 10 nodes DOWN", down)
		}
		// An hour more of the broken image: one probe per interval, never more.
		before := s.launched
		for range 12 {
			s.cycle()
		}
		if probes := s.launched - before; probes < 1 || probes > 3 {
			t.Fatalf("an hour of a held group launched %d probes, want 1 to 3 (one per %v)", probes, testPolicy.probeInterval(3))
		}
		// The image is fixed: the next probe boots, the group recovers without an operator.
		s.boots = true
		for range 8 {
			s.cycle()
		}
		st = backOffState(s.cfg, s.list(), testPolicy)[0]
		if st.Failures != 0 {
			t.Fatalf("after the image was fixed: %+v, want no failures", st)
		}
		for _, n := range s.list() {
			if n.IsDown() {
				t.Fatalf("node %s still DOWN after recovery: %q", n.Name, n.Reason)
			}
		}
	})
}

func TestBackOffSimulationSingleNodeGroup(t *testing.T) {
	// A group whose every node carries the record gives its keeper back when the back-off
	// ends (else no job could ever probe it). Slurm 22.05 drops a reason set on a node that is
	// not DOWN (seen on the real slurmctld), so the count starts again there: the back-off still
	// halves what a broken image costs, but such a group is never held (docs/configuration.md).
	synctest.Test(t, func(t *testing.T) {
		s := newSimGroup(t, 1)
		for range 12 {
			s.cycle()
		}
		if s.launched > 6 || s.launched < 2 {
			t.Fatalf("12 cycles launched %d instances for a one-node group that never boots, want 2 to 6", s.launched)
		}
		s.boots = true
		for range 4 {
			s.cycle()
		}
		if n := s.nodes["aws-node-0"]; n.IsDown() || n.PoweredDown() {
			t.Fatalf("after the fix the node is %s %v %q, want up", n.State, n.Flags, n.Reason)
		}
	})
}
