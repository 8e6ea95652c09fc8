package slurm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/trust"
)

// TestRefusesPlantedScontrol reproduces issue 15's attack: a user who can write SlurmBinPath
// plants scontrol there, and suspend ran it as root. The planted program would create a marker
// file; the client must refuse to run it, name the directory and say how to fix it.
func TestRefusesPlantedScontrol(t *testing.T) {
	tests := map[string]struct {
		root  bool
		plant func(t *testing.T, bin, prog string) (faulty, fix string)
	}{
		"world-writable SlurmBinPath": {plant: func(t *testing.T, bin, prog string) (string, string) {
			mustChmod(t, bin, 0o777)
			return bin, "chmod go-w " + bin
		}},
		"group-writable scontrol": {plant: func(t *testing.T, bin, prog string) (string, string) {
			mustChmod(t, prog, 0o775)
			return prog, "chmod go-w " + prog
		}},
		"scontrol owned by nobody": {root: true, plant: func(t *testing.T, bin, prog string) (string, string) {
			if err := os.Chown(prog, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return prog, "chown root " + prog
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a file to another user")
			}
			bin := filepath.Join(t.TempDir(), "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(t.TempDir(), "ran")
			prog := filepath.Join(bin, "scontrol")
			if err := os.WriteFile(prog, []byte("#!/bin/sh\n: > "+marker+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			c := &Client{BinDir: bin}
			if _, err := c.Ping(context.Background()); err != nil && !strings.Contains(err.Error(), "scontrol") {
				t.Fatalf("trusted scontrol: %v", err)
			}
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("the trusted scontrol did not run: %v", err)
			}
			if err := os.Remove(marker); err != nil {
				t.Fatal(err)
			}
			faulty, fix := tc.plant(t, bin, prog)
			_, err := c.Ping(context.Background())
			var ut *trust.Untrusted
			if !errors.As(err, &ut) || ut.Path != faulty || ut.ExitCode() != 2 || !strings.Contains(err.Error(), fix) {
				t.Errorf("Ping = %v, want a refusal naming %s and %q (exit 2)", err, faulty, fix)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the planted scontrol ran")
			}
		})
	}
}

func mustChmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}
