package burst

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// The back-off over the wire: the real SDK against ec2sim, the real slurm.Client against the
// scontrol stand-in, and the test playing slurmctld's scheduler and power saving.

// schedule picks the node Slurm would power up for a one-node job in group (the lowest
// powered-down node that is not DOWN), and marks it powering up as slurmctld does before it
// runs the ResumeProgram. "" when every node of the group is DOWN.
func (e *testEnv) schedule(group string) string {
	e.t.Helper()
	for i := range 100 {
		name := fmt.Sprintf("%s-%d", group, i)
		if _, _, ok := e.cfg.LookupNode(name); !ok {
			return ""
		}
		n := e.fake.Node(name)
		if n.PoweredDown() && !n.IsDown() {
			e.fake.Set(name, func(n *slurm.Node) {
				n.Flags = []string{"CLOUD", "NOT_RESPONDING", "POWERING_UP"}
			})
			return name
		}
	}
	return ""
}

// timeOut is slurmctld at ResumeTimeout: a node still powering up goes DOWN with its reason and
// the ResumeFailProgram runs.
func (e *testEnv) timeOut(ctx context.Context, node string) {
	e.t.Helper()
	if n := e.fake.Node(node); !n.PoweringUp() || n.IsDown() {
		return
	}
	e.fake.Set(node, func(n *slurm.Node) {
		n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN", "NOT_RESPONDING"}, resumeTimeoutReason, time.Now()
	})
	if _, err := ResumeFail(ctx, e.deps, node); err != nil {
		e.t.Fatalf("resume-fail %s: %v", node, err)
	}
}

func resumeFileFor(job int, node string) []byte {
	return fmt.Appendf(nil, `{"jobs":[{"job_id":%d,"nodes":"%s"}],"all_nodes":"%s"}`, job, node, node)
}

// TestBackOffNeverBootsCycles: over 6 back-to-back cycles of launch → ResumeTimeout →
// resume-fail → reconcile → resume for a node whose instance never boots, CreateFleet is called
// at most 3 times; the group ends held, with every node DOWN and a reason that says why.
func TestBackOffNeverBootsCycles(t *testing.T) {
	metrics := filepath.Join(t.TempDir(), "metrics.prom")
	e := newTestEnv(t, `, "MetricsFile": "`+metrics+`"`)
	ctx := context.Background()
	e.now = time.Now()
	resumeTimeout := e.deps.resumeTimeout()
	var launchedFor []string
	for cycle := range 6 {
		before := e.callsOf("CreateFleet")
		node := e.schedule("aws-ondemand")
		if node != "" {
			if _, err := Resume(ctx, e.deps, node, ResumeOptions{ResumeFile: resumeFileFor(cycle+1, node)}); err != nil {
				t.Fatalf("cycle %d: resume %s: %v", cycle, node, err)
			}
		}
		if e.callsOf("CreateFleet") > before {
			launchedFor = append(launchedFor, node)
		}
		e.now = e.now.Add(resumeTimeout)
		if node != "" {
			e.timeOut(ctx, node)
		}
		if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
			t.Fatalf("cycle %d: reconcile: %v", cycle, err)
		}
	}
	calls := e.callsOf("CreateFleet")
	t.Logf("6 cycles of %v each: CreateFleet called %d times (for %v)", resumeTimeout, calls, launchedFor)
	if calls > 3 {
		t.Fatalf("CreateFleet called %d times in 6 cycles of a node that never boots, want at most 3", calls)
	}
	if live := e.live(); len(live) != 0 {
		t.Errorf("instances still live: %v", sortedKeys(live))
	}
	held := 0
	for i := range 10 {
		n := e.fake.Node(fmt.Sprintf("aws-ondemand-%d", i))
		r, ok := parseBackOffReason(n.Reason)
		if n.IsDown() && ok && r.Held() && r.Kind == kindBoot {
			held++
		}
	}
	if held != 10 {
		t.Fatalf("%d of 10 nodes held DOWN with the record, want all", held)
	}
	n0 := e.fake.Node("aws-ondemand-0")
	t.Logf("reason: %s", n0.Reason)
	for _, w := range []string{"held 3/3", "boot failure", "never registered", "release now: slurm-ec2 release aws-ondemand"} {
		if !strings.Contains(n0.Reason, w) {
			t.Errorf("reason %q does not say %q", n0.Reason, w)
		}
	}
	// The pending jobs were told why.
	var comments []string
	for _, c := range e.fake.Calls() {
		if c.Kind() == "update" && len(c.Argv) > 3 && strings.HasPrefix(c.Argv[2], "jobid=") {
			comments = append(comments, strings.Join(c.Argv[2:], " "))
		}
	}
	if len(comments) == 0 || !strings.Contains(comments[len(comments)-1], "admincomment=slurm-ec2: node group aws-ondemand") {
		t.Errorf("no job was told why its node does not come: %q", comments)
	}
	// The other groups were never touched.
	if n := e.fake.Node("aws-spot-0"); n.IsDown() {
		t.Errorf("aws-spot-0 DOWN: %q", n.Reason)
	}

	// status and the metrics say so.
	st, err := GetStatus(ctx, e.deps, false)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := st.WriteTable(&table, e.now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "node group aws-ondemand HELD: 3 boot failure(s) in a row") ||
		!strings.Contains(table.String(), "release now: slurm-ec2 release aws-ondemand") {
		t.Errorf("status does not show the hold:\n%s", table.String())
	}
	var ondemand GroupBackOff
	for _, g := range st.NodeGroups {
		if g.Group == "aws-ondemand" {
			ondemand = g
		}
	}
	if !ondemand.Held || ondemand.Failures != 3 || ondemand.Nodes != 10 {
		t.Errorf("status node group = %+v", ondemand)
	}
	prom, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`slurm_ec2_node_group_failures{node_group="aws-ondemand"} 3`, `slurm_ec2_node_group_held{node_group="aws-ondemand"} 1`,
		`slurm_ec2_node_group_held{node_group="aws-spot"} 0`} {
		if !strings.Contains(string(prom), w) {
			t.Errorf("metrics lack %q:\n%s", w, prom)
		}
	}

	// Fixing the image: the probe boots, its node registers, reconcile ends the hold and gives
	// every node back; no operator involved.
	e.now = e.now.Add(time.Hour)
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	probe := e.schedule("aws-ondemand")
	if probe == "" {
		t.Fatal("no probe node offered to Slurm after the probe interval")
	}
	before := e.callsOf("CreateFleet")
	if _, err := Resume(ctx, e.deps, probe, ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.callsOf("CreateFleet") != before+1 {
		t.Fatalf("probe did not launch")
	}
	if second := e.schedule("aws-ondemand"); second != "" {
		t.Fatalf("a second node %s offered while the probe runs", second)
	}
	e.fake.Set(probe, up)
	e.now = e.now.Add(time.Minute)
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if n := e.fake.Node(fmt.Sprintf("aws-ondemand-%d", i)); n.IsDown() {
			t.Errorf("aws-ondemand-%d still DOWN after the probe registered: %q", i, n.Reason)
		}
	}
}

