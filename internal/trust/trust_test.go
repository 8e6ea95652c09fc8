package trust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckerFileAndDir(t *testing.T) {
	self := Self()
	tests := map[string]struct {
		root    bool
		setup   func(t *testing.T, base string) (path string)
		dir     bool
		wantErr string // "" accepts
	}{
		"0644 file in 0755 dirs": {setup: func(t *testing.T, base string) string {
			return file(t, base, "a/b/f", 0o644)
		}},
		"0600 file": {setup: func(t *testing.T, base string) string { return file(t, base, "f", 0o600) }},
		"group-writable file": {wantErr: "writable by its group, so", setup: func(t *testing.T, base string) string {
			return file(t, base, "f", 0o664)
		}},
		"world-writable file": {wantErr: "writable by every user", setup: func(t *testing.T, base string) string {
			return file(t, base, "f", 0o646)
		}},
		"world-writable directory above": {wantErr: "(above ", setup: func(t *testing.T, base string) string {
			p := file(t, base, "a/f", 0o644)
			chmod(t, filepath.Join(base, "a"), 0o777)
			return p
		}},
		"sticky world-writable directory above": {setup: func(t *testing.T, base string) string {
			p := file(t, base, "a/b/f", 0o644)
			chmod(t, filepath.Join(base, "a"), os.ModeSticky|0o777)
			return p
		}},
		"sticky world-writable directory itself": {dir: true, setup: func(t *testing.T, base string) string {
			d := filepath.Join(base, "s")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, d, os.ModeSticky|0o777)
			return d
		}},
		"file owned by nobody": {root: true, wantErr: "owned by", setup: func(t *testing.T, base string) string {
			p := file(t, base, "f", 0o644)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		"our symlink to a trusted file": {setup: func(t *testing.T, base string) string {
			p := file(t, base, "real/f", 0o644)
			l := filepath.Join(base, "l")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			return l
		}},
		"our symlink to an untrusted directory": {wantErr: "writable by", setup: func(t *testing.T, base string) string {
			p := file(t, base, "real/f", 0o644)
			chmod(t, filepath.Dir(p), 0o777)
			l := filepath.Join(base, "l")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			return l
		}},
		"not a regular file": {wantErr: "not a regular file", setup: func(t *testing.T, base string) string { return base }},
		"not a directory":    {dir: true, wantErr: "not a directory", setup: func(t *testing.T, base string) string { return file(t, base, "f", 0o644) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			p := tc.setup(t, t.TempDir())
			check := self.File
			if tc.dir {
				check = self.Dir
			}
			err := check(p)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.log")
	f, err := Self().OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	chmod(t, p, 0o666)
	if f, err = Self().OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("our 0666 file was not made 0640: %v", fi.Mode())
	}
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skip(err)
	}
	_, err = Self().OpenFile(fifo, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	var ut *Untrusted
	if !errors.As(err, &ut) && !errors.Is(err, fs.ErrNotExist) {
		// opening a FIFO with no reader non-blocking for writing fails with ENXIO: also a refusal
		if err == nil {
			t.Fatal("a FIFO was accepted as a log file")
		}
	}
}

func TestEnsureDir(t *testing.T) {
	base := t.TempDir()
	d := filepath.Join(base, "locks")
	if err := Self().EnsureDir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%v %v", fi, err)
	}
	chmod(t, base, 0o777)
	if err := Self().EnsureDir(filepath.Join(base, "other"), 0o700); err == nil || !strings.Contains(err.Error(), "chmod go-w "+base) {
		t.Fatalf("created below a world-writable directory: %v", err)
	}
}

func file(t *testing.T, base, rel string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, mode); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, mode)
	return p
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
