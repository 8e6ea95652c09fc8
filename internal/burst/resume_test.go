package burst

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

func TestResumeMixedGroupsTwoRegionsThenSuspend(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	sum, err := Resume(ctx, e.deps, "aws-ondemand-[0-2],aws-spot-[0-4],west-node-[0-1]", ResumeOptions{})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if sum.Launched != 10 || sum.FailedTotal() != 0 || sum.Reused != 0 {
		t.Fatalf("summary = %+v, want 10 launched", sum)
	}
	live := e.live()
	want, _ := hostlist.Expand("aws-ondemand-[0-2],aws-spot-[0-4],west-node-[0-1]")
	if got := sortedKeys(live); strings.Join(got, ",") != strings.Join(sorted(want), ",") {
		t.Fatalf("named live instances = %v, want %v", got, sorted(want))
	}
	for node, insts := range live {
		if len(insts) != 1 {
			t.Fatalf("%s has %d instances", node, len(insts))
		}
		in := insts[0]
		g, _, _ := e.cfg.LookupNode(node)
		if in.Tags[fleet.TagNodeGroup] != g.Name() || in.Tags[fleet.TagCluster] != testCluster {
			t.Errorf("%s: identity tags %v", node, in.Tags)
		}
		if wantRegion := g.Region; in.Region != wantRegion {
			t.Errorf("%s launched in %s, want %s", node, in.Region, wantRegion)
		}
		if wantLC := map[bool]string{true: "spot", false: "on-demand"}[g.IsSpot()]; in.Lifecycle != wantLC {
			t.Errorf("%s lifecycle %s, want %s", node, in.Lifecycle, wantLC)
		}
		// Slurm knows the instance's address.
		if n := e.fake.Node(node); n.Addr != in.PrivateIP || n.Hostname != in.PrivateDNSName {
			t.Errorf("%s: Slurm NodeAddr=%s NodeHostName=%s, instance %s %s", node, n.Addr, n.Hostname, in.PrivateIP, in.PrivateDNSName)
		}
		if g.NodeGroupName == "ondemand" {
			// Each instance gets its own templated values, not the first instance's.
			if wantOwner := node + "@" + in.PrivateIP; in.Tags["Owner"] != wantOwner {
				t.Errorf("%s: Owner tag %q, want %q", node, in.Tags["Owner"], wantOwner)
			}
			if in.Tags["NodeGroup"] != "ondemand" {
				t.Errorf("%s: static tag NodeGroup=%q", node, in.Tags["NodeGroup"])
			}
		}
	}
	// One fleet per node group, one scontrol update for each group's addresses.
	if n := e.callsOf("CreateFleet"); n != 3 {
		t.Errorf("CreateFleet calls = %d, want 3 (one per node group)", n)
	}
	if n := len(e.updates()); n != 3 {
		t.Errorf("scontrol update calls = %d, want 3: %v", n, e.updates())
	}

	e.sim.ResetCounters()
	e.fake.ResetCalls()
	ssum, err := Suspend(ctx, e.deps, "aws-spot-[0-4],west-node-1")
	if err != nil {
		t.Fatalf("suspend: %v", err)
	}
	if ssum.Terminated != 6 || ssum.NoInstance != 0 {
		t.Fatalf("suspend summary %+v, want 6 terminated", ssum)
	}
	live = e.live()
	for _, n := range []string{"aws-spot-0", "aws-spot-4", "west-node-1"} {
		if len(live[n]) != 0 {
			t.Errorf("%s still has an instance after suspend", n)
		}
	}
	for _, n := range []string{"aws-ondemand-0", "aws-ondemand-2", "west-node-0"} {
		if len(live[n]) != 1 {
			t.Errorf("%s lost its instance to another node's suspend", n)
		}
	}
	// One TerminateInstances per region, and Name-tag lookups only (all tags were set).
	if n := e.callsOf("TerminateInstances"); n != 2 {
		t.Errorf("TerminateInstances calls = %d, want 2 (one per region)", n)
	}
	if n := e.callsOf("DescribeInstances"); n != 2 {
		t.Errorf("DescribeInstances calls = %d, want 2 (one per region)", n)
	}
	// Every instance had its Name tag: Slurm's NodeAddr was not needed.
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Errorf("suspend ran scontrol %d times, want 0: %v", len(calls), calls[0].Argv)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestResumePartialCapacityThenCoolDown(t *testing.T) {
	e := newTestEnv(t, `, "CoolDownSeconds": 600`)
	ctx := context.Background()
	// One c5.xlarge on-demand in each AZ: 2 of 4 nodes can launch.
	for _, az := range []string{"us-east-1a", "us-east-1b"} {
		if err := e.sim.SetCapacity("c5.xlarge", az, "on-demand", 1); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := Resume(ctx, e.deps, "aws-ondemand-[0-3]", ResumeOptions{})
	if err != nil {
		t.Fatalf("resume: %v (Slurm was told the truth: want no error)", err)
	}
	if sum.Launched != 2 || sum.Failed["InsufficientInstanceCapacity"] != 2 {
		t.Fatalf("summary %+v, want 2 launched, 2 InsufficientInstanceCapacity", sum)
	}
	var down []string
	for i := 0; i < 4; i++ {
		n := e.fake.Node(fmt.Sprintf("aws-ondemand-%d", i))
		if n.IsDown() {
			down = append(down, n.Name)
			if !strings.HasPrefix(n.Reason, "slurm-ec2: InsufficientInstanceCapacity c5.xlarge us-east-1") {
				t.Errorf("%s reason %q, want the EC2 code, type and AZ", n.Name, n.Reason)
			}
			// A literal address: slurmctld must not try to resolve the node's name.
			if n.Addr != placeholderAddr {
				t.Errorf("%s DOWN with NodeAddr %q, want %s", n.Name, n.Addr, placeholderAddr)
			}
		} else if n.Addr == n.Name {
			t.Errorf("%s is neither DOWN nor addressed", n.Name)
		}
	}
	if len(down) != 2 {
		t.Fatalf("DOWN nodes %v, want 2", down)
	}

	// The group is cooling down: a new resume of it does not call EC2, its nodes go DOWN at once.
	fleets := e.callsOf("CreateFleet")
	sum, err = Resume(ctx, e.deps, "aws-ondemand-[4-5],aws-spot-0", ResumeOptions{})
	if err != nil {
		t.Fatalf("second resume: %v", err)
	}
	if got := e.callsOf("CreateFleet") - fleets; got != 1 {
		t.Errorf("CreateFleet calls during cool-down = %d, want 1 (the spot group only)", got)
	}
	if sum.Failed["CoolDown"] != 2 || sum.Launched != 1 {
		t.Errorf("summary %+v, want 2 cool-down, 1 launched", sum)
	}
	if r := e.fake.Node("aws-ondemand-4").Reason; !strings.HasPrefix(r, "slurm-ec2: cool-down after InsufficientInstanceCapacity until ") {
		t.Errorf("cool-down reason %q", r)
	}
}

func TestResumeThrottlingIsRetriedNotCapacity(t *testing.T) {
	e := newTestEnv(t, "")
	// The first 3 CreateFleet calls are throttled as EC2 does; the SDK's retries get through.
	if err := e.sim.InjectFault(ec2sim.Fault{Action: "CreateFleet", Rate: 1, Code: "RequestLimitExceeded", Count: 3}); err != nil {
		t.Fatal(err)
	}
	sum, err := Resume(context.Background(), e.deps, "aws-spot-[0-9]", ResumeOptions{})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if sum.Launched != 10 || sum.FailedTotal() != 0 {
		t.Fatalf("summary %+v, want all 10 launched after retries", sum)
	}
	c := e.sim.Counters()["CreateFleet"]
	if c.Total != 4 || c.Errors["RequestLimitExceeded"] != 3 {
		t.Errorf("CreateFleet counters %+v, want 3 throttled + 1 success", c)
	}
	if n := len(e.live()); n != 10 {
		t.Errorf("%d named live instances, want 10 (retries must not launch twice)", n)
	}
}

func TestResumeReusesLiveInstance(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	if _, err := Resume(ctx, e.deps, "aws-spot-[0-1]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	first := e.live()
	// Slurm calls resume again for the same nodes (a failed suspend, a retried resume).
	sum, err := Resume(ctx, e.deps, "aws-spot-[0-2]", ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Reused != 2 || sum.Launched != 1 {
		t.Fatalf("summary %+v, want 2 reused, 1 launched", sum)
	}
	live := e.live()
	for _, n := range []string{"aws-spot-0", "aws-spot-1"} {
		if len(live[n]) != 1 || live[n][0].InstanceID != first[n][0].InstanceID {
			t.Errorf("%s: instances %v, want the original %s only", n, live[n], first[n][0].InstanceID)
		}
	}
}

func TestResumeFailTerminatesAndLeavesReason(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	if _, err := Resume(ctx, e.deps, "aws-spot-[0-1]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	// Slurm calls ResumeFailProgram after marking the nodes DOWN at ResumeTimeout; aws-spot-3
	// was meanwhile returned to service by a reconcile and must stay so.
	for _, n := range []string{"aws-spot-0", "aws-spot-1", "aws-spot-2"} {
		e.fake.Set(n, func(n *slurm.Node) {
			n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN"}, "ResumeTimeout reached", time.Now()
		})
	}
	if _, err := ResumeFail(ctx, e.deps, "aws-spot-[0-3]"); err != nil {
		t.Fatalf("resume-fail: %v", err)
	}
	if n := e.fake.Node("aws-spot-3"); n.IsDown() {
		t.Errorf("aws-spot-3 was returned to service and resume-fail set it DOWN again: %q", n.Reason)
	}
	if live := e.live(); len(live) != 0 {
		t.Fatalf("instances left after resume-fail: %v", sortedKeys(live))
	}
	for _, tc := range []struct{ node, reason string }{
		// One failure for the group (one call), recorded on every node that missed the timeout.
		{"aws-spot-0", "slurm-ec2: back-off 1/3: boot failure (aws-spot-0 i-"},
		{"aws-spot-2", "slurm-ec2: back-off 1/3: boot failure (aws-spot-0 i-"},
	} {
		n := e.fake.Node(tc.node)
		if !n.IsDown() || !strings.Contains(n.Reason, tc.reason) {
			t.Errorf("%s: state %s reason %q, want DOWN with %q", tc.node, n.State, n.Reason, tc.reason)
		}
	}
}

func TestResumeUnknownNodesAreDownedNotDropped(t *testing.T) {
	e := newTestEnv(t, "")
	sum, err := Resume(context.Background(), e.deps, "onprem-node-[0-1],aws-spot-0", ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Unknown != 2 || sum.Launched != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if n := e.fake.Node("onprem-node-1"); !n.IsDown() || !strings.Contains(n.Reason, "not defined in partitions.json") {
		t.Errorf("unknown node: state %s reason %q", n.State, n.Reason)
	}
}

func TestResume500Nodes(t *testing.T) {
	e := newTestEnv(t, "")
	sum, err := Resume(context.Background(), e.deps, "aws-spot-[0-499]", ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Launched != 500 {
		t.Fatalf("launched %d of 500", sum.Launched)
	}
	ips := map[string]string{}
	for _, n := range e.fake.Nodes() {
		if !strings.HasPrefix(n.Name, "aws-spot-") {
			continue
		}
		idx := 0
		fmt.Sscanf(n.Name, "aws-spot-%d", &idx)
		if idx >= 500 {
			continue
		}
		if n.Addr == n.Name {
			t.Fatalf("%s has no address", n.Name)
		}
		if other, dup := ips[n.Addr]; dup {
			t.Fatalf("%s and %s share %s", n.Name, other, n.Addr)
		}
		ips[n.Addr] = n.Name
	}
	if n, want := e.callsOf("CreateFleet"), len(fleet.SplitLaunch(500)); n != want {
		t.Errorf("CreateFleet calls = %d, want %d", n, want)
	}
	if n := len(e.updates()); n > 2 {
		t.Errorf("scontrol update calls = %d for 500 addresses, want <= 2", n)
	}
}

// Resume and suspend run at once on overlapping nodes, many rounds: each node ends with at most
// one instance, nodes only suspended have none, nodes only resumed have exactly one, and every
// live instance belongs to a node.
func TestConcurrentResumeSuspendOverlapping(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	const rounds = 8
	for r := 0; r < rounds; r++ {
		base := (r % 3) * 6
		a := fmt.Sprintf("aws-spot-[%d-%d]", base, base+3)   // resumed
		s := fmt.Sprintf("aws-spot-[%d-%d]", base+2, base+5) // suspended: overlap base+2..base+3
		var wg sync.WaitGroup
		var rerr, serr error
		wg.Go(func() { _, rerr = Resume(ctx, e.deps, a, ResumeOptions{}) })
		wg.Go(func() { _, serr = Suspend(ctx, e.deps, s) })
		wg.Wait()
		if rerr != nil || serr != nil {
			t.Fatalf("round %d: resume %v, suspend %v", r, rerr, serr)
		}
		live := e.live()
		for node, insts := range live {
			if node == "" {
				t.Fatalf("round %d: unnamed live instances %v", r, insts)
			}
			if len(insts) > 1 {
				t.Fatalf("round %d: %s has %d instances", r, node, len(insts))
			}
		}
		for i := base; i <= base+1; i++ {
			if n := fmt.Sprintf("aws-spot-%d", i); len(live[n]) != 1 {
				t.Fatalf("round %d: resumed-only %s has %d instances", r, n, len(live[n]))
			}
		}
		for i := base + 4; i <= base+5; i++ {
			if n := fmt.Sprintf("aws-spot-%d", i); len(live[n]) != 0 {
				t.Fatalf("round %d: suspended-only %s has an instance", r, n)
			}
		}
		// Clean up for the next round, as Slurm's power-down would.
		if _, err := Suspend(ctx, e.deps, fmt.Sprintf("aws-spot-[%d-%d]", base, base+5)); err != nil {
			t.Fatal(err)
		}
		if live := e.live(); len(live) != 0 {
			t.Fatalf("round %d: left over %v", r, sortedKeys(live))
		}
	}
}

// Slurm keeps a node's last NodeAddr after it powers down and EC2 reuses private IPs: an unnamed
// instance whose IP is also a powered-down node's stale address belongs to the powered-up node.
func TestStaleNodeAddrNeverClaimsAnotherNodesInstance(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	id := e.launchRaw("us-east-1", "subnet-11111111", 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: "aws-spot"})[0]
	in, _ := e.sim.Instance(id)
	// aws-spot-2 got this instance (resume told Slurm, then died before the Name tag);
	// aws-spot-1 failed an earlier resume and still carries the same address.
	e.fake.Set("aws-spot-2", func(n *slurm.Node) { up(n); n.Addr = in.PrivateIP })
	e.fake.Set("aws-spot-1", func(n *slurm.Node) {
		n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN"}, "ResumeTimeout reached", time.Now()
		n.Addr = in.PrivateIP
	})
	if _, err := ResumeFail(ctx, e.deps, "aws-spot-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := Reconcile(ctx, e.deps, reconcileOpts()); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.sim.Instance(id); got.State != "running" {
		t.Fatalf("aws-spot-2's instance was terminated for aws-spot-1's stale address (state %s)", got.State)
	}
	if _, err := Suspend(ctx, e.deps, "aws-spot-2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.sim.Instance(id); got.State == "running" {
		t.Fatal("suspending the node that owns the instance did not terminate it")
	}
}

// A job in an all-or-nothing group gets all its nodes or none; another job is not held back.
func TestResumeAllOrNothingPerJob(t *testing.T) {
	e := newTestEnv(t, `, "NodeGroupOptions": {"aws-spot": {"AllOrNothing": true}}`)
	// Three spot instances per AZ at most: a 4-node job cannot fit in one AZ, a 2-node job can.
	for _, az := range []string{"us-east-1a", "us-east-1b"} {
		for _, typ := range []string{"c5.xlarge", "c4.xlarge"} {
			capacity := 2
			if typ == "c4.xlarge" {
				capacity = 1
			}
			if err := e.sim.SetCapacity(typ, az, "spot", capacity); err != nil {
				t.Fatal(err)
			}
		}
	}
	resumeFile := []byte(`{"all_nodes_resume":"aws-spot-[0-5]","jobs":[
		{"job_id":10,"nodes_alloc":"aws-spot-[0-3]","nodes_resume":"aws-spot-[0-3]","partition":"aws"},
		{"job_id":11,"nodes_alloc":"aws-spot-[4-5]","nodes_resume":"aws-spot-[4-5]","partition":"aws"}]}`)
	sum, err := Resume(context.Background(), e.deps, "aws-spot-[0-5]", ResumeOptions{ResumeFile: resumeFile})
	if err != nil {
		t.Fatal(err)
	}
	live := e.live()
	for i := 0; i < 4; i++ {
		n := fmt.Sprintf("aws-spot-%d", i)
		if len(live[n]) != 0 {
			t.Errorf("job 10's %s got an instance though the job could not get all 4", n)
		}
		if node := e.fake.Node(n); !node.IsDown() || !strings.Contains(node.Reason, "slurm-ec2: ") {
			t.Errorf("job 10's %s: %s %q, want DOWN with EC2's reason", n, node.State, node.Reason)
		}
	}
	for _, n := range []string{"aws-spot-4", "aws-spot-5"} {
		if len(live[n]) != 1 {
			t.Errorf("job 11's %s has %d instances, want 1", n, len(live[n]))
		}
	}
	if az4, az5 := live["aws-spot-4"][0].AvailabilityZone, live["aws-spot-5"][0].AvailabilityZone; az4 != az5 {
		t.Errorf("job 11 spread over %s and %s, want one AZ", az4, az5)
	}
	if sum.Launched != 2 || sum.FailedTotal() != 4 {
		t.Errorf("summary %+v", sum)
	}
}

func TestNodeListInMessagesIsBounded(t *testing.T) {
	long := strings.Repeat("x", 70000)
	if got := nodeList([]string{long}); len(got) > maxListInMessage+60 || !strings.Contains(got, "(1 nodes, 70000 bytes)") {
		t.Fatalf("nodeList of a 70,000-byte name: %d bytes: %.80q", len(got), got)
	}
	if got := nodeList([]string{"aws-spot-1", "aws-spot-2"}); got != "aws-spot-[1-2]" {
		t.Fatalf("short list changed: %q", got)
	}
}

// Throttling that outlasts the SDK's retries is waited out (same ClientToken), within the
// launch deadline, instead of failing the nodes.
func TestResumeWaitsOutLongThrottling(t *testing.T) {
	e := newTestEnv(t, "")
	// The test clients make 8 attempts per call: 9 throttled answers exhaust the first call.
	if err := e.sim.InjectFault(ec2sim.Fault{Action: "CreateFleet", Rate: 1, Code: "RequestLimitExceeded", Count: 9}); err != nil {
		t.Fatal(err)
	}
	sum, err := Resume(context.Background(), e.deps, "aws-spot-[0-3]", ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Launched != 4 || sum.FailedTotal() != 0 {
		t.Fatalf("summary %+v, want 4 launched after waiting", sum)
	}
	if c := e.sim.Counters()["CreateFleet"]; c.Errors["RequestLimitExceeded"] != 9 || c.Total != 10 {
		t.Errorf("CreateFleet counters %+v", c)
	}
	if n := len(e.live()); n != 4 {
		t.Errorf("%d instances, want 4", n)
	}
}

// A fleet EC2 keeps throttling is launched in halves (EC2's launch budget lets smaller fleets
// through sooner); no node gets two instances.
func TestResumeSplitsAThrottledFleet(t *testing.T) {
	e := newTestEnv(t, "")
	if err := e.sim.InjectFault(ec2sim.Fault{Action: "CreateFleet", Rate: 1, Code: "RequestLimitExceeded", Count: 8}); err != nil {
		t.Fatal(err)
	}
	sum, err := Resume(context.Background(), e.deps, "aws-spot-[0-31]", ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Launched != 32 {
		t.Fatalf("summary %+v", sum)
	}
	c := e.sim.Counters()["CreateFleet"]
	// 32 (4 throttled tries) -> 16 (4 throttled tries) -> 8 + 8, then the other 16.
	if c.Total != 11 || c.Errors["RequestLimitExceeded"] != 8 {
		t.Errorf("CreateFleet counters %+v, want 8 throttled, then 3 fleets", c)
	}
	live := e.live()
	if len(live) != 32 {
		t.Errorf("%d named nodes with instances, want 32", len(live))
	}
	for n, insts := range live {
		if len(insts) != 1 {
			t.Errorf("%s has %d instances", n, len(insts))
		}
	}
}

// A large launch goes out as several smaller fleets, together, each for a run of nodes in node
// order (fleet.SplitLaunch): the first answers, and so the first addresses and Name tags, come
// sooner than one fleet's for every node.
func TestResumeSplitsLargeLaunches(t *testing.T) {
	e := newTestEnv(t, "")
	if _, err := Resume(context.Background(), e.deps, "aws-spot-[0-599]", ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := e.callsOf("CreateFleet"); n != 3 {
		t.Errorf("CreateFleet calls = %d, want 3 fleets of 200", n)
	}
	live := e.live()
	fleets := map[string]int{}
	for i := range 600 {
		node := fmt.Sprintf("aws-spot-%d", i)
		if len(live[node]) != 1 {
			t.Fatalf("%s has %d instances, want 1", node, len(live[node]))
		}
		fleets[live[node][0].Tags[fleet.TagLaunchedFor]]++
	}
	want := map[string]int{"aws-spot-[0-199]": 200, "aws-spot-[200-399]": 200, "aws-spot-[400-599]": 200}
	if !maps.Equal(fleets, want) {
		t.Errorf("nodes per fleet (by %s tag) = %v, want %v", fleet.TagLaunchedFor, fleets, want)
	}
}
