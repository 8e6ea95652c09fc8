package faults

import (
	"strconv"
	"strings"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// Issue 13: a site that changes under the plugin (two accounts in a region, an account that
// cannot be reached, a group removed from partitions.json, Name tags lost, an optional call that
// keeps failing). Each case ends with the invariant check.

// twoAccountPartitions is partitionsJSON with the spot group in the account of profile acct2.
func twoAccountPartitions(t *testing.T) string {
	t.Helper()
	s := strings.Replace(partitionsJSON, `"NodeGroupName": "spot", "MaxNodes": 40, "Region": "us-east-1",`,
		`"NodeGroupName": "spot", "MaxNodes": 40, "Region": "us-east-1", "ProfileName": "acct2",`, 1)
	if s == partitionsJSON {
		t.Fatal("partitionsJSON changed: cannot put the spot group in another account")
	}
	return s
}

func (e *env) stateOf(sim *ec2sim.Sim, id string) string {
	in, _ := sim.Instance(id)
	return in.State
}

// Two accounts in one region: the orphans of each are terminated through its own account.
func TestSiteTwoAccountsOneRegion(t *testing.T) {
	e := newEnv(t, envOptions{partitions: twoAccountPartitions(t), accounts: []string{"acct2"}})
	e.note("spot group in a second account (profile acct2), same region")
	acct2 := e.accounts["acct2"]
	orphans := map[*ec2sim.Sim]string{
		e.sim:     e.launchRaw(nil, 1, map[string]string{fleet.TagCluster: cluster, fleet.TagNodeGroup: "aws-ondemand"})[0],
		acct2.Sim: e.launchRaw(acct2, 1, map[string]string{fleet.TagCluster: cluster, fleet.TagNodeGroup: "aws-spot"})[0],
	}
	e.note("one orphan in each account")
	workload(e)
	v := e.recoverAndCheck()
	for sim, id := range orphans {
		if st := e.stateOf(sim, id); live(ec2sim.InstanceInfo{State: st}) {
			v = append(v, "orphan "+id+" still "+st)
		}
	}
	if len(acct2.Sim.Instances(region)) < 2 {
		v = append(v, "no spot instance was launched in the second account: the case tested nothing")
	}
	e.finish(v)
}

// An account that cannot be reached (its profile missing) while the workload runs: the other
// group is still served (its orphan terminated during the fault); once the profile is back
// (recovery), the invariant holds.
func TestSiteUnreachableAccount(t *testing.T) {
	e := newEnv(t, envOptions{partitions: twoAccountPartitions(t), accounts: []string{"acct2"}})
	e.setUnreachable("acct2", true)
	e.note("profile acct2 (spot group) missing during the workload")
	orphan := e.launchRaw(nil, 1, map[string]string{fleet.TagCluster: cluster, fleet.TagNodeGroup: "aws-ondemand"})[0]
	e.clk.Advance(orphanGrace + 1e9)
	workload(e)
	var v []string
	if st := e.stateOf(e.sim, orphan); live(ec2sim.InstanceInfo{State: st}) {
		v = append(v, "the reachable account's orphan "+orphan+" is "+st+" while acct2 was unreachable: one account stopped the other")
	}
	for _, n := range e.fake.Nodes() {
		if strings.HasPrefix(n.Name, "aws-spot-") && n.IsDown() && !strings.Contains(n.Reason, "EC2 client") {
			v = append(v, "spot node "+n.Name+" DOWN with reason "+n.Reason+", want one naming the EC2 client failure")
		}
	}
	e.finish(append(v, e.recoverAndCheck()...))
}

// A node group removed from partitions.json while its nodes run jobs: their instances are kept
// while the nodes are up, and terminated (no leak) once Slurm powers them down.
func TestSiteGroupRemoved(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.powerUp("aws-ondemand-[0-2]", "aws-spot-[0-1]"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	e.ctld.tick()
	ids := e.liveIDs("aws-ondemand-0", "aws-ondemand-1", "aws-ondemand-2")
	if len(ids) != 3 {
		t.Fatalf("ondemand instances %v, want 3", ids)
	}
	// The site removes the ondemand group from partitions.json (Slurm still runs its nodes).
	parts := strings.Replace(partitionsJSON, `"NodeGroupName": "ondemand"`, `"NodeGroupName": "gone"`, 1)
	writeFile(t, e.dir+"/"+config.PartitionsFileName, parts)
	cfg, err := config.Load(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg, e.deps.Config = cfg, cfg
	e.note("group aws-ondemand removed from partitions.json while its 3 nodes run")
	e.clk.Advance(orphanGrace + 1e9)
	if err := e.reconcile(); err != nil {
		t.Logf("reconcile: %v", err)
	}
	var v []string
	for _, id := range ids {
		if st := e.stateOf(e.sim, id); !live(ec2sim.InstanceInfo{State: st}) {
			v = append(v, "instance "+id+" of a running node of the removed group is "+st)
		}
	}
	// The jobs end; Slurm powers the nodes down (suspend skips them: not in partitions.json).
	if err := e.powerDown("aws-ondemand-[0-2]"); err != nil {
		t.Logf("suspend: %v", err)
	}
	e.finish(append(v, e.recoverAndCheck()...))
}

// Name tags lost (CreateTags failing during the resume), then `scontrol reconfigure` resetting
// every NodeAddr: no running node's instance is terminated, no node set DOWN.
func TestSiteNameTagsLost(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.inject(ec2sim.Fault{Action: "CreateTags", Rate: 1, Code: "InternalError"})
	if err := e.powerUp("aws-ondemand-[0-2]"); err != nil {
		t.Logf("resume: %v", err)
	}
	e.ctld.tick()
	e.sim.ClearFaults()
	if err := e.reconcile(); err != nil {
		t.Logf("reconcile: %v", err)
	}
	e.note("then scontrol reconfigure: NodeAddr reset to the node names")
	for _, n := range e.fake.Nodes() {
		e.fake.Set(n.Name, func(n *slurm.Node) { n.Addr, n.Hostname = n.Name, n.Name })
	}
	ids := e.liveIDs()
	v := e.recoverAndCheck()
	for _, id := range ids {
		if st := e.stateOf(e.sim, id); !live(ec2sim.InstanceInfo{State: st}) {
			v = append(v, "instance "+id+" of a running node was "+st)
		}
	}
	for _, n := range e.fake.Nodes() {
		if n.IsDown() {
			v = append(v, "node "+n.Name+" set DOWN: "+n.Reason)
		}
	}
	if len(ids) != 3 {
		v = append(v, "the resume did not give 3 instances: the case tested nothing")
	}
	e.finish(v)
}

// DescribeSpotInstanceRequests answering 500 on every call: reconcile tries it at most twice
// (an optional call) and still does its work.
func TestSiteOptionalCallFailing(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.inject(ec2sim.Fault{Action: "DescribeSpotInstanceRequests", Rate: 1, Code: "InternalError"})
	workload(e)
	var v []string
	if n := e.sim.Counters()["DescribeSpotInstanceRequests"].Total; n == 0 || n > 2 {
		v = append(v, "DescribeSpotInstanceRequests called "+strconv.Itoa(n)+" times in one reconcile, want 1 or 2")
	}
	e.finish(append(v, e.recoverAndCheck()...))
}
