package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
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
				"-version '" + tc.wantDeb + "'", "-o dist/slurm-ec2_" + tc.wantDeb + "_$arch.deb",
				"go build -o dist/.mkdeb ./cmd/mkdeb", "sha256sum",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("make -n dist lacks %q:\n%s", want, s)
				}
			}
		})
	}
}
