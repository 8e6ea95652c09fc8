package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

const testConfig = `{"LogLevel": "INFO", "LogFileName": "/dev/null", "SlurmBinPath": "/usr/bin", "ClusterName": "c",
 "SlurmConf": {"ResumeProgram": "/r", "SuspendProgram": "/s", "ResumeRate": 100, "SuspendRate": 100, "ResumeTimeout": 300, "SuspendTime": 350}}`

func group(name, region, profile string) string {
	return `{"NodeGroupName": "` + name + `", "MaxNodes": 4, "Region": "` + region + `", "ProfileName": "` + profile + `",
	  "SlurmSpecifications": {"CPUs": "4"}, "PurchasingOption": "on-demand",
	  "LaunchTemplateSpecification": {"LaunchTemplateName": "t", "Version": "$Latest"},
	  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}], "SubnetIds": ["subnet-1"]}`
}

// testCfg has groups p-a (us-east-1, profile a) and p-b (us-east-1, profile b).
func testCfg(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	parts := `{"Partitions": [{"PartitionName": "p", "NodeGroups": [` + group("a", "us-east-1", "a") + `,` + group("b", "us-east-1", "b") + `]}]}`
	for name, body := range map[string]string{config.ConfigFileName: testConfig, config.PartitionsFileName: parts} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func node(name, addr string, flags ...string) slurm.Node {
	return slurm.Node{Name: name, State: "IDLE", Flags: append([]string{"CLOUD"}, flags...), Addr: addr, Hostname: name}
}

func inst(id, group, name, ip, state string, launched time.Time, k Key) Listed {
	tags := map[string]string{fleet.TagCluster: "c", fleet.TagNodeGroup: group}
	if name != "" {
		tags[fleet.TagName] = name
	}
	return Listed{Key: k, Instance: fleet.Instance{ID: id, Region: k.Region, PrivateIP: ip, State: state, LaunchTime: launched, Tags: tags}}
}

var (
	ka = Key{Region: "us-east-1", Profile: "a"}
	kb = Key{Region: "us-east-1", Profile: "b"}
)

func ids(list []Listed) []string {
	out := []string{}
	for _, in := range list {
		out = append(out, in.ID)
	}
	return out
}

func TestJoinRules(t *testing.T) {
	cfg := testCfg(t)
	for _, tc := range []struct {
		name      string
		nodes     []slurm.Node
		insts     []Listed
		failed    map[Key]error
		of        map[string][]string // node -> live instances
		keep      map[string]string   // node -> kept instance
		unclaimed []string
		gone      []string
		untagged  []string
	}{
		{
			name:  "name tag wins; unnamed matched by NodeAddr in its group",
			nodes: []slurm.Node{node("p-a-0", "10.0.0.1"), node("p-a-1", "10.0.0.2")},
			insts: []Listed{inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, ka), inst("i-2", "p-a", "", "10.0.0.2", "running", t0, ka)},
			of:    map[string][]string{"p-a-0": {"i-1"}, "p-a-1": {"i-2"}},
			keep:  map[string]string{"p-a-0": "i-1", "p-a-1": "i-2"},
			// i-2 has no Name tag: rule 10.
			untagged: []string{"i-2"},
		},
		{
			name:      "NodeAddr of another group does not match",
			nodes:     []slurm.Node{node("p-a-0", "10.0.0.1")},
			insts:     []Listed{inst("i-1", "p-b", "", "10.0.0.1", "running", t0, kb)},
			unclaimed: []string{"i-1"},
			gone:      []string{"p-a-0"},
		},
		{
			name:      "stale NodeAddr: the powered-up node wins over a powered-down one",
			nodes:     []slurm.Node{node("p-a-0", "10.0.0.1", "POWERED_DOWN"), node("p-a-1", "10.0.0.1")},
			insts:     []Listed{inst("i-1", "p-a", "", "10.0.0.1", "running", t0, ka)},
			of:        map[string][]string{"p-a-1": {"i-1"}},
			keep:      map[string]string{"p-a-1": "i-1"},
			untagged:  []string{"i-1"},
			gone:      nil,
			unclaimed: nil,
		},
		{
			name:      "ambiguous NodeAddr matches nobody",
			nodes:     []slurm.Node{node("p-a-0", "10.0.0.1"), node("p-a-1", "10.0.0.1")},
			insts:     []Listed{inst("i-1", "p-a", "", "10.0.0.1", "running", t0, ka)},
			unclaimed: []string{"i-1"},
			gone:      []string{"p-a-0", "p-a-1"},
		},
		{
			name:  "keep: at NodeAddr first, else oldest, else lowest id",
			nodes: []slurm.Node{node("p-a-0", "10.0.0.9"), node("p-a-1", "10.0.0.8")},
			insts: []Listed{
				inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, ka),
				inst("i-2", "p-a", "p-a-0", "10.0.0.9", "running", t0.Add(time.Hour), ka),
				inst("i-4", "p-a", "p-a-1", "10.0.0.4", "running", t0, ka),
				inst("i-3", "p-a", "p-a-1", "10.0.0.3", "running", t0, ka),
				inst("i-5", "p-a", "p-a-1", "10.0.0.5", "running", t0.Add(-time.Minute), ka),
			},
			of:   map[string][]string{"p-a-0": {"i-1", "i-2"}, "p-a-1": {"i-3", "i-4", "i-5"}},
			keep: map[string]string{"p-a-0": "i-2", "p-a-1": "i-5"},
		},
		{
			name:      "powered-down node claims nothing; dead instances explain a gone node",
			nodes:     []slurm.Node{node("p-a-0", "p-a-0", "POWERED_DOWN"), node("p-a-1", "10.0.0.2")},
			insts:     []Listed{inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, ka), inst("i-2", "p-a", "p-a-1", "10.0.0.2", "terminated", t0, ka)},
			of:        map[string][]string{"p-a-0": {"i-1"}},
			unclaimed: []string{"i-1"},
			gone:      []string{"p-a-1"},
		},
		{
			name:  "removed group: held by its powered-up Slurm node, unclaimed without one",
			nodes: []slurm.Node{node("old-x-0", "10.0.0.1"), node("old-x-1", "10.0.0.2", "POWERED_DOWN")},
			insts: []Listed{
				inst("i-1", "old-x", "old-x-0", "10.0.0.1", "running", t0, ka),
				inst("i-2", "old-x", "old-x-1", "10.0.0.2", "running", t0, ka),
				inst("i-3", "old-x", "old-x-2", "10.0.0.3", "running", t0, ka),
			},
			of:        map[string][]string{"old-x-0": {"i-1"}, "old-x-1": {"i-2"}},
			keep:      map[string]string{"old-x-0": "i-1"},
			unclaimed: []string{"i-2", "i-3"},
		},
		{
			name:   "an unreadable Key: its nodes are unknown, never gone",
			nodes:  []slurm.Node{node("p-a-0", "10.0.0.1"), node("p-b-0", "10.0.0.2")},
			insts:  []Listed{inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, ka)},
			failed: map[Key]error{kb: errors.New("no such profile")},
			of:     map[string][]string{"p-a-0": {"i-1"}},
			keep:   map[string]string{"p-a-0": "i-1"},
		},
		{
			name:  "one instance listed by two profiles is one instance",
			nodes: []slurm.Node{node("p-a-0", "10.0.0.1")},
			insts: []Listed{inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, ka), inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, kb)},
			of:    map[string][]string{"p-a-0": {"i-1"}},
			keep:  map[string]string{"p-a-0": "i-1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Join(cfg, Data{Nodes: tc.nodes, Instances: tc.insts, Failed: tc.failed})
			for _, n := range tc.nodes {
				if got, want := ids(v.Of(n.Name)), tc.of[n.Name]; !slices.Equal(got, append([]string{}, want...)) {
					t.Errorf("Of(%s) = %v, want %v", n.Name, got, want)
				}
				keep, _, ok := v.Keep(n.Name, v.Claims(n.Name))
				if want := tc.keep[n.Name]; (want != "") != ok || keep.ID != want {
					t.Errorf("Keep(%s) = %q (%v), want %q", n.Name, keep.ID, ok, want)
				}
			}
			if got := ids(v.Unclaimed()); !slices.Equal(got, append([]string{}, tc.unclaimed...)) {
				t.Errorf("Unclaimed = %v, want %v", got, tc.unclaimed)
			}
			var gone []string
			for _, n := range v.Gone() {
				gone = append(gone, n.Name)
			}
			if !slices.Equal(gone, tc.gone) {
				t.Errorf("Gone = %v, want %v", gone, tc.gone)
			}
			if got := ids(v.Untagged()); !slices.Equal(got, append([]string{}, tc.untagged...)) {
				t.Errorf("Untagged = %v, want %v", got, tc.untagged)
			}
		})
	}
}

