package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeIAMConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `{"LogLevel":"INFO","LogFileName":"/var/log/slurm/aws.log","SlurmBinPath":"/usr/bin","ClusterName":"hpc1",
 "SlurmConf":{"PrivateData":"CLOUD","ResumeProgram":"/usr/lib/slurm-ec2/resume","SuspendProgram":"/usr/lib/slurm-ec2/suspend",
  "ResumeRate":100,"SuspendRate":100,"ResumeTimeout":300,"SuspendTime":350,"TreeWidth":60000}}`
	parts := `{"Partitions":[{"PartitionName":"aws","NodeGroups":[
 {"NodeGroupName":"node","MaxNodes":10,"Region":"us-west-2","SlurmSpecifications":{"CPUs":"2"},"PurchasingOption":"on-demand",
  "LaunchTemplateSpecification":{"LaunchTemplateId":"lt-0abc","Version":"$Latest"},
  "LaunchTemplateOverrides":[{"InstanceType":"c5.large"}],"SubnetIds":["subnet-aaaa1111","subnet-bbbb2222"]}]}]}`
	for name, body := range map[string]string{"config.json": cfg, "partitions.json": parts} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestIAMPolicyCommand(t *testing.T) {
	dir := writeIAMConfig(t)
	tests := map[string]struct {
		args     []string
		env      map[string]string
		wantCode int
		keys     []string // top-level JSON keys expected
		contains []string
		stderr   string
	}{
		"both by default": {
			args: []string{"--config-dir", dir, "--compute-role-arn", "arn:aws:iam::111122223333:role/c"},
			keys: []string{"HeadNode", "ComputeNode"},
			contains: []string{"arn:aws:iam::111122223333:role/c", "launch-template/lt-0abc", "subnet/subnet-aaaa1111",
				"subnet/subnet-bbbb2222", `"hpc1"`, "us-west-2"},
		},
		"head only, dir from env, placeholder warned": {
			args: []string{"--node", "head"}, env: map[string]string{"SLURM_EC2_CONFIG_DIR": dir},
			keys: []string{"Version", "Statement"}, contains: []string{"REPLACE-WITH-COMPUTE-NODE-ROLE"},
			stderr: "no --compute-role-arn",
		},
		"compute only": {
			args: []string{"--config-dir", dir, "--node", "compute"}, keys: []string{"Version", "Statement"},
			contains: []string{"ec2:DescribeTags"},
		},
		"cluster override": {
			args: []string{"--config-dir", dir, "--cluster-name", "other"}, keys: []string{"HeadNode", "ComputeNode"},
			contains: []string{`"other"`},
		},
		"bad node":       {args: []string{"--config-dir", dir, "--node", "login"}, wantCode: ExitUsage, stderr: "--node must be"},
		"missing config": {args: []string{"--config-dir", filepath.Join(dir, "nope")}, wantCode: ExitUsage, stderr: "loading the configuration"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return tc.env[k] }}
			code := Run(context.Background(), env, append([]string{"slurm-ec2", "iam-policy"}, tc.args...))
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, errb.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.stderr)
			}
			if tc.wantCode != ExitOK {
				return
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatalf("stdout is not a JSON object: %v\n%s", err, out.String())
			}
			if len(m) != len(tc.keys) {
				t.Errorf("keys %v, want %v", m, tc.keys)
			}
			for _, k := range tc.keys {
				if _, ok := m[k]; !ok {
					t.Errorf("missing key %q", k)
				}
			}
			for _, s := range tc.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %s", s)
				}
			}
		})
	}
}
