package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestReleaseUsage(t *testing.T) {
	dir := specConfigDir(t, "partitions-example1.json")
	tests := map[string]struct {
		args   []string
		stderr string
	}{
		"no group":      {nil, "usage: slurm-ec2 release"},
		"unknown group": {[]string{"aws-nope"}, `"aws-nope" is not a node group: use one of aws-ondemand, aws-spot`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env, _, errb := testEnv(map[string]string{"SLURM_CONF": filepath.Join(dir, "no-slurm.conf")})
			argv := append([]string{"slurm-ec2", "release", "--config-dir", dir}, tc.args...)
			if code := Run(context.Background(), env, argv); code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, errb)
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errb, tc.stderr)
			}
		})
	}
}
