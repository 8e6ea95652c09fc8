package burst

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// The five problems of issue 13, each reproduced over the wire (SDK → ec2sim, scontrol stand-in).
// Every test here failed on the code before the inventory package (see the issue's note).

// acctGroup is a node group of partition "acct" using an AWS profile.
func acctGroup(name, region, profile string) string {
	p := ""
	if profile != "" {
		p = `"ProfileName": "` + profile + `",`
	}
	return `{"NodeGroupName": "` + name + `", "MaxNodes": 4, "Region": "` + region + `", ` + p + `
	  "SlurmSpecifications": {"CPUs": "4"}, "PurchasingOption": "on-demand",
	  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
	  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}], "SubnetIds": ["subnet-11111111"]}`
}

func acctPartitions(groups ...string) string {
	return `{"Partitions": [{"PartitionName": "acct", "NodeGroups": [` + strings.Join(groups, ",") + `]}]}`
}

func stateIn(t *testing.T, sim *ec2sim.Sim, id string) string {
	t.Helper()
	in, ok := sim.Instance(id)
	if !ok {
		t.Fatalf("instance %s unknown to its account", id)
	}
	return in.State
}

func isLive(state string) bool { return state != "terminated" && state != "shutting-down" }

// Problem 1: two AWS profiles (accounts) in one region. Each account's orphan is terminated
// through its own account's client.
func TestIssue13TwoAccountsOneRegion(t *testing.T) {
	e := newTestEnvWith(t, `, "OrphanGraceSeconds": 300`, acctPartitions(acctGroup("a", "us-east-1", "a"), acctGroup("b", "us-east-1", "b")))
	a, b := e.newAccount("111111111111"), e.newAccount("222222222222")
	e.useAccounts(map[string]*account{"a": a, "b": b})
	e.now = time.Now()
	orphanA := e.launchIn(a, "us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: "acct-a"})[0]
	orphanB := e.launchIn(b, "us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: "acct-b"})[0]
	e.now = e.now.Add(10 * time.Minute)

	if _, err := Reconcile(context.Background(), e.deps, reconcileOpts()); err != nil {
		t.Errorf("reconcile: %v", err)
	}
	if st := stateIn(t, a.Sim, orphanA); isLive(st) {
		t.Errorf("account a's orphan %s is %s, want terminated", orphanA, st)
	}
	if st := stateIn(t, b.Sim, orphanB); isLive(st) {
		t.Errorf("account b's orphan %s is %s, want terminated (through account b's client)", orphanB, st)
	}
}

// Problem 2: a group whose profile does not exist must not stop the other groups: their orphans
// are terminated, and the run still fails (exit 1) naming the unreachable account.
func TestIssue13UnreachableAccountServesOthers(t *testing.T) {
	e := newTestEnvWith(t, `, "OrphanGraceSeconds": 300`, acctPartitions(acctGroup("a", "us-east-1", "a"), acctGroup("b", "us-west-2", "nosuch")))
	a := e.newAccount("111111111111")
	e.useAccounts(map[string]*account{"a": a})
	e.now = time.Now()
	orphan := e.launchIn(a, "us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: "acct-a"})[0]
	e.now = e.now.Add(10 * time.Minute)

	_, err := Reconcile(context.Background(), e.deps, reconcileOpts())
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("reconcile error = %v, want one naming the profile nosuch", err)
	}
	if st := stateIn(t, a.Sim, orphan); isLive(st) {
		t.Errorf("the healthy account's orphan %s is %s, want terminated", orphan, st)
	}
}

// removedPartitions is testPartitions without the aws-ondemand group (us-east-1 keeps aws-spot).
func removedPartitions(t *testing.T) string {
	t.Helper()
	i := strings.Index(testPartitions, `{
          "NodeGroupName": "ondemand"`)
	j := strings.Index(testPartitions, `{
          "NodeGroupName": "spot"`)
	if i < 0 || j < 0 {
		t.Fatal("testPartitions changed: cannot remove the ondemand group")
	}
	return testPartitions[:i] + testPartitions[j:]
}

// Problem 3: a node group removed from partitions.json while Slurm still runs its node. Its
// instance is kept while the node is powered up, and terminated once Slurm powers it down.
func TestIssue13RemovedGroupKeptWhileNodeUp(t *testing.T) {
	e := newTestEnvWith(t, `, "OrphanGraceSeconds": 300`, removedPartitions(t))
	ctx := context.Background()
	e.now = time.Now()
	id := e.launchAllocated("us-east-1", "subnet-11111111", "aws-ondemand", "aws-ondemand-2")
	e.now = e.now.Add(10 * time.Minute)

	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if st := stateIn(t, e.sim, id); !isLive(st) {
		t.Fatalf("instance %s of ALLOCATED node aws-ondemand-2 (group no longer configured) is %s: a running job's instance was killed", id, st)
	}
	e.fake.Set("aws-ondemand-2", func(n *slurm.Node) { n.State, n.Flags = "IDLE", []string{"CLOUD", "POWERED_DOWN"} })
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if st := stateIn(t, e.sim, id); isLive(st) {
		t.Errorf("instance %s of powered-down node aws-ondemand-2 (group no longer configured) is %s, want terminated", id, st)
	}
}

// Problem 4: Name tags lost (CreateTags failed). Reconcile restores them while NodeAddr still
// matches, so that after `scontrol reconfigure` resets NodeAddr the running nodes are found by
// name: their addresses are given back, nothing is set DOWN or terminated.
func TestIssue13NameTagsRestored(t *testing.T) {
	e := newTestEnv(t, `, "OrphanGraceSeconds": 300`)
	ctx := context.Background()
	if err := e.sim.InjectFault(ec2sim.Fault{Action: "CreateTags", Rate: 1, Code: "InternalError"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(ctx, e.deps, "aws-ondemand-[0-1]", ResumeOptions{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	e.sim.ClearFaults()
	ids := map[string]string{}
	for _, n := range []string{"aws-ondemand-0", "aws-ondemand-1"} {
		in, ok := e.sim.InstanceByPrivateIP(e.fake.Node(n).Addr)
		if !ok {
			t.Fatalf("no instance at %s's address", n)
		}
		if in.Tags[fleet.TagName] != "" {
			t.Fatalf("instance %s has a Name tag although CreateTags failed", in.InstanceID)
		}
		ids[n] = in.InstanceID
		e.fake.Set(n, up)
	}
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	// `scontrol reconfigure` resets every cloud node's NodeAddr to its name.
	for n := range ids {
		e.fake.Set(n, func(n *slurm.Node) { n.Addr, n.Hostname = n.Name, n.Name })
	}
	e.now = time.Now().Add(10 * time.Minute) // past the orphan grace period
	e.fake.ResetCalls()
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatalf("reconcile after reconfigure: %v", err)
	}
	for n, id := range ids {
		in, _ := e.sim.Instance(id)
		if !isLive(in.State) {
			t.Errorf("%s's instance %s is %s: a running node's instance was killed", n, id, in.State)
		}
		if in.Tags[fleet.TagName] != n || in.Tags["Owner"] != n+"@"+in.PrivateIP {
			t.Errorf("%s's instance tags = %v, want Name and the templated Owner restored", n, in.Tags)
		}
		if node := e.fake.Node(n); node.IsDown() || node.Addr != in.PrivateIP {
			t.Errorf("%s is %s at %q, want up at %s", n, node.State, node.Addr, in.PrivateIP)
		}
	}
}

// Problem 5: an optional call that keeps failing (DescribeSpotInstanceRequests answering 500)
// gets a small retry budget, and reconcile reads EC2 without the group locks: a resume never
// waits for a slow read.
func TestIssue13OptionalCallBudgetAndNoLockWhileReading(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.resumeUp(ctx, "aws-spot-[0-1]")

	if err := e.sim.InjectFault(ec2sim.Fault{Action: "DescribeSpotInstanceRequests", Rate: 1, Code: "InternalError"}); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetCounters()
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Errorf("reconcile with spot notices failing: %v (notices are optional)", err)
	}
	// The test clients allow 8 attempts a call; an optional call gets 2.
	if n := e.callsOf("DescribeSpotInstanceRequests"); n > 2 {
		t.Errorf("DescribeSpotInstanceRequests tried %d times, want at most 2 (an optional call)", n)
	}

	// A slow read: the spot notices take 3 s. A resume started meanwhile must not wait for it.
	e.sim.ClearFaults()
	if err := e.sim.InjectFault(ec2sim.Fault{Action: "DescribeSpotInstanceRequests", ExtraLatency: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetCounters()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
			t.Errorf("reconcile: %v", err)
		}
	}()
	for e.callsOf("DescribeSpotInstanceRequests") == 0 {
		select {
		case <-done:
			t.Fatal("reconcile finished without reading spot notices")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := Resume(ctx, e.deps, "aws-spot-2", ResumeOptions{}); err != nil {
		t.Errorf("resume: %v", err)
	}
	select {
	case <-done:
		t.Error("the resume returned only after reconcile finished: it waited for reconcile's read")
	default:
	}
	<-done
}
