package burst

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// benchPartitions has four node groups of 2,500 nodes in two regions: 10,000 nodes in all, the
// size of the reconcile benchmark in bench/.
const benchPartitions = `{"Partitions": [{"PartitionName": "aws", "NodeGroups": [
 {"NodeGroupName": "east1", "MaxNodes": 2500, "Region": "us-east-1", "SlurmSpecifications": {"CPUs": "4"},
  "PurchasingOption": "on-demand", "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}], "SubnetIds": ["subnet-11111111"]},
 {"NodeGroupName": "east2", "MaxNodes": 2500, "Region": "us-east-1", "SlurmSpecifications": {"CPUs": "4"},
  "PurchasingOption": "on-demand", "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}], "SubnetIds": ["subnet-22222222"]},
 {"NodeGroupName": "west1", "MaxNodes": 2500, "Region": "us-west-2", "SlurmSpecifications": {"CPUs": "4"},
  "PurchasingOption": "on-demand", "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}], "SubnetIds": ["subnet-33333333"]},
 {"NodeGroupName": "west2", "MaxNodes": 2500, "Region": "us-west-2", "SlurmSpecifications": {"CPUs": "4"},
  "PurchasingOption": "on-demand", "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}], "SubnetIds": ["subnet-44444444"]}
]}]}`

const benchConfig = `{"LogLevel": "INFO", "LogFileName": "/dev/null", "SlurmBinPath": "/usr/bin",
 "ClusterName": "bench", "OrphanGraceSeconds": 300, "CoolDownSeconds": 600,
 "SlurmConf": {"ResumeProgram": "/usr/lib/slurm-ec2/resume", "SuspendProgram": "/usr/lib/slurm-ec2/suspend",
  "ResumeRate": 100, "SuspendRate": 100, "ResumeTimeout": 300, "SuspendTime": 350}}`

// benchView builds a reconcile view of 10,000 nodes and 10,000 instances in the shapes a
// reconcile meets in a busy cluster: most nodes up with their instance (Name-tagged), some up
// whose instance is not Name-tagged yet (matched by NodeAddr), some whose instance vanished,
// some DOWN after a failed resume, some powered down, a few duplicates and orphans.
func benchView(b testing.TB) (*Deps, inventory.Data, time.Time) {
	b.Helper()
	dir := b.TempDir()
	for name, body := range map[string]string{config.ConfigFileName: benchConfig, config.PartitionsFileName: benchPartitions} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		b.Fatalf("loading the benchmark config: %v", err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var v inventory.Data
	seq := 0
	inst := func(region, group, node, ip, state string, age time.Duration) inventory.Listed {
		seq++
		tags := map[string]string{fleet.TagCluster: "bench", fleet.TagNodeGroup: group}
		if node != "" {
			tags[fleet.TagName] = node
		}
		return inventory.Listed{Key: inventory.Key{Region: region}, Instance: fleet.Instance{ID: fmt.Sprintf("i-%017x", seq), Region: region, Type: "c5.xlarge", PrivateIP: ip,
			State: state, LaunchTime: now.Add(-age), Lifecycle: "on-demand", Tags: tags}}
	}
	for gi, g := range []struct{ name, region string }{{"aws-east1", "us-east-1"}, {"aws-east2", "us-east-1"}, {"aws-west1", "us-west-2"}, {"aws-west2", "us-west-2"}} {
		for i := range 2500 {
			name := fmt.Sprintf("%s-%d", g.name, i)
			ip := fmt.Sprintf("10.%d.%d.%d", gi+1, i/250, i%250+1)
			n := slurm.Node{Name: name, State: "IDLE", Flags: []string{"CLOUD"}, Addr: ip, Hostname: name, Partitions: []string{"aws"}}
			switch {
			case i%100 == 1: // up, instance gone (spot interruption)
				v.Instances = append(v.Instances, inst(g.region, g.name, name, ip, "terminated", time.Hour))
			case i%100 == 2: // DOWN after a failed resume, powered down
				n.State, n.Flags, n.Reason, n.ReasonTime = "DOWN", []string{"CLOUD", "POWERED_DOWN"}, "ResumeTimeout reached", now.Add(-time.Hour)
				n.Addr = name
			case i%100 == 3: // powered down, with an orphan instance still named for it
				n.Flags, n.Addr = []string{"CLOUD", "POWERED_DOWN"}, name
				v.Instances = append(v.Instances, inst(g.region, g.name, name, ip, "running", time.Hour))
			case i%100 == 4: // two instances for one node
				v.Instances = append(v.Instances, inst(g.region, g.name, name, ip, "running", time.Hour),
					inst(g.region, g.name, name, "10.99.0.1", "running", 30*time.Minute))
			case i%10 == 5: // up, instance not Name-tagged yet: joined by NodeAddr
				v.Instances = append(v.Instances, inst(g.region, g.name, "", ip, "running", time.Minute))
			default:
				v.Instances = append(v.Instances, inst(g.region, g.name, name, ip, "running", time.Hour))
			}
			v.Nodes = append(v.Nodes, n)
		}
	}
	return &Deps{Config: cfg, Cluster: "bench"}, v, now
}

// TestPlanActions10k checks the plan the benchmarks below time, so that a change of reconcile's
// rules shows here and not only when someone runs `make bench`. Per 2,500-node group, 25 of each:
// vanished instance (DOWN, then power down), failed resume (a boot failure: the group's back-off
// record), orphan and duplicate (terminate); and 250 instances without their Name tag (tag).
func TestPlanActions10k(t *testing.T) {
	d, data, now := benchView(t)
	checkBenchPlan(t, PlanActions(d, inventory.Join(d.Config, data), now))
}

func checkBenchPlan(t testing.TB, plan []Action) {
	t.Helper()
	want := map[string]int{"down/instance-gone": 100, "power-down/instance-gone": 100, "down/back-off": 100,
		"terminate/orphan": 100, "terminate/duplicate": 100, "tag/name-lost": 1000}
	got := map[string]int{}
	for _, a := range plan {
		got[fmt.Sprintf("%s/%s", a.Kind, a.Rule)]++
	}
	if !maps.Equal(got, want) {
		t.Fatalf("plan by kind/rule = %v, want %v", got, want)
	}
}

// BenchmarkPlanActions10k measures reconcile planning over 10,000 nodes and ~10,000 instances
// (the plan, no I/O; the join is done once).
func BenchmarkPlanActions10k(b *testing.B) {
	d, data, now := benchView(b)
	v := inventory.Join(d.Config, data)
	checkBenchPlan(b, PlanActions(d, v, now))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = PlanActions(d, v, now)
	}
}

// BenchmarkJoinAndPlan10k includes the join of both views (what reconcile does after reading
// Slurm and EC2).
func BenchmarkJoinAndPlan10k(b *testing.B) {
	d, data, now := benchView(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = PlanActions(d, inventory.Join(d.Config, data), now)
	}
}
