package burst

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/simenv"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

// The integration tests run the real SDK over HTTP against ec2sim, and the real slurm.Client
// exec'ing the recording scontrol stand-in.

const testCluster = "testcluster"

// Two partitions: the spec's example 1 (on-demand + spot in us-east-1) and a group in us-west-2,
// with room for large resumes.
const testPartitions = `{
  "Partitions": [
    {
      "PartitionName": "aws",
      "NodeGroups": [
        {
          "NodeGroupName": "ondemand", "MaxNodes": 10, "Region": "us-east-1",
          "SlurmSpecifications": {"CPUs": "4", "Weight": "1"},
          "PurchasingOption": "on-demand",
          "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
          "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
          "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}],
          "SubnetIds": ["subnet-11111111", "subnet-22222222"],
          "Tags": [{"Key": "NodeGroup", "Value": "ondemand"}, {"Key": "Owner", "Value": "{node_name}@{ip_address}"}]
        },
        {
          "NodeGroupName": "spot", "MaxNodes": 1000, "Region": "us-east-1",
          "SlurmSpecifications": {"CPUs": "4", "Weight": "2"},
          "PurchasingOption": "spot",
          "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
          "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
          "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}, {"InstanceType": "c4.xlarge"}],
          "SubnetIds": ["subnet-11111111", "subnet-22222222"],
          "Tags": [{"Key": "NodeGroup", "Value": "spot"}]
        }
      ],
      "PartitionOptions": {"Default": "yes"}
    },
    {
      "PartitionName": "west",
      "NodeGroups": [
        {
          "NodeGroupName": "node", "MaxNodes": 20, "Region": "us-west-2",
          "SlurmSpecifications": {"CPUs": "4"},
          "PurchasingOption": "on-demand",
          "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
          "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}],
          "SubnetIds": ["subnet-33333333", "subnet-44444444"]
        }
      ]
    }
  ]
}`

type testEnv struct {
	t    *testing.T
	sim  *ec2sim.Sim
	main *simenv.Account
	url  string
	fake *fakeslurm.Fake
	deps *Deps
	cfg  *config.Config
	now  time.Time // the head node's clock; zero means real time
}

// newTestEnv starts ec2sim, a fake Slurm with every node of the partitions, and loads the config
// through the real loader. extra is merged into config.json.
func newTestEnv(t *testing.T, extra string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, extra, testPartitions)
}

