package burst

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// The pure side of the health rules: views built by hand, no I/O.

func planTestConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), `{"SlurmConf": {"ResumeProgram": "/usr/bin/resume", "SuspendProgram": "/usr/bin/suspend"}, "ClusterName": "`+testCluster+`"}`)
	writeFile(t, filepath.Join(dir, "partitions.json"), testPartitions)
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var useast = inventory.Key{Region: "us-east-1"}

// healthView is one node, aws-ondemand-0, with one running instance i-0000000000000000a.
func healthView(cfg *config.Config, launched time.Time, node func(*slurm.Node), failed bool) *inventory.View {
	n := slurm.Node{Name: "aws-ondemand-0", State: "IDLE", Flags: []string{"CLOUD"}, Addr: "10.1.0.4", Hostname: "ip-10-1-0-4"}
	if node != nil {
		node(&n)
	}
	in := fleet.Instance{ID: "i-0000000000000000a", Region: "us-east-1", State: "running", PrivateIP: "10.1.0.4", LaunchTime: launched,
		Lifecycle: "on-demand", Tags: map[string]string{fleet.TagName: "aws-ondemand-0", fleet.TagCluster: testCluster, fleet.TagNodeGroup: "aws-ondemand"}}
	d := inventory.Data{Nodes: []slurm.Node{n}, Instances: []inventory.Listed{{Instance: in, Key: useast}}, Loaded: []inventory.Key{useast}}
	if failed {
		d.Loaded, d.Instances, d.Failed = nil, nil, map[inventory.Key]error{useast: errors.New("unreachable")}
	}
	return inventory.Join(cfg, d)
}

