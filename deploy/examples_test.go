package deploy

import (
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// The packaged example configuration must load, so `apt install` leaves a file that only needs
// the admin's values.
func TestExamplesLoad(t *testing.T) {
	cfg, err := config.Load("examples")
	if err != nil {
		t.Fatalf("deploy/examples does not load: %v", err)
	}
	if got := len(cfg.NodeGroups()); got != 1 {
		t.Errorf("%d node groups, want 1", got)
	}
}
