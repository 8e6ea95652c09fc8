package burst

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockRefusesPlantedFiles reproduces issue 15's attack on lock files: a symlink planted
// where a lock file goes made root create or open the file it leads to. Locks also used to sit
// beside LogFileName, so a missing log directory stopped every resume: LockDir is now made if
// missing (0700) and checked like every other path.
func TestLockRefusesPlantedFiles(t *testing.T) {
	lockName := func(dir string) string { return filepath.Join(dir, ".slurm-ec2-hpc-aws-spot.lock") }
	tests := map[string]struct {
		root    bool
		prepare func(t *testing.T, dir, target string)
		wantErr string // "" means the lock is taken
	}{
		"missing directory is created": {prepare: func(t *testing.T, dir, target string) {}},
		"symlink to another file": {wantErr: "is a symlink", prepare: func(t *testing.T, dir, target string) {
			mkdir(t, dir, 0o700)
			if err := os.Symlink(target, lockName(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		"dangling symlink to a file it would create": {wantErr: "is a symlink", prepare: func(t *testing.T, dir, target string) {
			mkdir(t, dir, 0o700)
			if err := os.Symlink(target+".new", lockName(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		"world-writable lock directory": {wantErr: "chmod go-w", prepare: func(t *testing.T, dir, target string) {
			mkdir(t, dir, 0o777)
		}},
		"lock directory owned by nobody": {root: true, wantErr: "chown root", prepare: func(t *testing.T, dir, target string) {
			mkdir(t, dir, 0o755)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}},
		"lock directory is a symlink owned by nobody": {root: true, wantErr: "rm ", prepare: func(t *testing.T, dir, target string) {
			real := dir + ".real"
			mkdir(t, real, 0o700)
			if err := os.Symlink(real, dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			base := t.TempDir()
			dir := filepath.Join(base, "locks")
			target := filepath.Join(base, "victim")
			if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, dir, target)
			d := &Deps{Cluster: "hpc", LockDir: dir}
			unlock, err := d.lockGroups(context.Background(), []string{"aws-spot"})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				unlock()
				fi, err := os.Stat(dir)
				if err != nil || fi.Mode().Perm() != 0o700 {
					t.Fatalf("lock directory: %v %v, want 0700", fi, err)
				}
				return
			}
			var ec interface{ ExitCode() int }
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ec) || ec.ExitCode() != 2 {
				t.Fatalf("lockGroups = %v, want a refusal containing %q with exit 2", err, tc.wantErr)
			}
			if b, _ := os.ReadFile(target); string(b) != "keep\n" {
				t.Errorf("victim changed: %q", b)
			}
			if _, err := os.Lstat(target + ".new"); err == nil {
				t.Error("a file was created through the dangling symlink")
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
