package burst

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// up marks a node as Slurm sees it once its slurmd registered: no power-saving flags.
func up(n *slurm.Node) {
	n.State = "IDLE"
	n.Flags = []string{"CLOUD"}
}

func reconcileOpts() ReconcileOptions { return ReconcileOptions{Hostname: "fakeslurm"} }

func planOf(t *testing.T, e *testEnv) []Action {
	t.Helper()
	var out bytes.Buffer
	sum, err := Reconcile(context.Background(), e.deps, ReconcileOptions{DryRun: true, Out: &out})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	return sum.Plan
}

func TestReconcileRules(t *testing.T) {
	e := newTestEnv(t, `, "CoolDownSeconds": 300, "OrphanGraceSeconds": 300`)
	ctx := context.Background()
	if _, err := Resume(ctx, e.deps, "aws-spot-[0-4]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	inst := map[string]string{} // node -> instance id
	for n, list := range e.live() {
		inst[n] = list[0].InstanceID
	}
	now := time.Now()

	// spot-0: healthy and up. spot-1: never registered (ResumeTimeout). spot-2: up, its spot
	// instance interrupted. spot-3: up, plus a second instance named for it. spot-4: powered down
	// while its instance lives on (a suspend that failed).
	for _, n := range []string{"aws-spot-0", "aws-spot-2", "aws-spot-3"} {
		e.fake.Set(n, up)
	}
	e.fake.Set("aws-spot-1", func(n *slurm.Node) {
		n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN", "NOT_RESPONDING"}, "ResumeTimeout reached", now
	})
	e.fake.Set("aws-spot-4", func(n *slurm.Node) { n.Addr, n.Hostname = n.Name, n.Name })
	if err := e.sim.SpotInterrupt([]string{inst["aws-spot-2"]}, 0); err != nil {
		t.Fatal(err)
	}
	dup := e.launchRaw("us-east-1", "subnet-22222222", 1, map[string]string{
		fleet.TagCluster: testCluster, fleet.TagNodeGroup: "aws-spot", "Name": "aws-spot-3"})[0]
	orphan := e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: "aws-spot"})[0]
	foreign := e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: "othercluster", "Name": "aws-spot-4"})[0]
	// Capacity cool-downs: one over, one running; and an admin's DOWN that is not ours to undo.
	e.fake.Set("aws-ondemand-0", func(n *slurm.Node) {
		n.State, n.Reason, n.ReasonTime = "DOWN", "slurm-ec2: InsufficientInstanceCapacity c5.xlarge us-east-1a", now.Add(-10*time.Minute)
	})
	e.fake.Set("aws-ondemand-1", func(n *slurm.Node) {
		n.State, n.Reason, n.ReasonTime = "DOWN", "slurm-ec2: InsufficientInstanceCapacity c5.xlarge us-east-1a", now.Add(-time.Minute)
	})
	e.fake.Set("aws-ondemand-2", func(n *slurm.Node) {
		n.State, n.Reason, n.ReasonTime = "DOWN", "disk replaced, testing", now.Add(-time.Hour)
	})

	e.sim.ResetCounters()
	e.fake.ResetCalls()
	sum, err := Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	// One read of Slurm's nodes and one DescribeInstances page per region.
	reads := 0
	for _, c := range e.fake.Calls() {
		if c.Kind() == "show" || c.Kind() == "sinfo" {
			reads++
		}
	}
	// One read of each side to plan (one DescribeInstances page per region), then, under the
	// locks, one re-read of Slurm and at most three filtered DescribeInstances (ids, names,
	// addresses) in the one region acted on.
	if reads != 2 {
		t.Errorf("Slurm node reads = %d, want 2 (plan, re-check)", reads)
	}
	if n := e.callsOf("DescribeInstances"); n < 2 || n > 2+3 {
		t.Errorf("DescribeInstances calls = %d, want 2 to plan + at most 3 to re-check (%+v)", n, e.sim.Counters()["DescribeInstances"])
	}

	live := e.live()
	state := func(id string) string {
		in, _ := e.sim.Instance(id)
		return in.State
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"healthy spot-0 keeps its instance", state(inst["aws-spot-0"]) == "running"},
		{"failed resume spot-1: instance terminated", state(inst["aws-spot-1"]) != "running"},
		{"duplicate of spot-3 terminated, the known one kept", state(dup) != "running" && state(inst["aws-spot-3"]) == "running"},
		{"young orphans survive the grace period", state(orphan) == "running" && state(inst["aws-spot-4"]) == "running"},
		{"another cluster's instance untouched", state(foreign) == "running"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: failed (live: %v)", c.what, sortedKeys(live))
		}
	}
	// A failed boot is not returned to service blindly: it counts towards its group's back-off
	// and stays DOWN with the record (backoff.go).
	if n := e.fake.Node("aws-spot-1"); !n.IsDown() || !n.PoweredDown() || !strings.HasPrefix(n.Reason, "slurm-ec2: back-off 1/3: boot failure (aws-spot-1") {
		t.Errorf("spot-1 not DOWN with its group's back-off: %s %v %q", n.State, n.Flags, n.Reason)
	}
	n2 := e.fake.Node("aws-spot-2")
	if !n2.IsDown() || !strings.Contains(n2.Reason, inst["aws-spot-2"]) || !strings.Contains(n2.Reason, "Server.SpotInstanceTermination") {
		t.Errorf("spot-2: %s reason %q, want DOWN naming the instance and the spot state reason", n2.State, n2.Reason)
	}
	if !n2.PoweredDown() {
		t.Errorf("spot-2 not powered down after DOWN: %v", n2.Flags)
	}
	if n := e.fake.Node("aws-ondemand-0"); n.IsDown() {
		t.Errorf("ondemand-0: cool-down over, still DOWN: %q", n.Reason)
	}
	if n := e.fake.Node("aws-ondemand-1"); !n.IsDown() {
		t.Errorf("ondemand-1: cool-down running, returned too early")
	}
	if n := e.fake.Node("aws-ondemand-2"); !n.IsDown() || n.Reason != "disk replaced, testing" {
		t.Errorf("ondemand-2: an admin's DOWN was changed: %s %q", n.State, n.Reason)
	}
	if sum.Actions["terminate/duplicate"] != 1 || sum.Actions["terminate/back-off"] != 1 || sum.Actions["down/instance-gone"] != 1 {
		t.Errorf("actions %v", sum.Actions)
	}

	// An hour later the orphans are old enough: both ours go, the foreign one stays.
	e.now = now.Add(time.Hour)
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	if state(orphan) == "running" || state(inst["aws-spot-4"]) == "running" {
		t.Errorf("old orphans not terminated: %s %s", state(orphan), state(inst["aws-spot-4"]))
	}
	if state(foreign) != "running" {
		t.Errorf("another cluster's instance was terminated")
	}
	// spot-2 came back to power saving on this second pass (DOWN + powered down -> returned).
	if n := e.fake.Node("aws-spot-2"); n.IsDown() || !n.PoweredDown() {
		t.Errorf("spot-2 not returned on the second pass: %s %v", n.State, n.Flags)
	}
	// Idempotent: nothing left to do.
	if plan := planOf(t, e); len(plan) != 0 {
		t.Errorf("third pass plans %v, want nothing", plan)
	}
}

