package burst

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

func allocated(n *slurm.Node) { up(n); n.State = "ALLOCATED" }

// TestReconcileActsOnInstanceHealth is issue 17's must-show over ec2sim (real SDK, real
// DescribeInstanceStatus on the wire): a retirement event drains a busy node and powers an idle
// one down; an instance impaired past the grace takes its node DOWN and is terminated; a healthy
// node, a node impaired for less than the grace and an admin's drained node are untouched; no node
// is acted on twice; once the drained node's job ends it is replaced and, powered down, returned.
func TestReconcileActsOnInstanceHealth(t *testing.T) {
	metrics := t.TempDir() + "/m.prom"
	e := newTestEnv(t, `, "MetricsFile": "`+metrics+`"`)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	e.now = t0
	if _, err := Resume(ctx, e.deps, "aws-ondemand-[0-5]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	inst := map[string]string{}
	for node, list := range e.live() {
		inst[node] = list[0].InstanceID
	}
	for _, n := range []string{"aws-ondemand-1", "aws-ondemand-3"} {
		e.fake.Set(n, up)
	}
	for _, n := range []string{"aws-ondemand-0", "aws-ondemand-2", "aws-ondemand-5"} {
		e.fake.Set(n, allocated)
	}
	e.fake.Set("aws-ondemand-4", func(n *slurm.Node) {
		allocated(n)
		n.Flags = append(n.Flags, "DRAIN")
		n.Reason = "admin: testing the disks"
	})

	retire := t0.Add(72 * time.Hour)
	if _, err := e.sim.ScheduleEvent([]string{inst["aws-ondemand-0"], inst["aws-ondemand-1"], inst["aws-ondemand-4"]},
		ec2sim.EventSpec{Code: ec2sim.EventInstanceRetirement, NotBefore: retire}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetStatus([]string{inst["aws-ondemand-2"]}, ec2sim.StatusImpaired, ec2sim.StatusOK); err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(10 * time.Minute) // past the 180 s grace for aws-ondemand-2
	if err := e.sim.SetStatus([]string{inst["aws-ondemand-5"]}, "", ec2sim.StatusImpaired); err != nil {
		t.Fatal(err)
	}

	sum, err := Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	wantReason := "slurm-ec2: instance-retirement scheduled for " + retire.Format(time.RFC3339)
	if n := e.fake.Node("aws-ondemand-0"); !n.Has("DRAIN") || n.IsDown() || n.Reason != wantReason {
		t.Errorf("busy node with a retirement: %s+%v %q, want drained with %q", n.State, n.Flags, n.Reason, wantReason)
	}
	if n := e.fake.Node("aws-ondemand-1"); !n.PoweredDown() || n.Has("DRAIN") || n.IsDown() {
		t.Errorf("idle node with a retirement: %s+%v, want powered down (not drained, not DOWN)", n.State, n.Flags)
	}
	n2 := e.fake.Node("aws-ondemand-2")
	if !n2.IsDown() || !strings.HasPrefix(n2.Reason, "slurm-ec2: status-check-failed since "+t0.Format(time.RFC3339)) || !n2.PoweredDown() {
		t.Errorf("impaired node: %s+%v %q, want DOWN, powered down, reason naming the failed check", n2.State, n2.Flags, n2.Reason)
	}
	if info, _ := e.sim.Instance(inst["aws-ondemand-2"]); info.State != ec2sim.StateTerminated && info.State != ec2sim.StateShuttingDown {
		t.Errorf("impaired instance is %s, want terminated", info.State)
	}
	for node, want := range map[string]string{"aws-ondemand-3": "", "aws-ondemand-5": "", "aws-ondemand-4": "admin: testing the disks"} {
		n := e.fake.Node(node)
		if n.IsDown() || n.PoweredDown() || n.Reason != want {
			t.Errorf("%s: %s+%v %q, want untouched", node, n.State, n.Flags, n.Reason)
		}
		if info, _ := e.sim.Instance(inst[node]); info.State != ec2sim.StateRunning {
			t.Errorf("%s's instance is %s, want running", node, info.State)
		}
	}
	for k, want := range map[string]int{"drain/scheduled-event": 1, "power-down-idle/scheduled-event": 1,
		"down/status-impaired": 1, "power-down/status-impaired": 1, "terminate/status-impaired": 1} {
		if sum.Actions[k] != want {
			t.Errorf("actions[%s] = %d, want %d (all: %v)", k, sum.Actions[k], want, sum.Actions)
		}
	}
	if len(sum.Actions) != 5 {
		t.Errorf("actions %v, want only the health ones", sum.Actions)
	}
	b, _ := os.ReadFile(metrics)
	for _, want := range []string{`slurm_ec2_instance_health{problem="scheduled_event"} 3`, `slurm_ec2_instance_health{problem="impaired"} 2`,
		`slurm_ec2_reconcile_actions{kind="drain",rule="scheduled-event"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}

	// The next run: nothing is done twice; the impaired node, now powered down, returns. (The
	// fake Slurm runs no SuspendProgram: the powered-down idle node's instance is left to the
	// orphan rule, which terminates it.)
	plan := planOf(t, e)
	got := map[string]bool{}
	for _, a := range plan {
		got[string(a.Kind)+"/"+string(a.Rule)+"/"+a.Node+"/"+a.Instance] = true
	}
	want := map[string]bool{"return/status-impaired/aws-ondemand-2/": true, "terminate/orphan/aws-ondemand-1/" + inst["aws-ondemand-1"]: true}
	if len(got) != len(want) || !got["return/status-impaired/aws-ondemand-2/"] || !got["terminate/orphan/aws-ondemand-1/"+inst["aws-ondemand-1"]] {
		t.Fatalf("second run plans %v, want %v", plan, want)
	}
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Node("aws-ondemand-2"); n.IsDown() || !n.PoweredDown() {
		t.Errorf("aws-ondemand-2 after return: %s+%v", n.State, n.Flags)
	}

	// aws-ondemand-0's job ends: the drained node is replaced (DOWN, powered down, its instance
	// terminated), then returned to power saving.
	e.fake.Set("aws-ondemand-0", func(n *slurm.Node) { n.State = "IDLE" })
	sum, err = Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Actions["terminate/scheduled-event"] != 1 || sum.Actions["down/scheduled-event"] != 1 {
		t.Errorf("after the job: actions %v, want the drained node replaced", sum.Actions)
	}
	if info, _ := e.sim.Instance(inst["aws-ondemand-0"]); info.State == ec2sim.StateRunning {
		t.Errorf("retiring instance still running after its node was replaced")
	}
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Node("aws-ondemand-0"); n.IsDown() || n.Has("DRAIN") || !n.PoweredDown() {
		t.Errorf("aws-ondemand-0 at the end: %s+%v %q, want powered down and usable", n.State, n.Flags, n.Reason)
	}
}

// TestStatusShowsHealth: events and failed checks appear in status's problem column.
func TestStatusShowsHealth(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	e.now = t0
	e.resumeUp(ctx, "aws-ondemand-[0-2]")
	live := e.live()
	if _, err := e.sim.ScheduleEvent([]string{live["aws-ondemand-0"][0].InstanceID}, ec2sim.EventSpec{Code: "system-reboot", NotBefore: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetStatus([]string{live["aws-ondemand-1"][0].InstanceID}, "", "impaired"); err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(time.Minute)
	st, err := GetStatus(ctx, e.deps, false)
	if err != nil {
		t.Fatal(err)
	}
	problems := map[string]string{}
	for _, r := range st.Rows {
		problems[r.Node] = r.Problem
	}
	want := map[string]string{
		"aws-ondemand-0": "system-reboot " + t0.Add(time.Hour).Format(time.RFC3339),
		"aws-ondemand-1": "impaired 1m0s (grace 3m0s)",
		"aws-ondemand-2": "",
	}
	for node, w := range want {
		if problems[node] != w {
			t.Errorf("%s problem %q, want %q", node, problems[node], w)
		}
	}
	if st.Totals["health_problems"] != 2 {
		t.Errorf("totals %v", st.Totals)
	}
}

// TestReconcileWithoutHealth: when DescribeInstanceStatus keeps failing (EC2 unavailable, or an
// IAM policy from before this feature), reconcile still does everything else, counts the error and
// acts on no health problem.
func TestReconcileWithoutHealth(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.resumeUp(ctx, "aws-ondemand-[0-1]")
	live := e.live()
	if err := e.sim.SetStatus([]string{live["aws-ondemand-0"][0].InstanceID}, "impaired", "impaired"); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.InjectFault(ec2sim.Fault{Action: "DescribeInstanceStatus", Rate: 1, Code: "Unavailable"}); err != nil {
		t.Fatal(err)
	}
	// aws-ondemand-1's instance vanishes: the instance-gone rule must still act.
	if err := e.sim.TerminateAsUser([]string{live["aws-ondemand-1"][0].InstanceID}); err != nil {
		t.Fatal(err)
	}
	e.now = time.Now().Add(time.Hour)
	sum, err := Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatalf("reconcile failed on an optional read: %v", err)
	}
	if sum.EC2Errors["Unavailable"] == 0 {
		t.Errorf("EC2 errors %v, want Unavailable counted", sum.EC2Errors)
	}
	if sum.Actions["down/instance-gone"] != 1 || sum.Actions["down/status-impaired"] != 0 {
		t.Errorf("actions %v, want the instance-gone rule only", sum.Actions)
	}
	if n := e.fake.Node("aws-ondemand-0"); n.IsDown() || n.PoweredDown() {
		t.Errorf("aws-ondemand-0 acted on without its health: %s+%v", n.State, n.Flags)
	}
}