// newTestEnvWith is newTestEnv with another partitions.json (the Slurm stand-in keeps the same
// nodes: a group removed from partitions.json is still in Slurm).
func newTestEnvWith(t *testing.T, extra, partitions string) *testEnv {
	t.Helper()
	e := &testEnv{t: t}
	// One clock for the head node and EC2: tests move both forward by setting e.now.
	clock := func() time.Time {
		if e.now.IsZero() {
			return time.Now()
		}
		return e.now
	}
	acct := simenv.Start(t, ec2sim.Options{Seed: 42, Now: clock})
	sim := acct.Sim

	fake := fakeslurm.New(t, "aws-ondemand-[0-9]", "aws-spot-[0-999]", "west-node-[0-19]", "onprem-node-[0-1]", "acct-a-[0-3]", "acct-b-[0-3]")
	dir := t.TempDir()
	conf := `{"LogLevel": "DEBUG", "LogFileName": "` + filepath.Join(dir, "aws_plugin.log") + `",
	  "SlurmBinPath": "` + fake.BinDir + `",
	  "SlurmConf": {"PrivateData": "CLOUD", "ResumeProgram": "/usr/bin/resume", "SuspendProgram": "/usr/bin/suspend",
	    "ResumeRate": 100, "SuspendRate": 100, "ResumeTimeout": 300, "SuspendTime": 350, "TreeWidth": 60000},
	  "ClusterName": "` + testCluster + `"` + extra + `}`
	writeFile(t, filepath.Join(dir, "config.json"), conf)
	writeFile(t, filepath.Join(dir, "partitions.json"), partitions)
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("loading test config: %v", err)
	}

	// The SDK finds ec2sim through the standard endpoint variable and static credentials.
	simenv.Setenv(t, acct.URL, dir, simenv.Credentials{KeyID: "AKIDTESTTESTTEST", Secret: "secret-for-tests-only"})

	e.sim, e.url, e.main, e.fake, e.cfg = sim, acct.URL, acct, fake, cfg
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.deps = &Deps{
		Config:  cfg,
		Cluster: testCluster,
		Slurm:   &slurm.Client{BinDir: fake.BinDir, Timeout: 20 * time.Second, Logger: log},
		EC2:     fleet.NewClients(fleet.Options{Logger: log, MaxAttempts: 8, MaxBackoff: 300 * time.Millisecond}),
		Log:     log,
		LockDir: dir,
		// ec2sim does not throttle by default; pacing to EC2's rate is measured in benchmarks.
		TagsPerSecond: 2000,
		Now:           clock,
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// live returns the live instances of our cluster, by node name (Name tag, else NodeAddr match).
func (e *testEnv) live() map[string][]ec2sim.InstanceInfo {
	e.t.Helper()
	out := map[string][]ec2sim.InstanceInfo{}
	for _, region := range []string{"us-east-1", "us-west-2"} {
		for _, in := range e.sim.Instances(region) {
			if in.State == "terminated" || in.State == "shutting-down" || in.Tags[fleet.TagCluster] != testCluster {
				continue
			}
			out[in.Tags["Name"]] = append(out[in.Tags["Name"]], in)
		}
	}
	return out
}

// resumeUp resumes the nodes of expr and has Slurm see each of them up (registered with its
// instance): where most reconcile, status and health tests start.
func (e *testEnv) resumeUp(ctx context.Context, expr string) {
	e.t.Helper()
	if _, err := Resume(ctx, e.deps, expr, ResumeOptions{}); err != nil {
		e.t.Fatal(err)
	}
	names, err := hostlist.Expand(expr)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range names {
		e.fake.Set(n, up)
	}
}

// callsOf counts ec2sim calls of one action.
func (e *testEnv) callsOf(action string) int { return e.sim.Counters()[action].Total }

// updates returns the recorded `scontrol update` invocations.
func (e *testEnv) updates() [][]string {
	var out [][]string
	for _, c := range e.fake.Calls() {
		if c.Kind() == "update" {
			out = append(out, c.Argv)
		}
	}
	return out
}

// launchRaw launches n instances with the given tags, as something other than resume would.
func (e *testEnv) launchRaw(region, subnet string, n int, tags map[string]string) []string {
	e.t.Helper()
	return e.main.Launch(e.t, region, subnet, n, tags)
}

// launchAllocated launches one instance of this cluster named node in group, behind the plugin's
// back, and has Slurm run node on it (ALLOCATED, its address): a node whose instance only EC2's
// tags tie to it. It returns the instance id.
func (e *testEnv) launchAllocated(region, subnet, group, node string) string {
	e.t.Helper()
	id := e.launchRaw(region, subnet, 1, map[string]string{fleet.TagCluster: testCluster, fleet.TagNodeGroup: group, fleet.TagName: node})[0]
	in, _ := e.sim.Instance(id)
	e.fake.Set(node, func(n *slurm.Node) {
		n.State, n.Flags, n.Addr, n.Hostname = "ALLOCATED", []string{"CLOUD"}, in.PrivateIP, in.PrivateIP
	})
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// account is a second EC2 account: its own ec2sim behind its own endpoint.
type account = simenv.Account

// useAccounts makes the plugin's EC2 clients pick an endpoint by profile: each profile of
// accounts is its own EC2 account (ec2sim), "" is the test's main ec2sim, and any other profile
// does not exist (as the SDK says of a profile missing from ~/.aws/config).
func (e *testEnv) useAccounts(accounts map[string]*account) {
	e.t.Helper()
	a := &simenv.Accounts{Main: e.main, ByProfile: accounts}
	e.deps.EC2 = a.Clients(fleet.Options{Logger: e.deps.Log, MaxAttempts: 8, MaxBackoff: 300 * time.Millisecond})
}

// newAccount starts another ec2sim on the test's clock.
func (e *testEnv) newAccount(id string) *account {
	e.t.Helper()
	clock := func() time.Time {
		if e.now.IsZero() {
			return time.Now()
		}
		return e.now
	}
	// Instance ids are unique across accounts in EC2: each account gets its own seed.
	seed, _ := strconv.ParseUint(id[:6], 10, 64)
	return simenv.Start(e.t, ec2sim.Options{Seed: seed, Now: clock, AccountID: id})
}

// launchIn launches n instances with tags in an account's ec2sim.
func (e *testEnv) launchIn(a *account, region, subnet string, n int, tags map[string]string) []string {
	e.t.Helper()
	return a.Launch(e.t, region, subnet, n, tags)
}