func TestReconcileDryRunChangesNothing(t *testing.T) {
	e := newTestEnv(t, `, "OrphanGraceSeconds": 0`)
	ctx := context.Background()
	orphan := e.launchRaw("us-west-2", "subnet-33333333", 2, map[string]string{fleet.TagCluster: testCluster})
	var out bytes.Buffer
	sum, err := Reconcile(ctx, e.deps, ReconcileOptions{DryRun: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Plan) != 2 || !strings.Contains(out.String(), "terminate") || !strings.Contains(out.String(), orphan[0]) {
		t.Fatalf("plan %v, output %q", sum.Plan, out.String())
	}
	for _, id := range orphan {
		if in, _ := e.sim.Instance(id); in.State != "running" {
			t.Errorf("dry run terminated %s", id)
		}
	}
	if e.callsOf("TerminateInstances") != 0 || len(e.updates()) != 0 {
		t.Error("dry run acted")
	}
}

func TestReconcileOnlyOnPrimary(t *testing.T) {
	e := newTestEnv(t, `, "OrphanGraceSeconds": 0`)
	orphan := e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster})[0]
	sum, err := Reconcile(context.Background(), e.deps, ReconcileOptions{Hostname: "backup-host"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped == "" {
		t.Fatal("a backup controller acted")
	}
	if in, _ := e.sim.Instance(orphan); in.State != "running" {
		t.Fatal("a backup controller terminated an instance")
	}
	if _, err := Reconcile(context.Background(), e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	if in, _ := e.sim.Instance(orphan); in.State == "running" {
		t.Fatal("the primary did not act")
	}
}

func TestReconcileSteadyStateThousandInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	e := newTestEnv(t, "")
	if _, err := Resume(context.Background(), e.deps, "aws-spot-[0-999]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetCounters()
	e.fake.ResetCalls()
	sum, err := Reconcile(context.Background(), e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Plan) != 0 {
		t.Errorf("steady state planned %d actions", len(sum.Plan))
	}
	if got := len(e.fake.Calls()); got > 2 {
		t.Errorf("Slurm calls = %d, want <= 2", got)
	}
	// 1,000 instances in us-east-1: one page of 1,000 (+ one for us-west-2).
	if n := e.callsOf("DescribeInstances"); n > 3 {
		t.Errorf("DescribeInstances calls = %d", n)
	}
}

func TestStatusShowsProblems(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.resumeUp(ctx, "aws-spot-[0-1]")
	for _, in := range e.live()["aws-spot-1"] {
		if err := e.sim.TerminateAsUser([]string{in.InstanceID}); err != nil {
			t.Fatal(err)
		}
	}
	orphan := e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster})[0]
	st, err := GetStatus(ctx, e.deps, false)
	if err != nil {
		t.Fatal(err)
	}
	problems := map[string]string{}
	for _, r := range st.Rows {
		key := r.Node
		if key == "" {
			key = r.Instance
		}
		problems[key] = r.Problem
	}
	if problems["aws-spot-0"] != "" || problems["aws-spot-1"] != "missing instance" || problems[orphan] != "orphan" {
		t.Errorf("problems = %v", problems)
	}
	var out bytes.Buffer
	if err := st.WriteTable(&out, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NODE", "aws-spot-0", "missing instance", orphan, "1030 nodes (1028 powered down", "2 live instances"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReconcileWritesMetrics(t *testing.T) {
	path := t.TempDir() + "/slurm_ec2.prom"
	e := newTestEnv(t, `, "OrphanGraceSeconds": 0, "MetricsFile": "`+path+`"`)
	if _, err := Resume(context.Background(), e.deps, "aws-spot-[0-2]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"aws-spot-0", "aws-spot-1", "aws-spot-2"} {
		e.fake.Set(n, up)
	}
	e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster})
	if _, err := Reconcile(context.Background(), e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`slurm_ec2_instances{lifecycle="spot",state="running"} 3`,
		`slurm_ec2_reconcile_actions{kind="terminate",rule="orphan"} 1`,
		`slurm_ec2_nodes{state="powered_down"} `,
		"# TYPE slurm_ec2_reconcile_duration_seconds gauge",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

func TestReconcileDrainsNodeOnSpotInterruptionNotice(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.resumeUp(ctx, "aws-spot-[0-1]")
	id := e.live()["aws-spot-0"][0].InstanceID
	if err := e.sim.SpotInterrupt([]string{id}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	sum, err := Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	n := e.fake.Node("aws-spot-0")
	if !n.Has("DRAIN") || n.Reason != "slurm-ec2: spot interruption notice for "+id {
		t.Fatalf("aws-spot-0: flags %v reason %q, want drained for the notice", n.Flags, n.Reason)
	}
	if other := e.fake.Node("aws-spot-1"); other.Has("DRAIN") {
		t.Fatal("a node without a notice was drained")
	}
	if sum.Actions["drain/spot-notice"] != 1 {
		t.Errorf("actions %v", sum.Actions)
	}
	// Drained once; the next pass does not drain again.
	if plan := planOf(t, e); len(plan) != 0 {
		t.Errorf("second pass plans %v", plan)
	}
}

// resume died after CreateFleet: the instances are orphans, and the nodes they were for wait,
// powering up, for nothing. One reconcile (past the grace period) ends both.
func TestReconcileEndsNodesLeftWaitingByADeadResume(t *testing.T) {
	e := newTestEnv(t, `, "OrphanGraceSeconds": 60`)
	ids := e.launchRaw("us-east-1", "subnet-11111111", 2, map[string]string{
		fleet.TagCluster: testCluster, fleet.TagNodeGroup: "aws-spot", fleet.TagLaunchedFor: "aws-spot-[7-8]"})
	for _, n := range []string{"aws-spot-7", "aws-spot-8"} {
		e.fake.Set(n, func(n *slurm.Node) {
			n.State, n.Flags = "MIXED", []string{"CLOUD", "NOT_RESPONDING", "POWERING_UP"}
		})
	}
	// Within the grace period nothing happens: this could be a resume in flight.
	if plan := planOf(t, e); len(plan) != 0 {
		t.Fatalf("within the grace period: %v", plan)
	}
	e.now = time.Now().Add(2 * time.Minute)
	sum, err := Reconcile(context.Background(), e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if in, _ := e.sim.Instance(id); in.State == "running" {
			t.Errorf("orphan %s still running", id)
		}
	}
	for _, name := range []string{"aws-spot-7", "aws-spot-8"} {
		n := e.fake.Node(name)
		if !n.IsDown() || !strings.Contains(n.Reason, "resume did not finish") || !n.PoweredDown() {
			t.Errorf("%s: %s %v %q, want DOWN, powered down, with the reason", name, n.State, n.Flags, n.Reason)
		}
	}
	if sum.Actions["down/resume-died"] != 2 || sum.Actions["terminate/orphan"] != 2 {
		t.Errorf("actions %v", sum.Actions)
	}
	// Other powering-up nodes are not touched.
	if n := e.fake.Node("aws-spot-6"); n.IsDown() {
		t.Errorf("aws-spot-6 touched")
	}
}

// `scontrol reconfigure` resets cloud nodes' NodeAddr to the node name (seen on 22.05): the
// node's Name-tagged instance tells Slurm where it is again.
func TestReconcileRestoresLostAddresses(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	if _, err := Resume(ctx, e.deps, "aws-spot-[0-1]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	want := e.live()["aws-spot-0"][0]
	e.fake.Set("aws-spot-0", func(n *slurm.Node) { up(n); n.Addr, n.Hostname = n.Name, n.Name })
	e.fake.Set("aws-spot-1", up)
	sum, err := Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Node("aws-spot-0"); n.Addr != want.PrivateIP || n.Hostname != want.PrivateDNSName {
		t.Errorf("aws-spot-0 NodeAddr %q NodeHostName %q, want %s %s", n.Addr, n.Hostname, want.PrivateIP, want.PrivateDNSName)
	}
	if sum.Actions["address/address-lost"] != 1 || len(sum.Plan) != 1 {
		t.Errorf("plan %v", sum.Plan)
	}
	if plan := planOf(t, e); len(plan) != 0 {
		t.Errorf("second pass plans %v", plan)
	}
}
