package burst

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// What issue 13 added besides the fixes of issue13_test.go (these did not exist before it).

// eastOnlyPartitions is testPartitions without the us-west-2 partition: a region dropped from
// the configuration.
func eastOnlyPartitions(t *testing.T) string {
	t.Helper()
	i := strings.Index(testPartitions, `,
    {
      "PartitionName": "west"`)
	if i < 0 {
		t.Fatal("testPartitions changed: cannot remove the west partition")
	}
	return testPartitions[:i] + "\n  ]\n}"
}

func statusRow(st *Status, id string) (StatusRow, bool) {
	for _, r := range st.Rows {
		if r.Instance == id {
			return r, true
		}
	}
	return StatusRow{}, false
}

// A region dropped from the configuration: only --all-regions finds its instance, status shows
// it as "group not configured", and reconcile keeps it while Slurm runs its node, then ends it.
func TestAllRegionsSweepFindsDroppedRegion(t *testing.T) {
	e := newTestEnvWith(t, `, "OrphanGraceSeconds": 300`, eastOnlyPartitions(t))
	ctx := context.Background()
	e.now = time.Now()
	id := e.launchAllocated("us-west-2", "subnet-33333333", "west-node", "west-node-3")
	e.now = e.now.Add(10 * time.Minute)

	st, err := GetStatus(ctx, e.deps, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := statusRow(st, id); ok {
		t.Errorf("status without --all-regions looked in us-west-2, which no group uses")
	}
	e.sim.ResetCounters()
	if st, err = GetStatus(ctx, e.deps, true); err != nil {
		t.Fatal(err)
	}
	if r, ok := statusRow(st, id); !ok || r.Problem != problemNotConfigured || r.Node != "west-node-3" {
		t.Errorf("status --all-regions row for %s = %+v (found %v), want node west-node-3, problem %q", id, r, ok, problemNotConfigured)
	}
	if e.callsOf("DescribeRegions") != 1 {
		t.Errorf("DescribeRegions calls = %d, want 1", e.callsOf("DescribeRegions"))
	}

	opts := reconcileOpts()
	opts.AllRegions = true
	if _, err := Reconcile(ctx, e.deps, opts); err != nil {
		t.Fatal(err)
	}
	if st := stateIn(t, e.sim, id); !isLive(st) {
		t.Fatalf("instance of ALLOCATED west-node-3 is %s after the sweep", st)
	}
	e.fake.Set("west-node-3", func(n *slurm.Node) { n.State, n.Flags = "IDLE", []string{"CLOUD", "POWERED_DOWN"} })
	sum, err := Reconcile(ctx, e.deps, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := stateIn(t, e.sim, id); isLive(st) {
		t.Errorf("instance of powered-down west-node-3 is %s after the sweep, want terminated (plan %v)", st, sum.Plan)
	}
	if len(sum.Plan) != 1 || !strings.Contains(sum.Plan[0].Reason, "node group west-node is not configured") {
		t.Errorf("plan %v, want one orphan saying the group is not configured", sum.Plan)
	}
}

// Status marks an instance of a removed group in a configured region, and an unreachable
// account is a metric and a line of status, with every other group still shown.
func TestStatusNotConfiguredAndUnreachable(t *testing.T) {
	metrics := filepath.Join(t.TempDir(), "slurm_ec2.prom")
	e := newTestEnvWith(t, `, "OrphanGraceSeconds": 300, "MetricsFile": "`+metrics+`"`,
		acctPartitions(acctGroup("a", "us-east-1", ""), acctGroup("b", "us-west-2", "nosuch")))
	e.useAccounts(nil)
	ctx := context.Background()
	id := e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: "acct-old", fleet.TagName: "acct-old-0"})[0]

	st, err := GetStatus(ctx, e.deps, false)
	if err == nil || st == nil {
		t.Fatalf("status = %v, %v; want the status and an error for profile nosuch", st, err)
	}
	if r, ok := statusRow(st, id); !ok || r.Problem != problemNotConfigured {
		t.Errorf("row of %s = %+v, want %q", id, r, problemNotConfigured)
	}
	if _, ok := st.Unreachable["us-west-2/nosuch"]; !ok {
		t.Errorf("unreachable = %v, want us-west-2/nosuch", st.Unreachable)
	}
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err == nil {
		t.Error("reconcile with an unreachable account returned no error (exit 0)")
	}
	data, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `slurm_ec2_ec2_unreachable{region="us-west-2",profile="nosuch"} 1`) {
		t.Errorf("metrics lack the unreachable account:\n%s", data)
	}
}
