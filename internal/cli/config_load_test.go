package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// specConfigDir writes the spec's example config.json and partitions.json (example n) to a
// fresh directory and returns it.
func specConfigDir(t *testing.T, partitions string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{"config.json": "config.json", "partitions.json": partitions} {
		b, err := os.ReadFile(filepath.Join("..", "config", "testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testEnv(vars map[string]string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdout: &out, Stderr: &errb, Stdin: bytes.NewReader(nil),
		Getenv: func(k string) string { return vars[k] }}, &out, &errb
}

func TestConfigDirLookup(t *testing.T) {
	withConf := specConfigDir(t, "partitions-example1.json")
	empty := t.TempDir()
	tests := map[string]struct {
		flag, envDir, program string
		want                  string
	}{
		"flag wins":                 {flag: "/x", envDir: "/y", program: withConf + "/slurm-ec2", want: "/x"},
		"env next":                  {envDir: "/y", program: withConf + "/slurm-ec2", want: "/y"},
		"program dir with config":   {program: withConf + "/resume.py", want: withConf},
		"program dir without":       {program: empty + "/slurm-ec2", want: DefaultConfigDir},
		"bare name uses executable": {program: "slurm-ec2", want: DefaultConfigDir}, // the test binary's dir has no config.json
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env, _, _ := testEnv(map[string]string{configDirEnv: tc.envDir})
			env.Program = tc.program
			if got := configDirFor(env, tc.flag); got != tc.want {
				t.Errorf("configDirFor = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfigLoadErrorExitCode(t *testing.T) {
	env, _, _ := testEnv(nil)
	_, err := loadConfig(env, t.TempDir())
	ec, ok := err.(ExitCoder)
	if err == nil || !ok {
		// the *config.Error is wrapped; errors.As must still find the exit code
		if exitCode(&bytes.Buffer{}, "x", err) != ExitUsage {
			t.Fatalf("loadConfig(empty dir) = %v; want an error with exit code 2", err)
		}
		return
	}
	if ec.ExitCode() != ExitUsage {
		t.Errorf("ExitCode = %d", ec.ExitCode())
	}
}

func TestConfigThroughProgramDir(t *testing.T) {
	dir := specConfigDir(t, "partitions-example1.json")
	env, out, errb := testEnv(nil)
	// A drop-in user runs the programs from the directory that holds the JSON files.
	if code := Run(context.Background(), env, []string{filepath.Join(dir, "slurm-ec2"), "validate"}); code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errb)
	}
	if !bytes.Contains(out.Bytes(), []byte(filepath.Join(dir, "partitions.json"))) {
		t.Errorf("validate did not read the program's directory:\n%s", out)
	}
}
