package logging

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLevel(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		"critical": {"CRITICAL", LevelCritical, false},
		"error":    {"ERROR", slog.LevelError, false},
		"warning":  {"WARNING", slog.LevelWarn, false},
		"lower":    {"info", slog.LevelInfo, false},
		"debug":    {"DEBUG", slog.LevelDebug, false},
		"default":  {"", slog.LevelDebug, false},
		"unknown":  {"TRACE", 0, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Level(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("Level(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
	if LevelCritical <= slog.LevelError {
		t.Error("CRITICAL must be above Error")
	}
}

func TestNewWritesFileAndStderr(t *testing.T) {
	file := filepath.Join(t.TempDir(), "aws_plugin.log")
	var stderr bytes.Buffer
	log, c, err := New(LogSettings{Level: "WARNING", File: file}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "node", "aws-spot-1")
	log.Log(t.Context(), LevelCritical, "fatal thing")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"file": string(data), "stderr": stderr.String()} {
		if strings.Contains(out, "hidden") {
			t.Errorf("%s has a record below the level:\n%s", name, out)
		}
		if !strings.Contains(out, "level=WARNING msg=shown node=aws-spot-1") || !strings.Contains(out, "level=CRITICAL") {
			t.Errorf("%s lacks records:\n%s", name, out)
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
}

func TestNewAppendsAndRotates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.log")
	if err := os.WriteFile(file, []byte("old line\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	log, c, err := New(LogSettings{Level: "INFO", File: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("new line")
	c.Close()
	data, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(data), "old line\n") || !strings.Contains(string(data), "new line") {
		t.Errorf("not appended: %q", data)
	}

	if err := os.Truncate(file, MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	log, c, err = New(LogSettings{Level: "INFO", File: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("after rotation")
	c.Close()
	if st, err := os.Stat(file + ".1"); err != nil || st.Size() != MaxFileSize+1 {
		t.Errorf("rotated file: %v, %v", st, err)
	}
	data, _ = os.ReadFile(file)
	if !strings.Contains(string(data), "after rotation") || len(data) > 1000 {
		t.Errorf("new file after rotation: %d bytes", len(data))
	}
}

func TestNewFallsBackToStderr(t *testing.T) {
	var stderr bytes.Buffer
	log, c, err := New(LogSettings{Level: "DEBUG", File: filepath.Join(t.TempDir(), "missing-dir", "x.log")}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log.Debug("still logged")
	out := stderr.String()
	if strings.Count(out, "cannot open the log file") != 1 || !strings.Contains(out, "still logged") {
		t.Errorf("stderr:\n%s", out)
	}
}

func TestNewBadLevel(t *testing.T) {
	if _, _, err := New(LogSettings{Level: "LOUD"}, nil); err == nil {
		t.Error("New accepted level LOUD")
	}
}

func TestExistingWorldReadableLogBecomesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aws_plugin.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	_, closer, err := New(LogSettings{Level: "INFO", File: path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		t.Fatalf("log file mode %v, want no access for others", st.Mode().Perm())
	}
}
