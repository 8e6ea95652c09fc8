package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDistMakefile expands the dist recipe with make -n (nothing is built) as the Makefile would
// include it, and checks the cross-compilation and packaging commands.
func TestDistMakefile(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	abs, err := filepath.Abs("dist.mk")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		version, wantDeb string
	}{
		"release tag":   {"v1.2.3", "1.2.3"},
		"git describe":  {"abc1234-dirty", "0.0~abc1234-dirty"},
		"hash digit":    {"1125343-dirty", "0.0~1125343-dirty"},
		"bare release":  {"0.3.0", "0.3.0"},
		"no git":        {"dev", "0.0~dev"},
		"odd character": {"v1.0/rc1", "1.0.rc1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mk := "GO ?= go\nVERSION := " + tc.version + "\nLDFLAGS := -s -w -X main.v=$(VERSION)\ninclude " + abs + "\n"
			if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("make", "-n", "-C", dir, "dist", "SOURCE_DATE_EPOCH=0").CombinedOutput()
			if err != nil {
				t.Fatalf("make -n dist: %v\n%s", err, out)
			}
			s := string(out)
			for _, want := range []string{
				"CGO_ENABLED=0 GOOS=linux GOARCH=$arch", "-trimpath", "for arch in amd64 arm64",
				"-o dist/slurm-ec2-linux-$arch ./cmd/slurm-ec2",
				"-format deb -arch $arch -version '" + tc.wantDeb + "'", "-o dist/slurm-ec2_" + tc.wantDeb + "_$arch.deb",
				"-format rpm -arch $arch -version '" + tc.wantDeb + "'", "-o dist/slurm-ec2-" + strings.ReplaceAll(tc.wantDeb, "-", ".") + "-1.$rpmarch.rpm",
				"go build -o dist/.mkpkg ./cmd/mkpkg", "sha256sum", "slurm-ec2-*.rpm",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("make -n dist lacks %q:\n%s", want, s)
				}
			}
		})
	}
}

// packageFiles are the paths both packages must install: the binary, the links Slurm runs, the
// systemd units, the lock directory's tmpfiles.d entry and the configuration.
var packageFiles = []string{
	"/usr/bin/slurm-ec2",
	"/usr/lib/slurm-ec2/resume", "/usr/lib/slurm-ec2/suspend", "/usr/lib/slurm-ec2/resume-fail", "/usr/lib/slurm-ec2/change-state",
	"/usr/lib/systemd/system/slurm-ec2-reconcile.service", "/usr/lib/systemd/system/slurm-ec2-reconcile.timer",
	"/usr/lib/systemd/system/slurm-ec2-sweep.service", "/usr/lib/systemd/system/slurm-ec2-sweep.timer",
	"/usr/share/slurm-ec2/slurmd.service.d/slurm-ec2.conf", "/usr/lib/tmpfiles.d/slurm-ec2.conf",
	"/etc/slurm-ec2/config.json", "/etc/slurm-ec2/partitions.json",
}

// TestPackages builds the .deb and the .rpm for both architectures with cmd/mkpkg and checks
// them with the tools of each family (dpkg-deb, rpm), then unpacks the amd64 .deb and runs its
// slurm-ec2 validate on the configuration it ships. The arm64 packages hold the amd64 binary
// here (cross-compiling is `make dist`'s job): what is checked is the packaging.
func TestPackages(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "rpm", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs dpkg and rpm)", tool)
		}
	}
	if testing.Short() {
		t.Skip("builds the binary and four packages")
	}
	dir := t.TempDir()
	bin, mkpkg := filepath.Join(dir, "slurm-ec2"), filepath.Join(dir, "mkpkg")
	for out, pkg := range map[string]string{bin: "../cmd/slurm-ec2", mkpkg: "../cmd/mkpkg"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		b, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, b, ee.Stderr)
			}
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return string(b)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
		deb := filepath.Join(dir, "slurm-ec2_1.2.3_"+arch+".deb")
		rpm := filepath.Join(dir, "slurm-ec2-1.2.3-1."+rpmArch+".rpm")
		run(mkpkg, "-root", "..", "-format", "deb", "-arch", arch, "-version", "v1.2.3", "-binary", bin, "-o", deb)
		run(mkpkg, "-root", "..", "-format", "rpm", "-arch", arch, "-version", "v1.2.3", "-binary", bin, "-o", rpm)

		if got := run("dpkg-deb", "-f", deb, "Package", "Version", "Architecture"); got != "Package: slurm-ec2\nVersion: 1.2.3\nArchitecture: "+arch+"\n" {
			t.Errorf("%s control fields:\n%s", deb, got)
		}
		debList := run("dpkg-deb", "-c", deb)
		conffiles := run("dpkg-deb", "-I", deb, "conffiles")
		if got := run("rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", rpm); got != "slurm-ec2 1.2.3 1 "+rpmArch {
			t.Errorf("%s: rpm -qp says %q", rpm, got)
		}
		rpmList := run("rpm", "-qpl", rpm)
		rpmConf := run("rpm", "-qp", "--configfiles", rpm)
		for _, f := range packageFiles {
			if !strings.Contains(debList, "."+f) {
				t.Errorf("%s lacks %s:\n%s", filepath.Base(deb), f, debList)
			}
			if !slices.Contains(strings.Split(rpmList, "\n"), f) {
				t.Errorf("%s lacks %s:\n%s", filepath.Base(rpm), f, rpmList)
			}
		}
		for _, c := range []string{"/etc/slurm-ec2/config.json", "/etc/slurm-ec2/partitions.json"} {
			if !strings.Contains(conffiles, c) || !strings.Contains(rpmConf, c) {
				t.Errorf("%s is not a configuration file the package manager keeps: deb %q rpm %q", c, conffiles, rpmConf)
			}
		}
		for _, l := range []string{"resume", "suspend", "resume-fail", "change-state"} {
			if !strings.Contains(debList, "./usr/lib/slurm-ec2/"+l+" -> ../../bin/slurm-ec2") {
				t.Errorf("%s: /usr/lib/slurm-ec2/%s is not a link to the binary", filepath.Base(deb), l)
			}
		}
		if !strings.Contains(debList, "-rwxr-xr-x root/root") || strings.Contains(debList, "rw-rw") {
			t.Errorf("%s: files must be root's and not group- or world-writable:\n%s", filepath.Base(deb), debList)
		}
		if scripts := run("rpm", "-qp", "--scripts", rpm); !strings.Contains(scripts, "systemd-tmpfiles --create") {
			t.Errorf("%s: %%post does not create the lock directory:\n%s", filepath.Base(rpm), scripts)
		}
	}

	// What an admin gets from the .deb: unpacked (not installed: this machine is shared), its own
	// slurm-ec2 validates the configuration it ships, through the link Slurm runs.
	root := filepath.Join(dir, "root")
	run("dpkg-deb", "-x", filepath.Join(dir, "slurm-ec2_1.2.3_amd64.deb"), root)
	cmd := exec.Command(filepath.Join(root, "usr/bin/slurm-ec2"), "validate", "--config-dir", filepath.Join(root, "etc/slurm-ec2"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "partition ") {
		t.Fatalf("the packaged slurm-ec2 validate: %v\n%s", err, out)
	}
}
