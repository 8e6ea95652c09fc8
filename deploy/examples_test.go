package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// The packaged example configuration must load, so `apt install` leaves a file that only needs
// the admin's values. The files are copied to a private directory first: slurm-ec2 refuses a
// configuration in a group-writable directory, which a checkout made with umask 002 is.
func TestExamplesLoad(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{config.ConfigFileName, config.PartitionsFileName} {
		b, err := os.ReadFile(filepath.Join("examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("deploy/examples does not load: %v", err)
	}
	if got := len(cfg.NodeGroups()); got != 1 {
		t.Errorf("%d node groups, want 1", got)
	}
}
