package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	typo := func(t *testing.T) string {
		dir := specConfigDir(t, "partitions-example1.json")
		p := filepath.Join(dir, "partitions.json")
		b, _ := os.ReadFile(p)
		b = []byte(strings.Replace(string(b), `"MaxNodes"`, `"MaxNode"`, 1))
		b = []byte(strings.Replace(string(b), `"PurchasingOption": "spot"`, `"PurchasingOption": "spott"`, 1))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := map[string]struct {
		dir        func(t *testing.T) string
		extra      []string
		wantCode   int
		wantOut    []string
		wantErr    []string
		wantErrNot []string
	}{
		"example1": {dir: func(t *testing.T) string { return specConfigDir(t, "partitions-example1.json") }, wantCode: 0,
			wantOut: []string{"partition aws:", "aws-ondemand-[0-9]", "on-demand", "aws-spot-[0-99]", "1 partition, 2 node groups, 110 nodes, region: us-east-1"}},
		"example2": {dir: func(t *testing.T) string { return specConfigDir(t, "partitions-example2.json") }, wantCode: 0,
			wantOut: []string{"1 partition, 3 node groups, 300 nodes"}},
		"example3": {dir: func(t *testing.T) string { return specConfigDir(t, "partitions-example3.json") }, wantCode: 0,
			wantOut: []string{"2 partitions, 2 node groups, 200 nodes", "awsspot-node-[0-99]"}},
		"typo": {dir: typo, wantCode: 2, wantErr: []string{
			`partitions.json: Partitions[0].NodeGroups[0].MaxNode: unknown key "MaxNode": did you mean "MaxNodes"?`,
			`partitions.json: Partitions[0].NodeGroups[0].MaxNodes: missing`,
			`partitions.json: Partitions[0].NodeGroups[1].PurchasingOption: "spott" is not a purchasing option`,
			"3 problems found"}},
		"missing dir": {dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, wantCode: 2,
			wantErr: []string{"config.json: file not found", "partitions.json: file not found"}},
		"argument": {dir: func(t *testing.T) string { return specConfigDir(t, "partitions-example1.json") }, extra: []string{"x"}, wantCode: 2,
			wantErr: []string{"validate takes no arguments"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := tc.dir(t)
			env, out, errb := testEnv(map[string]string{"SLURM_CONF": filepath.Join(dir, "no-slurm.conf")})
			argv := append([]string{"/nowhere/slurm-ec2", "validate", "--config-dir", dir}, tc.extra...)
			code := Run(context.Background(), env, argv)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, errb)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb)
				}
			}
			if tc.wantCode == 2 && tc.extra == nil {
				for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
					if !strings.Contains(line, ".json: ") && !strings.Contains(line, "problem") {
						t.Errorf("error line lacks a file name: %q", line)
					}
				}
			}
		})
	}
}

func TestValidateClusterName(t *testing.T) {
	dir := specConfigDir(t, "partitions-example1.json")
	conf := filepath.Join(dir, "slurm.conf")
	if err := os.WriteFile(conf, []byte("ClusterName=Burst\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env, out, errb := testEnv(map[string]string{"SLURM_CONF": conf})
	if code := Run(context.Background(), env, []string{"slurm-ec2", "validate", "--config-dir", dir}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if !strings.Contains(out.String(), "cluster: burst") {
		t.Errorf("stdout lacks the cluster name:\n%s", out)
	}
}
