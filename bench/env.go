package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/simenv"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// group is one node group of the benchmark cluster.
type group struct {
	Name, Region string // Name is <partition>-<nodegroup>
	Subnets      []string
}

// groups: four node groups of groupSize nodes in two regions (10,000 nodes in all).
var groups = []group{
	{"aws-east1", "us-east-1", []string{"subnet-11111111", "subnet-22222222"}},
	{"aws-east2", "us-east-1", []string{"subnet-11111111", "subnet-22222222"}},
	{"aws-west1", "us-west-2", []string{"subnet-33333333", "subnet-44444444"}},
	{"aws-west2", "us-west-2", []string{"subnet-33333333", "subnet-44444444"}},
}

const (
	groupSize = 2500
	cluster   = "bench"
)

// spread splits n nodes over the groups as evenly as possible, first groups first.
func spread(n int) []int {
	out := make([]int, len(groups))
	for i := range groups {
		out[i] = n / len(groups)
		if i < n%len(groups) {
			out[i]++
		}
	}
	return out
}

// targetNames are the first per[i] nodes of each group.
func targetNames(per []int) []string {
	var names []string
	for i, g := range groups {
		for j := range per[i] {
			names = append(names, fmt.Sprintf("%s-%d", g.Name, j))
		}
	}
	return names
}

// perRegion sums a per-group count by region, and lists per region the group counts.
func perRegion(per []int) map[string][]int {
	m := map[string][]int{}
	for i, g := range groups {
		if per[i] > 0 {
			m[g.Region] = append(m[g.Region], per[i])
		}
	}
	return m
}

// total is the number of nodes in a region's groups.
func total(gs []int) int {
	n := 0
	for _, g := range gs {
		n += g
	}
	return n
}

// env is the benchmark's world: ec2sim, the scontrol stand-in and slurm-ec2's config.
type env struct {
	log                            *slog.Logger
	bin, work, configDir, slurmDir string
	slurmBin                       string
	sim                            *simServer
	tableSize                      int // nodes per group in Slurm's table; 0 means groupSize
}

func newEnv(ctx context.Context, log *slog.Logger, bin string) (*env, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("the binary to measure: %w (run make build)", err)
	}
	work, err := os.MkdirTemp("", "slurm-ec2-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{log: log, bin: abs, work: work, configDir: filepath.Join(work, "etc"), slurmDir: filepath.Join(work, "slurm"),
		slurmBin: filepath.Join(work, "slurm", "bin")}
	for _, d := range []string{e.configDir, e.slurmBin, filepath.Join(work, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			e.close()
			return nil, err
		}
	}
	fake := filepath.Join(work, "fakeslurm")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", fake, "./cmd/fakeslurm")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.close()
		return nil, fmt.Errorf("building the scontrol stand-in (run from the repository root): %w\n%s", err, out)
	}
	for _, name := range []string{"scontrol", "sinfo"} {
		if err := os.Symlink(fake, filepath.Join(e.slurmBin, name)); err != nil {
			e.close()
			return nil, err
		}
	}
	if err := e.writeConfig(); err != nil {
		e.close()
		return nil, err
	}
	if e.sim, err = startSim(log.With("component", "ec2sim")); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.sim != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.sim.close(ctx)
		cancel()
	}
	_ = os.RemoveAll(e.work)
}

// childEnv is the environment slurm-ec2 runs with: the shared harness's SDK environment (dummy
// credentials, ec2sim as the endpoint, no shared config, no instance metadata lookups) and the
// stand-in's state directory.
func (e *env) childEnv() []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + e.work,
		"FAKESLURM_DIR=" + e.slurmDir,
	}
	sdk := simenv.SDKEnv(e.sim.URL, e.work, simenv.Credentials{KeyID: "AKIDBENCHMARK", Secret: "benchmark-dummy"})
	for _, k := range slices.Sorted(maps.Keys(sdk)) {
		env = append(env, k+"="+sdk[k])
	}
	return env
}

func (e *env) writeConfig() error {
	cfg := fmt.Sprintf(`{
  "LogLevel": "INFO",
  "LogFileName": %q,
  "SlurmBinPath": %q,
  "ClusterName": %q,
  "CoolDownSeconds": 600,
  "OrphanGraceSeconds": 300,
  "CommandTimeoutSeconds": 120,
  "SlurmConf": {"PrivateData": "CLOUD", "ResumeProgram": "/usr/lib/slurm-ec2/resume",
    "SuspendProgram": "/usr/lib/slurm-ec2/suspend", "ResumeFailProgram": "/usr/lib/slurm-ec2/resume-fail",
    "ResumeRate": 0, "SuspendRate": 0, "ResumeTimeout": 600, "SuspendTime": 350, "TreeWidth": 60000}
}
`, filepath.Join(e.work, "log", "slurm-ec2.log"), e.slurmBin, cluster)
	ngs := ""
	for i, g := range groups {
		if i > 0 {
			ngs += ",\n"
		}
		part, name := "aws", g.Name[len("aws-"):]
		_ = part
		subnets := ""
		for j, s := range g.Subnets {
			if j > 0 {
				subnets += ", "
			}
			subnets += fmt.Sprintf("%q", s)
		}
		ngs += fmt.Sprintf(`    {"NodeGroupName": %q, "MaxNodes": %d, "Region": %q,
     "SlurmSpecifications": {"CPUs": "4"},
     "PurchasingOption": "on-demand", "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
     "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
     "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}, {"InstanceType": "c4.xlarge"}],
     "SubnetIds": [%s]}`, name, groupSize, g.Region, subnets)
	}
	parts := fmt.Sprintf(`{"Partitions": [{"PartitionName": "aws", "NodeGroups": [
%s
  ], "PartitionOptions": {"Default": "yes"}}]}
`, ngs)
	for name, body := range map[string]string{"config.json": cfg, "partitions.json": parts} {
		if err := os.WriteFile(filepath.Join(e.configDir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("writing the benchmark's %s: %w", name, err)
		}
	}
	return nil
}

// allNodes is Slurm's node table for the whole cluster: every node powered down, as slurm.conf
// defines them before any resume.
// A table of fewer nodes per group (tableSize > 0) isolates our own overhead from the cost of
// listing a large cluster.
func (e *env) allNodes() []slurm.Node {
	size := groupSize
	if e.tableSize > 0 {
		size = e.tableSize
	}
	nodes := make([]slurm.Node, 0, len(groups)*size)
	for _, g := range groups {
		for i := range size {
			name := fmt.Sprintf("%s-%d", g.Name, i)
			nodes = append(nodes, slurm.Node{Name: name, State: "IDLE", Flags: []string{"CLOUD", "POWERED_DOWN"},
				Addr: name, Hostname: name, Partitions: []string{"aws"}})
		}
	}
	return nodes
}

func expr(names []string) string { return hostlist.Compress(names) }
