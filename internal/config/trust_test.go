package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is a uid that is neither root nor the user running the tests.
const nobody = 65534

// trustedDir writes both example files into a fresh directory under t.TempDir (owned by the
// test's user, 0700, below the sticky /tmp): the starting point every attack below changes.
func trustedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, src := range map[string]string{ConfigFileName: "config.json", PartitionsFileName: "partitions-example1.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadRefusesFilesOthersCouldWrite reproduces the config-trust attacks of issue 15: each
// was accepted by Load before (only the other-write bit was checked), and each must now be a
// configuration error naming the path and the command that fixes it.
func TestLoadRefusesFilesOthersCouldWrite(t *testing.T) {
	asRoot := os.Geteuid() == 0
	tests := map[string]struct {
		root    bool // needs root (chown)
		attack  func(t *testing.T, dir string) (path string)
		wantFix string // with the path appended
	}{
		"partitions.json owned by nobody": {root: true, wantFix: "chown root ", attack: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, PartitionsFileName)
			chown(t, p, nobody)
			return p
		}},
		"group-writable config.json": {wantFix: "chmod go-w ", attack: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ConfigFileName)
			chmod(t, p, 0o664)
			return p
		}},
		"world-writable config.json": {wantFix: "chmod go-w ", attack: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ConfigFileName)
			chmod(t, p, 0o666)
			return p
		}},
		"config directory owned by nobody": {root: true, wantFix: "chown root ", attack: func(t *testing.T, dir string) string {
			chown(t, dir, nobody)
			return dir
		}},
		"group-writable config directory": {wantFix: "chmod go-w ", attack: func(t *testing.T, dir string) string {
			chmod(t, dir, 0o775)
			return dir
		}},
		"directory above the config directory world-writable": {wantFix: "chmod go-w ", attack: func(t *testing.T, dir string) string {
			up := filepath.Dir(dir)
			chmod(t, up, 0o777)
			return up
		}},
		"config.json a symlink owned by nobody in a sticky directory": {root: true, wantFix: "rm ", attack: func(t *testing.T, dir string) string {
			sticky := filepath.Join(filepath.Dir(dir), "sticky")
			if err := os.Mkdir(sticky, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, sticky, os.ModeSticky|0o777)
			link := filepath.Join(sticky, "config.json")
			if err := os.Symlink(filepath.Join(dir, ConfigFileName), link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return link
		}},
		"world-writable SlurmBinPath": {wantFix: "chmod go-w ", attack: func(t *testing.T, dir string) string {
			bin := filepath.Join(filepath.Dir(dir), "slurmbin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, bin, 0o777)
			setKey(t, dir, "SlurmBinPath", bin)
			return bin
		}},
		"scontrol in SlurmBinPath owned by nobody": {root: true, wantFix: "chown root ", attack: func(t *testing.T, dir string) string {
			bin := filepath.Join(filepath.Dir(dir), "slurmbin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(bin, "scontrol")
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			chown(t, p, nobody)
			setKey(t, dir, "SlurmBinPath", bin)
			return p
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.root && !asRoot {
				t.Skip("needs root to give a file to another user")
			}
			dir := trustedDir(t)
			if _, err := Load(dir); err != nil {
				t.Fatalf("before the attack the directory is refused: %v", err)
			}
			path := tc.attack(t, dir)
			cfgFile, partsFile := filepath.Join(dir, ConfigFileName), filepath.Join(dir, PartitionsFileName)
			if strings.HasSuffix(name, "in a sticky directory") {
				cfgFile = path
			}
			_, err := LoadFiles(cfgFile, partsFile)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("attack accepted: Load = %v", err)
			}
			if ce.ExitCode() != 2 {
				t.Errorf("exit code %d, want 2", ce.ExitCode())
			}
			if msg := err.Error(); !strings.Contains(msg, "refused") || !strings.Contains(msg, tc.wantFix+path) {
				t.Errorf("error does not name %s and the fix %q:\n%s", path, tc.wantFix+path, msg)
			}
		})
	}
}

// TestLoadAcceptsTrustedLayouts: what a site has (root-owned 0644 in a 0755 tree), a sticky
// world-writable directory on the way, and symlinks of ours.
func TestLoadAcceptsTrustedLayouts(t *testing.T) {
	t.Run("temp dir below sticky /tmp", func(t *testing.T) {
		if _, err := Load(trustedDir(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("config directory reached through our symlink", func(t *testing.T) {
		dir := trustedDir(t)
		link := filepath.Join(filepath.Dir(dir), "link")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(link); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("0600 files", func(t *testing.T) {
		dir := trustedDir(t)
		chmod(t, filepath.Join(dir, ConfigFileName), 0o600)
		if _, err := Load(dir); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRuntimeDirs(t *testing.T) {
	dir := trustedDir(t)
	locks := filepath.Join(filepath.Dir(dir), "locks")
	logs := filepath.Join(filepath.Dir(dir), "log")
	if err := os.Mkdir(logs, 0o750); err != nil {
		t.Fatal(err)
	}
	setKey(t, dir, "LockDir", locks)
	setKey(t, dir, "LogFileName", filepath.Join(logs, "slurm-ec2.log"))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	report, problems := cfg.RuntimeDirs()
	if len(problems) != 0 || !strings.Contains(strings.Join(report, "\n"), "lock directory "+locks+": created (0700) on first use") {
		t.Fatalf("missing lock dir below a trusted one: report %q, problems %v", report, problems)
	}
	chmod(t, logs, 0o770)
	if err := os.Mkdir(locks, 0o777); err != nil {
		t.Fatal(err)
	}
	chmod(t, locks, 0o777)
	_, problems = cfg.RuntimeDirs()
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"LogFileName: refused: " + logs + " is writable by its group", "chmod go-w " + logs,
		"LockDir: refused: " + locks + " is writable by its group and every user", "chmod go-w " + locks} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}

func TestLockDirMustBeAbsolute(t *testing.T) {
	dir := trustedDir(t)
	setKey(t, dir, "LockDir", "locks")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "LockDir: \"locks\" is not an absolute path") {
		t.Fatalf("relative LockDir: %v", err)
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string, uid int) {
	t.Helper()
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// setKey sets "key": value in config.json of dir.
func setKey(t *testing.T, dir, key, value string) {
	t.Helper()
	p := filepath.Join(dir, ConfigFileName)
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