func TestUnconfigured(t *testing.T) {
	v := Join(testCfg(t), Data{})
	for group, want := range map[string]bool{"p-a": false, "p-b": false, "old-x": true, "": false} {
		in := fleet.Instance{Tags: map[string]string{fleet.TagNodeGroup: group}}
		if got := v.Unconfigured(in); got != want {
			t.Errorf("Unconfigured(group %q) = %v, want %v", group, got, want)
		}
	}
}

// Orphans are measured on EC2's clock: with EC2 two minutes ahead, an instance launched 9
// minutes ago by our clock is 11 minutes old, past a 10-minute grace.
func TestOrphansGraceOnEC2Clock(t *testing.T) {
	cfg := testCfg(t)
	synctest.Test(t, func(t *testing.T) {
		launched := time.Now()
		d := Data{
			Nodes:     []slurm.Node{},
			Instances: []Listed{inst("i-1", "p-a", "", "10.0.0.1", "running", launched, ka), inst("i-2", "p-b", "", "10.0.0.2", "running", launched, kb)},
			Skew:      map[Key]time.Duration{ka: 2 * time.Minute},
		}
		v := Join(cfg, d)
		grace := 10 * time.Minute
		time.Sleep(9 * time.Minute)
		if got := ids(v.Orphans(time.Now(), grace)); !slices.Equal(got, []string{"i-1"}) {
			t.Errorf("after 9 min: orphans %v, want [i-1] (its EC2 is 2 min ahead)", got)
		}
		time.Sleep(time.Minute)
		if got := ids(v.Orphans(time.Now(), grace)); !slices.Equal(got, []string{"i-1", "i-2"}) {
			t.Errorf("after 10 min: orphans %v, want both", got)
		}
	})
}

// Slurm unread (suspend with every node named): Name tags of configured nodes still match.
func TestJoinWithoutSlurm(t *testing.T) {
	v := Join(testCfg(t), Data{Instances: []Listed{inst("i-1", "p-a", "p-a-0", "10.0.0.1", "running", t0, ka), inst("i-2", "p-a", "zz-0", "10.0.0.2", "running", t0, ka)}})
	if got := ids(v.Of("p-a-0")); !slices.Equal(got, []string{"i-1"}) {
		t.Errorf("Of(p-a-0) = %v", got)
	}
	if v.NodeOf("i-2") != "" || len(v.Claims("p-a-0")) != 0 {
		t.Errorf("an unknown name matched, or a node Slurm did not report claims")
	}
}