func planString(plan []Action) string {
	var out []string
	for _, a := range plan {
		s := string(a.Kind) + "/" + string(a.Rule)
		if a.Reason != "" {
			s += " " + a.Reason
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func TestPlanHealth(t *testing.T) {
	cfg := planTestConfig(t)
	now := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	launched := now.Add(-time.Hour)
	retire := fleet.Event{ID: "instance-event-1", Code: "instance-retirement", NotBefore: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	const retireReason = "slurm-ec2: instance-retirement scheduled for 2026-12-04T10:00:00Z"
	event := fleet.Health{InstanceStatus: "ok", SystemStatus: "ok", Events: []fleet.Event{retire}}
	impaired := func(ago time.Duration) fleet.Health {
		return fleet.Health{InstanceStatus: "impaired", SystemStatus: "ok", ImpairedSince: now.Add(-ago)}
	}
	busyNode := func(n *slurm.Node) { n.State = "ALLOCATED" }
	drained := func(reason string, state string) func(*slurm.Node) {
		return func(n *slurm.Node) { n.State = state; n.Flags = append(n.Flags, "DRAIN"); n.Reason = reason }
	}
	replaced := func(rule, reason string) string {
		return fmt.Sprintf("down/%s %s; power-down/%s; terminate/%s replaced: %s", rule, reason, rule, rule, reason)
	}
	impairedReason10m := "slurm-ec2: status-check-failed since 2026-12-01T21:50:00Z: instance status impaired, system status ok"

	cases := map[string]struct {
		node    func(*slurm.Node)
		health  *fleet.Health
		grace   time.Duration
		planned []Action
		failed  bool
		want    string
	}{
		"healthy":                         {health: nil, want: ""},
		"event, busy: drain naming it":    {node: busyNode, health: &event, want: "drain/scheduled-event " + retireReason},
		"event, completing: drain":        {node: func(n *slurm.Node) { n.Flags = append(n.Flags, "COMPLETING") }, health: &event, want: "drain/scheduled-event " + retireReason},
		"event, mixed: drain":             {node: func(n *slurm.Node) { n.State = "MIXED" }, health: &event, want: "drain/scheduled-event " + retireReason},
		"event, idle: power down now":     {health: &event, want: "power-down-idle/scheduled-event " + retireReason},
		"event, drained by us, busy":      {node: drained(retireReason, "ALLOCATED"), health: &event, want: ""},
		"event, drained by us, now idle":  {node: drained(retireReason, "IDLE"), health: &event, want: replaced("scheduled-event", retireReason)},
		"event, admin drain":              {node: drained("disk check", "IDLE"), health: &event, want: ""},
		"event, spot notice drain (ours)": {node: drained("slurm-ec2: spot interruption notice for i-0000000000000000a", "IDLE"), health: &event, want: ""},
		"event, admin DOWN":               {node: func(n *slurm.Node) { n.State = "DOWN"; n.Reason = "bad" }, health: &event, want: ""},
		"event, powering up":              {node: func(n *slurm.Node) { n.Flags = append(n.Flags, "POWERING_UP") }, health: &event, want: ""},
		"event, powering down":            {node: func(n *slurm.Node) { n.Flags = append(n.Flags, "POWERING_DOWN") }, health: &event, want: ""},
		"event, node in the plan already": {health: &event, planned: []Action{{Kind: ActDown, Rule: RuleVanished, Node: "aws-ondemand-0"}}, want: ""},
		"event, address fix planned":      {health: &event, planned: []Action{{Kind: ActAddress, Rule: RuleAddressLost, Node: "aws-ondemand-0"}}, want: "power-down-idle/scheduled-event " + retireReason},
		"event, EC2 unreachable":          {health: &event, failed: true, want: ""},
		"impaired past grace":             {node: busyNode, health: ptr(impaired(10 * time.Minute)), grace: 3 * time.Minute, want: replaced("status-impaired", impairedReason10m)},
		"impaired within grace":           {node: busyNode, health: ptr(impaired(2 * time.Minute)), grace: 3 * time.Minute, want: ""},
		"impaired, grace 0":               {node: busyNode, health: ptr(impaired(0)), grace: 0, want: replaced("status-impaired", "slurm-ec2: status-check-failed since 2026-12-01T22:00:00Z: instance status impaired, system status ok")},
		"impaired, drained by us":         {node: drained(retireReason, "ALLOCATED"), health: ptr(impaired(10 * time.Minute)), grace: 3 * time.Minute, want: replaced("status-impaired", impairedReason10m)},
		"impaired, admin drain":           {node: drained("disk check", "ALLOCATED"), health: ptr(impaired(10 * time.Minute)), grace: 3 * time.Minute, want: ""},
		"impaired, no since: launch time": {node: busyNode, health: &fleet.Health{SystemStatus: "impaired", InstanceStatus: "ok"}, grace: 3 * time.Minute,
			want: replaced("status-impaired", "slurm-ec2: status-check-failed since 2026-12-01T21:00:00Z: instance status ok, system status impaired")},
		"impaired within grace + event, busy": {node: busyNode, health: &fleet.Health{InstanceStatus: "impaired", ImpairedSince: now, Events: []fleet.Event{retire}},
			grace: 3 * time.Minute, want: "drain/scheduled-event " + retireReason},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := healthView(cfg, launched, tc.node, tc.failed)
			health := map[string]fleet.Health{}
			if tc.health != nil {
				health["i-0000000000000000a"] = *tc.health
			}
			plan := PlanHealth(v, health, tc.grace, now, tc.planned)
			if got := planString(plan); got != tc.want {
				t.Fatalf("plan:\n got %q\nwant %q", got, tc.want)
			}
			for _, a := range plan {
				if a.Instance != "i-0000000000000000a" || a.Region != "us-east-1" {
					t.Errorf("action %v lacks its instance and region", a)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestPlanHealthGraceSynctest: the grace is measured from EC2's ImpairedSince, so it spans
// reconcile runs with no state of ours: runs every 30 s in a fake-time bubble do nothing until
// HealthCheckGraceSeconds have passed, then replace the node in the first run after.
func TestPlanHealthGraceSynctest(t *testing.T) {
	cfg := planTestConfig(t)
	synctest.Test(t, func(t *testing.T) {
		since := time.Now()
		v := healthView(cfg, since.Add(-time.Hour), func(n *slurm.Node) { n.State = "ALLOCATED" }, false)
		health := map[string]fleet.Health{"i-0000000000000000a": {InstanceStatus: "impaired", SystemStatus: "ok", ImpairedSince: since}}
		const grace = 180 * time.Second
		var actedAt time.Duration
		for actedAt == 0 {
			time.Sleep(30 * time.Second) // the reconcile timer
			plan := PlanHealth(v, health, grace, time.Now(), nil)
			if len(plan) > 0 {
				actedAt = time.Since(since)
				if !slices.ContainsFunc(plan, func(a Action) bool { return a.Kind == ActTerminate && a.Rule == RuleImpaired }) {
					t.Fatalf("plan %v lacks the termination", plan)
				}
			}
			if time.Since(since) > time.Hour {
				t.Fatal("never acted")
			}
		}
		if actedAt != grace {
			t.Fatalf("acted %s after the check failed, want at the first run past %s", actedAt, grace)
		}
	})
}

// BenchmarkPlanHealth10k measures the health rules over the 10,000-node reconcile view with 1% of
// the instances carrying a scheduled event and 1% impaired past the grace.
func BenchmarkPlanHealth10k(b *testing.B) {
	d, data, now := benchView(b)
	v := inventory.Join(d.Config, data)
	health := map[string]fleet.Health{}
	for i, in := range v.Live() {
		switch i % 100 {
		case 7:
			health[in.ID] = fleet.Health{InstanceStatus: "ok", SystemStatus: "ok", Events: []fleet.Event{{Code: "instance-retirement", NotBefore: now.Add(72 * time.Hour)}}}
		case 8:
			health[in.ID] = fleet.Health{InstanceStatus: "impaired", SystemStatus: "ok", ImpairedSince: now.Add(-time.Hour)}
		}
	}
	planned := PlanActions(d, v, now)
	if plan := PlanHealth(v, health, 3*time.Minute, now, planned); len(plan) == 0 {
		b.Fatal("no health action planned")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = PlanHealth(v, health, 3*time.Minute, now, planned)
	}
}
