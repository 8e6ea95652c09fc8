package slurm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

func TestSetJobAdminComment(t *testing.T) {
	f := fakeslurm.New(t, "aws-spot-[0-1]")
	c := &slurm.Client{BinDir: f.BinDir, Timeout: 10 * time.Second}
	if err := c.SetJobAdminComment(context.Background(), 42, "slurm-ec2: node group aws-spot held\n(see sinfo -R)"); err != nil {
		t.Fatal(err)
	}
	calls := scontrolCalls(f, "update")
	want := []string{"scontrol", "update", "jobid=42", "admincomment=slurm-ec2: node group aws-spot held (see sinfo -R)"}
	if len(calls) != 1 || !slices.Equal(calls[0].Argv, want) {
		t.Fatalf("calls = %+v, want one %q", calls, want)
	}
	if err := c.SetJobAdminComment(context.Background(), 0, "x"); err == nil {
		t.Fatal("job 0 accepted")
	}
}