// TestBackOffUnknownLaunchTemplate: 4 resumes of a group within its back-off after an
// unknown-launch-template error call CreateFleet 0 times; the nodes go DOWN with the record and
// the release command ends it at once.
func TestBackOffUnknownLaunchTemplate(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.now = time.Now()
	g, _ := e.cfg.NodeGroup("aws-ondemand")
	g.LaunchTemplateSpecification.LaunchTemplateName = aws.String("no-such-template")
	if _, err := Resume(ctx, e.deps, "aws-ondemand-0", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := e.callsOf("CreateFleet"); n != 1 {
		t.Fatalf("first resume: CreateFleet called %d times", n)
	}
	n0 := e.fake.Node("aws-ondemand-0")
	r, ok := parseBackOffReason(n0.Reason)
	if !n0.IsDown() || !ok || r.Count != 1 || r.Kind != kindLaunch || !strings.Contains(r.Detail, "InvalidLaunchTemplateName.NotFoundException") {
		t.Fatalf("after the error: %s %q", n0.State, n0.Reason)
	}
	t.Logf("reason: %s", n0.Reason)
	for i := range 4 {
		e.now = e.now.Add(time.Minute) // within the first back-off (BackOffBaseSeconds 300)
		node := fmt.Sprintf("aws-ondemand-%d", i+1)
		if _, err := Resume(ctx, e.deps, node, ResumeOptions{ResumeFile: resumeFileFor(10+i, node)}); err != nil {
			t.Fatal(err)
		}
		if n := e.fake.Node(node); !n.IsDown() || !strings.Contains(n.Reason, "launch failure (InvalidLaunchTemplateName.NotFoundException)") {
			t.Errorf("%s: %s %q, want DOWN with the group's record", node, n.State, n.Reason)
		}
	}
	if n := e.callsOf("CreateFleet"); n != 1 {
		t.Fatalf("4 resumes within the back-off called CreateFleet %d more times, want 0", n-1)
	}
	// After the back-off, one more try; the template is fixed: it launches, and release gives
	// every held node back.
	g.LaunchTemplateSpecification.LaunchTemplateName = aws.String("template-name")
	e.now = e.now.Add(10 * time.Minute)
	if _, err := Resume(ctx, e.deps, "aws-ondemand-6", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := e.callsOf("CreateFleet"); n != 2 {
		t.Fatalf("after the back-off: CreateFleet called %d times, want 2", n)
	}
	released, err := Release(ctx, e.deps, []string{"aws-ondemand"})
	if err != nil || len(released) != 5 {
		t.Fatalf("release: %v %v, want the 5 DOWN nodes", released, err)
	}
	for i := range 5 {
		if n := e.fake.Node(fmt.Sprintf("aws-ondemand-%d", i)); n.IsDown() {
			t.Errorf("aws-ondemand-%d still DOWN after release", i)
		}
	}
}

// TestBackOffResumeFailAfterReconcileCountsOnce: a reconcile that runs at ResumeTimeout before
// the ResumeFailProgram counts the failure; resume-fail must not count it again.
func TestBackOffResumeFailAfterReconcileCountsOnce(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.now = time.Now()
	node := e.schedule("aws-ondemand")
	if _, err := Resume(ctx, e.deps, node, ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(e.deps.resumeTimeout())
	e.fake.Set(node, func(n *slurm.Node) {
		n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN", "NOT_RESPONDING"}, resumeTimeoutReason, time.Now()
	})
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	if _, err := ResumeFail(ctx, e.deps, node); err != nil {
		t.Fatal(err)
	}
	r, ok := parseBackOffReason(e.fake.Node(node).Reason)
	if !ok || r.Count != 1 {
		t.Fatalf("after reconcile then resume-fail: %q, want one failure", e.fake.Node(node).Reason)
	}
	if live := e.live(); len(live) != 0 {
		t.Fatalf("instance of the failed node still live: %v", sortedKeys(live))
	}
}
