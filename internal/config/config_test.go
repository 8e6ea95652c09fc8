package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeDir writes config.json and partitions.json into a fresh directory.
func writeDir(t *testing.T, configJSON, partitionsJSON string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFileName), []byte(configJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PartitionsFileName), []byte(partitionsJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadSpecExamples(t *testing.T) {
	conf := readTestdata(t, "config.json")
	tests := map[string]struct {
		file       string
		groups     []string
		hostlists  []string
		spot       []bool
		partOpts   [][]KV
		overrides0 []types.InstanceType
	}{
		"example1": {"partitions-example1.json", []string{"aws-ondemand", "aws-spot"}, []string{"aws-ondemand-[0-9]", "aws-spot-[0-99]"},
			[]bool{false, true}, [][]KV{{{"Default", "yes"}, {"TRESBillingWeights", "cpu=4"}}}, []types.InstanceType{"c5.xlarge"}},
		"example2": {"partitions-example2.json", []string{"aws-spot4vCPU", "aws-spot4vCPUa", "aws-spot4vCPUb"},
			[]string{"aws-spot4vCPU-[0-99]", "aws-spot4vCPUa-[0-99]", "aws-spot4vCPUb-[0-99]"}, []bool{true, true, true}, [][]KV{nil},
			[]types.InstanceType{"c5.xlarge", "c4.xlarge"}},
		"example3": {"partitions-example3.json", []string{"aws-node", "awsspot-node"}, []string{"aws-node-[0-99]", "awsspot-node-[0-99]"},
			[]bool{false, true}, [][]KV{{{"TRESBillingWeights", "cpu=30"}, {"AllowAccounts", "standard,VIP"}}, {{"TRESBillingWeights", "cpu=10"}, {"AllowAccounts", "standard"}}},
			[]types.InstanceType{"c5.xlarge", "c4.xlarge"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeDir(t, conf, readTestdata(t, tc.file))
			cfg, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var groups, hls []string
			var spot []bool
			for _, g := range cfg.NodeGroups() {
				groups = append(groups, g.Name())
				hls = append(hls, g.Hostlist())
				spot = append(spot, g.IsSpot())
			}
			if diff := cmp.Diff(tc.groups, groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.hostlists, hls); diff != "" {
				t.Errorf("hostlists (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.spot, spot); diff != "" {
				t.Errorf("IsSpot (-want +got):\n%s", diff)
			}
			var opts [][]KV
			for _, p := range cfg.Partitions {
				opts = append(opts, p.PartitionOptions)
			}
			if diff := cmp.Diff(tc.partOpts, opts); diff != "" {
				t.Errorf("PartitionOptions (-want +got):\n%s", diff)
			}
			g0 := cfg.NodeGroups()[0]
			var its []types.InstanceType
			for _, o := range g0.LaunchTemplateOverrides {
				its = append(its, o.InstanceType)
			}
			if diff := cmp.Diff(tc.overrides0, its); diff != "" {
				t.Errorf("overrides (-want +got):\n%s", diff)
			}
			if got := aws.ToString(g0.LaunchTemplateSpecification.LaunchTemplateName); got != "template-name" {
				t.Errorf("LaunchTemplateName = %q", got)
			}
			if got := aws.ToString(g0.LaunchTemplateSpecification.Version); got != "$Latest" {
				t.Errorf("Version = %q", got)
			}
			if diff := cmp.Diff([]string{"subnet-11111111", "subnet-22222222"}, g0.SubnetIds); tc.file != "partitions-example2.json" && diff != "" {
				t.Errorf("SubnetIds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigDefaultsAndValues(t *testing.T) {
	dir := writeDir(t, `{"SlurmConf": {"ResumeProgram": "/opt/slurm-ec2/resume", "SuspendProgram": "/opt/slurm-ec2/suspend",
	  "ResumeRate": 100, "TreeWidth": 60000, "PrivateData": "CLOUD", "Flag": true}}`, readTestdata(t, "partitions-example1.json"))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Dir: dir, ConfigFile: filepath.Join(dir, "config.json"), PartitionsFile: filepath.Join(dir, "partitions.json"),
		LogLevel: "DEBUG", LogFileName: filepath.Join(dir, "aws_plugin.log"), SlurmBinPath: "/usr/bin",
		SlurmConf: []KV{{"ResumeProgram", "/opt/slurm-ec2/resume"}, {"SuspendProgram", "/opt/slurm-ec2/suspend"},
			{"ResumeRate", "100"}, {"TreeWidth", "60000"}, {"PrivateData", "CLOUD"}, {"Flag", "true"}},
		CoolDownSeconds: 300, OrphanGraceSeconds: 300, CommandTimeoutSeconds: 60, LockDir: DefaultLockDir,
		HealthCheckGraceSeconds: 180,
		BackOffBaseSeconds:      300, BackOffMaxSeconds: 1800, HoldAfterFailures: 3,
	}
	opt := cmpopts.IgnoreFields(Config{}, "Partitions", "byName")
	if diff := cmp.Diff(want, cfg, opt, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	// on-demand without OnDemandOptions gets lowest-price; a spot group keeps what it gave.
	g, _ := cfg.NodeGroup("aws-ondemand")
	if g.OnDemandOptions == nil || g.OnDemandOptions.AllocationStrategy != types.FleetOnDemandAllocationStrategyLowestPrice {
		t.Errorf("OnDemandOptions = %+v", g.OnDemandOptions)
	}
	if diff := cmp.Diff([]Tag{{"NodeGroup", "ondemand"}}, g.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}

	dir = writeDir(t, `{"LogLevel": "warning", "LogFileName": "/var/log/x.log", "SlurmBinPath": "/slurm/bin/",
	  "SlurmConf": {"ResumeProgram": "/a/resume.py", "SuspendProgram": "/a/suspend.py"},
	  "ClusterName": "burst_1", "CoolDownSeconds": 60, "OrphanGraceSeconds": 120, "CommandTimeoutSeconds": 5,
	  "MetricsFile": "metrics.prom", "NodeGroupOptions": {"aws-spot": {"AllOrNothing": true}}}`,
		readTestdata(t, "partitions-example1.json"))
	cfg, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.LogLevel, cfg.LogFileName, cfg.SlurmBinPath, cfg.ClusterName, cfg.CoolDownSeconds, cfg.OrphanGraceSeconds, cfg.CommandTimeoutSeconds, cfg.MetricsFile}
	wantV := []any{"WARNING", "/var/log/x.log", "/slurm/bin", "burst_1", 60, 120, 5, filepath.Join(dir, "metrics.prom")}
	if diff := cmp.Diff(wantV, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	spot, _ := cfg.NodeGroup("aws-spot")
	od, _ := cfg.NodeGroup("aws-ondemand")
	if !spot.AllOrNothing || od.AllOrNothing {
		t.Errorf("AllOrNothing spot=%v ondemand=%v, want true false", spot.AllOrNothing, od.AllOrNothing)
	}
}

const goodConf = `{"SlurmConf": {"ResumeProgram": "/a/resume", "SuspendProgram": "/a/suspend"}}`

const groupFmt = `{"NodeGroupName": "g", "MaxNodes": 2, "Region": "us-east-1", "PurchasingOption": "spot",
  "LaunchTemplateSpecification": {"LaunchTemplateName": "t", "Version": "$Latest"}, "SubnetIds": ["subnet-1"] %s}`

func parts(groups ...string) string {
	return `{"Partitions": [{"PartitionName": "p", "NodeGroups": [` + strings.Join(groups, ",") + `]}]}`
}

func TestLoadProblems(t *testing.T) {
	tests := map[string]struct {
		conf, parts string
		want        []string // each must appear in some problem line
	}{
		"typo MaxNode": {goodConf, parts(strings.Replace(groupTmpl, `"MaxNodes"`, `"MaxNode"`, 1)),
			[]string{`partitions.json: Partitions[0].NodeGroups[0].MaxNode: unknown key "MaxNode": did you mean "MaxNodes"?`,
				`Partitions[0].NodeGroups[0].MaxNodes: missing`}},
		"bad names": {goodConf, `{"Partitions": [{"PartitionName": "a-b", "NodeGroups": [` + strings.Replace(groupTmpl, `"g"`, `"g_1"`, 1) + `]}]}`,
			[]string{`Partitions[0].PartitionName: "a-b" must match`, `Partitions[0].NodeGroups[0].NodeGroupName: "g_1" must match`}},
		"duplicates": {goodConf, `{"Partitions": [{"PartitionName": "p", "NodeGroups": [` + fmtG("") + `,` + fmtG("") + `]},
			{"PartitionName": "p", "NodeGroups": [` + fmtG("") + `]}]}`,
			[]string{`Partitions[0].NodeGroups[1].NodeGroupName: "g" is already the name of Partitions[0].NodeGroups[0]`,
				`Partitions[1].PartitionName: "p" is already the name of Partitions[0]`}},
		"max nodes": {goodConf, parts(strings.Replace(groupTmpl, `"MaxNodes": 2`, `"MaxNodes": 0`, 1), strings.Replace(strings.Replace(groupTmpl, `"MaxNodes": 2`, `"MaxNodes": "3"`, 1), `"g"`, `"h"`, 1)),
			[]string{`NodeGroups[0].MaxNodes: 0 is out of range`, `NodeGroups[1].MaxNodes: must be an integer, not a string`}},
		"purchasing": {goodConf, parts(strings.Replace(groupTmpl, `"spot"`, `"reserved"`, 1)),
			[]string{`PurchasingOption: "reserved" is not a purchasing option`}},
		"subnets": {goodConf, parts(strings.Replace(groupTmpl, `["subnet-1"]`, `[]`, 1)), []string{`SubnetIds: empty`}},
		"no template": {goodConf, parts(strings.Replace(groupTmpl, `"LaunchTemplateSpecification": {"LaunchTemplateName": "t", "Version": "$Latest"},`, `"LaunchTemplateSpecification": {"Version": "1"},`, 1)),
			[]string{`LaunchTemplateSpecification: give LaunchTemplateId or LaunchTemplateName`}},
		"missing template and region": {goodConf, parts(strings.Replace(strings.Replace(groupTmpl, `"LaunchTemplateSpecification": {"LaunchTemplateName": "t", "Version": "$Latest"},`, ``, 1), `"Region": "us-east-1",`, ``, 1)),
			[]string{`NodeGroups[0].LaunchTemplateSpecification: missing`, `NodeGroups[0].Region: missing`}},
		"sdk typos": {goodConf, parts(fmtG(`, "SpotOptions": {"AllocationStrategy": "cheapest", "InstancePoolsToUseCount": "2", "MaxTotalPrise": "1"},
			"LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge", "SubnetId": "subnet-9", "Placement": {"AvailabilityZon": "x"}, "Priority": 1.5}]`)),
			[]string{`SpotOptions.AllocationStrategy: "cheapest" is not a valid SpotAllocationStrategy`,
				`SpotOptions.InstancePoolsToUseCount: must be an integer, not a string`,
				`SpotOptions.MaxTotalPrise: unknown key "MaxTotalPrise": did you mean "MaxTotalPrice"?`,
				`LaunchTemplateOverrides[0].SubnetId: do not set SubnetId`,
				`LaunchTemplateOverrides[0].Placement.AvailabilityZon: unknown key "AvailabilityZon": did you mean "AvailabilityZone"?`}},
		"case of sdk key": {goodConf, parts(fmtG(`, "OnDemandOptions": {"allocationStrategy": "lowest-price"}`)),
			[]string{`OnDemandOptions.allocationStrategy: unknown key "allocationStrategy": did you mean "AllocationStrategy"?`}},
		"slurm values": {goodConf, parts(fmtG(`, "SlurmSpecifications": {"Features": "a b", "CPUs": [4], "NodeName": "x", "Gres": "gpu:1#x"}`)),
			[]string{`SlurmSpecifications.Features: value "a b" contains whitespace`, `SlurmSpecifications.CPUs: must be a string, a number or a boolean, not an array`,
				`SlurmSpecifications.NodeName: NodeName is written by slurm-ec2`, `SlurmSpecifications.Gres: value "gpu:1#x"`}},
		"tags": {goodConf, parts(fmtG(`, "Tags": [{"Key": "Name", "Value": "x"}, {"Key": "aws:x", "Value": "y"}, {"Key": "k"}, {"Kee": "k", "Value": "v"}]`)),
			[]string{`Tags[0].Key: Name is set to the node name`, `Tags[1].Key: "aws:x"`, `Tags[2].Value: missing`, `Tags[3].Kee: unknown key "Kee": did you mean "Key"?`}},
		"wrong types":    {goodConf, `{"Partitions": {"PartitionName": "p"}}`, []string{`Partitions: must be an array of partitions, not an object`}},
		"malformed json": {goodConf, "{\"Partitions\": [\n  {\"PartitionName\": \"p\",,}\n]}", []string{`partitions.json: invalid JSON at line 2, column`}},
		"truncated json": {goodConf, "{\"Partitions\": [", []string{`partitions.json: invalid JSON at line 1, column 17: unexpected end of file`}},
		"config problems": {`{"LogLevel": "TRACE", "SlurmBinPath": "bin", "CoolDownSecond": 3, "CommandTimeoutSeconds": 0, "ClusterName": "a b",
			"SlurmConf": {"SuspendProgram": "suspend", "NodeName": "x"}, "NodeGroupOptions": {"p-x": {"AllOrNothing": true}, "p-g": {"AllOrNothin": true}}}`, parts(fmtG("")),
			[]string{`config.json: LogLevel: "TRACE" is not a log level`, `config.json: SlurmBinPath: "bin" is not an absolute path`,
				`config.json: CoolDownSecond: unknown key "CoolDownSecond": did you mean "CoolDownSeconds"?`,
				`config.json: CommandTimeoutSeconds: 0 is out of range`, `config.json: ClusterName: "a b" must match`,
				`config.json: SlurmConf.ResumeProgram: missing`, `config.json: SlurmConf.SuspendProgram: "suspend" is not an absolute path`,
				`config.json: SlurmConf.NodeName: NodeName is written by slurm-ec2`,
				`config.json: NodeGroupOptions.p-x: "p-x" names no node group of partitions.json`,
				`config.json: NodeGroupOptions.p-g.AllOrNothin: unknown key "AllOrNothin": did you mean "AllOrNothing"?`}},
		"duplicate key":               {goodConf, parts(strings.Replace(groupTmpl, `"MaxNodes": 2`, `"MaxNodes": 2, "MaxNodes": 3`, 1)), []string{`NodeGroups[0].MaxNodes: key given twice`}},
		"both files missing problems": {`{"SlurmConf": 1}`, `[]`, []string{`config.json: SlurmConf: must be an object of Slurm settings, not a number`, `partitions.json: must be an object, not an array`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeDir(t, tc.conf, tc.parts)
			cfg, err := Load(dir)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load = %v, %v; want *Error", cfg, err)
			}
			if cerr.ExitCode() != 2 {
				t.Errorf("ExitCode = %d", cerr.ExitCode())
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("problems do not mention %q:\n%s", w, msg)
				}
			}
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, dir+"/config.json: ") && !strings.HasPrefix(line, dir+"/partitions.json: ") {
					t.Errorf("problem line does not start with the file name: %q", line)
				}
			}
		})
	}
}

func fmtG(extra string) string { return strings.Replace(groupFmt, "%s", extra, 1) }

var groupTmpl = fmtG("")

func TestMissingFiles(t *testing.T) {
	_, err := Load(t.TempDir())
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 {
		t.Fatalf("Load(empty dir) = %v; want 2 problems", err)
	}
	if !strings.Contains(err.Error(), "file not found") {
		t.Errorf("error %q does not say file not found", err)
	}
}

func TestLookupNode(t *testing.T) {
	dir := writeDir(t, goodConf, readTestdata(t, "partitions-example1.json"))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		name  string
		group string
		index int
		ok    bool
	}{
		"spot":          {"aws-spot-7", "aws-spot", 7, true},
		"first":         {"aws-ondemand-0", "aws-ondemand", 0, true},
		"last":          {"aws-ondemand-9", "aws-ondemand", 9, true},
		"past max":      {"aws-ondemand-10", "", 0, false},
		"leading zero":  {"aws-spot-07", "", 0, false},
		"not ours":      {"login-1", "", 0, false},
		"no index":      {"aws-spot", "", 0, false},
		"empty index":   {"aws-spot-", "", 0, false},
		"sign":          {"aws-spot-+1", "", 0, false},
		"huge":          {"aws-spot-99999999999999", "", 0, false},
		"unknown group": {"aws-gpu-1", "", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g, i, ok := cfg.LookupNode(tc.name)
			if ok != tc.ok || i != tc.index || (ok && g.Name() != tc.group) {
				t.Errorf("LookupNode(%q) = %v, %d, %v; want %s, %d, %v", tc.name, g, i, ok, tc.group, tc.index, tc.ok)
			}
			if ok && g.NodeName(i) != tc.name {
				t.Errorf("NodeName(%d) = %q, want %q", i, g.NodeName(i), tc.name)
			}
		})
	}
	if got := (&NodeGroup{Partition: "p", NodeGroupName: "g", MaxNodes: 1}).Hostlist(); got != "p-g-0" {
		t.Errorf("Hostlist of MaxNodes 1 = %q", got)
	}
}

func TestResolveClusterName(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "slurm.conf")
	if err := os.WriteFile(conf, []byte("# ClusterName=commented\nclustername=MyCluster # comment\nSlurmctldHost=h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noName := filepath.Join(dir, "none.conf")
	if err := os.WriteFile(noName, []byte("SlurmctldHost=h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(p string) func(string) string {
		return func(k string) string {
			if k == "SLURM_CONF" {
				return p
			}
			return ""
		}
	}
	tests := map[string]struct {
		cfg     Config
		getenv  func(string) string
		want    string
		wantErr string
	}{
		"from config":     {Config{ClusterName: "prod"}, env(conf), "prod", ""},
		"from slurm.conf": {Config{}, env(conf), "mycluster", ""},
		"no name":         {Config{ConfigFile: "/x/config.json"}, env(noName), "", `set "ClusterName" in config.json`},
		"no file":         {Config{}, env(filepath.Join(dir, "missing")), "", `set "ClusterName" in config.json`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.cfg.ResolveClusterName(tc.getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveClusterName = %q, %v; want error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ResolveClusterName = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"MaxNodes", "NodeGroupName", "Region", "SubnetIds"}
	for in, want := range map[string]string{"MaxNode": "MaxNodes", "maxnodes": "MaxNodes", "Regoin": "Region", "SubnetID": "SubnetIds", "Zzzzzzzz": ""} {
		got, ok := suggest(in, known)
		if got != want || ok != (want != "") {
			t.Errorf("suggest(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, n := range []string{"partitions-example1.json", "partitions-example2.json", "partitions-example3.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`{"Partitions": [{"PartitionName": "p", "NodeGroups": [{"MaxNodes": 1e400}]}]}`)
	f.Fuzz(func(t *testing.T, partitions string) {
		cfg, err := load("/c/config.json", []byte(goodConf), nil, "/c/partitions.json", []byte(partitions), nil)
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("error %v is not a *Error with problems", err)
			}
			return
		}
		for _, g := range cfg.NodeGroups() {
			if g.MaxNodes < 1 || !nameRE.MatchString(g.NodeGroupName) || len(g.SubnetIds) == 0 || g.Region == "" {
				t.Fatalf("accepted an invalid group %+v", g)
			}
			got, i, ok := cfg.LookupNode(g.NodeName(g.MaxNodes - 1))
			if !ok || got != g || i != g.MaxNodes-1 {
				t.Fatalf("LookupNode(%q) = %v, %d, %v", g.NodeName(g.MaxNodes-1), got, i, ok)
			}
		}
	})
}

// TestHealthCheckGraceSeconds: 0 is allowed (act at once), out-of-range and non-integer values are
// errors naming the key.
func TestHealthCheckGraceSeconds(t *testing.T) {
	base := `"SlurmConf": {"ResumeProgram": "/a/resume", "SuspendProgram": "/a/suspend"}`
	for name, tc := range map[string]struct {
		value string
		want  int
		err   string
	}{
		"zero":     {"0", 0, ""},
		"ten min":  {"600", 600, ""},
		"negative": {"-1", 0, "config.json: HealthCheckGraceSeconds: -1 is out of range"},
		"string":   {`"180"`, 0, "config.json: HealthCheckGraceSeconds: must be"},
		"fraction": {"1.5", 0, "config.json: HealthCheckGraceSeconds:"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeDir(t, `{`+base+`, "HealthCheckGraceSeconds": `+tc.value+`}`, readTestdata(t, "partitions-example1.json"))
			cfg, err := Load(dir)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case cfg.HealthCheckGraceSeconds != tc.want:
				t.Fatalf("HealthCheckGraceSeconds = %d, want %d", cfg.HealthCheckGraceSeconds, tc.want)
			}
		})
	}
}
