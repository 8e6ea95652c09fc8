package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogRefusesPlantedFiles reproduces issue 15's attack: a user who can write the log
// directory puts a symlink (or a hard link) where the log file goes, and root appended to, or
// chmod'ed, the file it leads to. The target must stay untouched, the program must log to
// stderr only and say why.
func TestLogRefusesPlantedFiles(t *testing.T) {
	tests := map[string]struct {
		root  bool
		plant func(t *testing.T, dir, logFile, target string)
	}{
		"symlink to another file": {plant: func(t *testing.T, dir, logFile, target string) {
			if err := os.Symlink(target, logFile); err != nil {
				t.Fatal(err)
			}
		}},
		"hard link to another file": {plant: func(t *testing.T, dir, logFile, target string) {
			if err := os.Link(target, logFile); err != nil {
				t.Fatal(err)
			}
		}},
		"log file owned by nobody in a sticky world-writable directory": {root: true, plant: func(t *testing.T, dir, logFile, target string) {
			if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(logFile, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(logFile, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}},
		"group-writable log directory": {plant: func(t *testing.T, dir, logFile, target string) {
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			dir := filepath.Join(t.TempDir(), "log")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "shadow")
			if err := os.WriteFile(target, []byte("secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			logFile := filepath.Join(dir, "slurm-ec2.log")
			tc.plant(t, dir, logFile, target)
			var stderr bytes.Buffer
			log, c, err := New(LogSettings{Level: "INFO", File: logFile}, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("launched", "instance", "i-0123")
			_ = c.Close()
			b, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(target)
			if string(b) != "secret\n" || fi.Mode().Perm() != 0o600 {
				t.Errorf("the planted link's target was changed: %q mode %v", b, fi.Mode())
			}
			if !strings.Contains(stderr.String(), "logging to stderr only") {
				t.Errorf("stderr does not say the log file was refused:\n%s", stderr.String())
			}
		})
	}
}
