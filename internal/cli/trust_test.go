package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// setConfigKey sets key in dir/config.json.
func setConfigKey(t *testing.T, dir, key string, value any) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = value
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestValidateTrust: validate refuses (exit 2) a configuration another user could change and
// prints the command that fixes it; it reports where logs and locks go.
func TestValidateTrust(t *testing.T) {
	dir := specConfigDir(t, "partitions-example1.json")
	locks := filepath.Join(t.TempDir(), "locks")
	setConfigKey(t, dir, "LockDir", locks)
	setConfigKey(t, dir, "LogFileName", filepath.Join(t.TempDir(), "slurm-ec2.log"))
	validate := func() (int, string, string) {
		env, out, errb := testEnv(map[string]string{"SLURM_CONF": filepath.Join(dir, "no-slurm.conf")})
		code := Run(context.Background(), env, []string{"/nowhere/slurm-ec2", "validate", "--config-dir", dir})
		return code, out.String(), errb.String()
	}
	code, out, errb := validate()
	if code != 0 || !strings.Contains(out, "lock directory "+locks+": created (0700) on first use") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errb)
	}
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	code, _, errb = validate()
	if code != 2 || !strings.Contains(errb, "run 'chmod go-w "+dir+"'") {
		t.Fatalf("group-writable config directory: exit %d\n%s", code, errb)
	}
}

// TestLocksDoNotNeedTheLogDirectory: issue 14 — locks sat beside LogFileName, so a missing log
// directory stopped resume, suspend and reconcile although validate passed. The session now
// takes LockDir from config.json (burst's TestLockRefusesPlantedFiles shows a missing LockDir is
// created) and logs to stderr only when the log directory is missing.
func TestLocksDoNotNeedTheLogDirectory(t *testing.T) {
	dir := specConfigDir(t, "partitions-example1.json")
	locks := filepath.Join(t.TempDir(), "locks")
	setConfigKey(t, dir, "LockDir", locks)
	setConfigKey(t, dir, "LogFileName", "/nonexistent-slurm-ec2-logs/slurm-ec2.log")
	setConfigKey(t, dir, "ClusterName", "hpc")
	env, _, errb := testEnv(nil)
	s, err := openSession(env, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.deps.LockDir != locks {
		t.Errorf("LockDir = %q, want %q (not the log directory)", s.deps.LockDir, locks)
	}
	if !strings.Contains(errb.String(), "logging to stderr only") {
		t.Errorf("no stderr note about the missing log directory:\n%s", errb)
	}
}
