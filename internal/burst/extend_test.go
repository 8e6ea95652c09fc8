package burst

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
)

// The extension points other rules plug into: a Planner adds reconcile actions, a ResumeGate
// holds nodes back from a launch.

func TestPlannerAddsActions(t *testing.T) {
	e := newTestEnv(t, "")
	ctx := context.Background()
	e.resumeUp(ctx, "aws-ondemand-[0-1]")
	var saw []string
	e.deps.Planners = []Planner{func(v *inventory.View, now time.Time, planned []Action) []Action {
		var out []Action
		for _, n := range v.Nodes() {
			if keep, _, ok := v.Keep(n.Name, v.Claims(n.Name)); ok && n.Name == "aws-ondemand-1" {
				saw = append(saw, keep.ID)
				out = append(out,
					Action{Kind: ActTerminate, Rule: "unhealthy", Node: n.Name, Instance: keep.ID, Region: keep.Region, Profile: keep.Key.Profile},
					Action{Kind: ActDown, Rule: "unhealthy", Node: n.Name, Reason: reasonPrefix + "instance unhealthy"})
			}
		}
		return out
	}}
	sum, err := Reconcile(ctx, e.deps, reconcileOpts())
	if err != nil {
		t.Fatal(err)
	}
	if len(saw) == 0 || sum.Actions["terminate/unhealthy"] != 1 || sum.Actions["down/unhealthy"] != 1 {
		t.Fatalf("plan %v: the planner's actions were not carried out", sum.Plan)
	}
	if st := stateIn(t, e.sim, saw[0]); isLive(st) {
		t.Errorf("instance %s the planner terminated is %s", saw[0], st)
	}
	if n := e.fake.Node("aws-ondemand-1"); !n.IsDown() || !strings.Contains(n.Reason, "unhealthy") {
		t.Errorf("aws-ondemand-1 is %s (%q), want DOWN with the planner's reason", n.State, n.Reason)
	}
}

func TestResumeGateHoldsNodes(t *testing.T) {
	e := newTestEnv(t, "")
	e.deps.ResumeGate = func(v *inventory.View, g *config.NodeGroup, nodes []string, now time.Time) map[string]Hold {
		out := map[string]Hold{}
		for _, n := range nodes {
			if n == "aws-ondemand-1" {
				out[n] = Hold{Reason: reasonPrefix + "backing off", Code: "BackOff"}
			}
		}
		return out
	}
	sum, err := Resume(context.Background(), e.deps, "aws-ondemand-[0-1]", ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Launched != 1 || sum.Failed["BackOff"] != 1 {
		t.Errorf("launched %d, failed %v; want 1 launched and 1 held (BackOff)", sum.Launched, sum.Failed)
	}
	if _, ok := e.live()["aws-ondemand-1"]; ok {
		t.Error("the held node got an instance")
	}
	if n := e.fake.Node("aws-ondemand-1"); !n.IsDown() || n.Reason != reasonPrefix+"backing off" {
		t.Errorf("held node is %s (%q), want DOWN with the gate's reason", n.State, n.Reason)
	}
}
