package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func buildTestDeb(t *testing.T, version string) (deb string, bin []byte) {
	t.Helper()
	dir := t.TempDir()
	bin = []byte("#!/bin/sh\necho fake slurm-ec2 binary\n")
	binPath := filepath.Join(dir, "slurm-ec2")
	if err := os.WriteFile(binPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	deb = filepath.Join(dir, "out.deb")
	var stderr bytes.Buffer
	if err := run([]string{"-arch", "arm64", "-version", version, "-binary", binPath, "-root", "../..", "-o", deb}, &stderr); err != nil {
		t.Fatalf("mkdeb: %v\n%s", err, stderr.String())
	}
	return deb, bin
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestDebAcceptedByDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	deb, bin := buildTestDeb(t, "v1.2.3")

	info := dpkgDeb(t, "--info", deb)
	for _, want := range []string{"Package: slurm-ec2", "Version: 1.2.3", "Architecture: arm64", "Installed-Size:", " postinst", " conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if conf := dpkgDeb(t, "--info", deb, "conffiles"); conf != "/etc/slurm-ec2/config.json\n/etc/slurm-ec2/partitions.json\n" {
		t.Errorf("conffiles = %q", conf)
	}

	contents := dpkgDeb(t, "--contents", deb)
	wantLines := []string{
		"-rwxr-xr-x root/root", "./usr/bin/slurm-ec2\n",
		"./usr/lib/slurm-ec2/resume -> ../../bin/slurm-ec2", "./usr/lib/slurm-ec2/suspend -> ../../bin/slurm-ec2",
		"./usr/lib/slurm-ec2/resume-fail -> ../../bin/slurm-ec2", "./usr/lib/slurm-ec2/change-state -> ../../bin/slurm-ec2",
		"./usr/lib/systemd/system/slurm-ec2-reconcile.service", "./usr/lib/systemd/system/slurm-ec2-reconcile.timer",
		"./usr/share/slurm-ec2/slurmd.service.d/slurm-ec2.conf",
		"./usr/share/doc/slurm-ec2/examples/config.json", "./usr/share/doc/slurm-ec2/examples/partitions.json",
		"./etc/slurm-ec2/config.json", "./etc/slurm-ec2/partitions.json", "2026-01-01",
	}
	for _, w := range wantLines {
		if !strings.Contains(contents, w) {
			t.Errorf("dpkg-deb --contents lacks %q:\n%s", w, contents)
		}
	}

	// Extract and compare bytes: what dpkg installs is what we packed.
	root := t.TempDir()
	dpkgDeb(t, "-x", deb, root)
	got, err := os.ReadFile(filepath.Join(root, "usr/bin/slurm-ec2"))
	if err != nil || !bytes.Equal(got, bin) {
		t.Errorf("extracted binary differs: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(root, "usr/lib/slurm-ec2/resume")); err != nil || l != "../../bin/slurm-ec2" {
		t.Errorf("resume symlink = %q, %v", l, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/lib/slurm-ec2/resume")); err != nil || !bytes.Equal(b, bin) {
		t.Errorf("resume symlink does not resolve to the binary: %v", err)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/slurm-ec2-reconcile.timer"))
	src, _ := os.ReadFile("../../deploy/systemd/slurm-ec2-reconcile.timer")
	if len(unit) == 0 || !bytes.Equal(unit, src) {
		t.Error("packaged timer differs from deploy/systemd")
	}
	// md5sums lets debsums verify the install.
	ctl := t.TempDir()
	dpkgDeb(t, "-e", deb, ctl)
	sums, _ := os.ReadFile(filepath.Join(ctl, "md5sums"))
	if !strings.Contains(string(sums), "  usr/bin/slurm-ec2\n") {
		t.Errorf("md5sums lacks the binary:\n%s", sums)
	}
}

func TestDebIsReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	a, _ := buildTestDeb(t, "1.0.0")
	b, _ := buildTestDeb(t, "1.0.0")
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two builds of the same inputs differ")
	}
	if !bytes.HasPrefix(ab, []byte("!<arch>\ndebian-binary/  ")) {
		t.Errorf("not an ar archive starting with debian-binary: %q", ab[:24])
	}
}

func TestRunErrors(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"missing flags":   {[]string{"-arch", "amd64"}, "required"},
		"bad version":     {[]string{"-arch", "amd64", "-version", "dev", "-binary", "x"}, "not a Debian version"},
		"missing binary":  {[]string{"-arch", "amd64", "-version", "1.0", "-binary", "/nonexistent/slurm-ec2", "-root", "../.."}, "run the build first"},
		"bad arch":        {[]string{"-arch", "AMD 64", "-version", "1.0", "-binary", "main.go", "-root", "../.."}, "bad architecture"},
		"missing sources": {[]string{"-arch", "amd64", "-version", "1.0", "-binary", "main.go", "-root", "/nonexistent"}, "reading package input"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append(tc.args, "-o", filepath.Join(t.TempDir(), "x.deb"))
			if err := run(args, &stderr); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%v) = %v, want error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
