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

func TestParsePendingJobs(t *testing.T) {
	out := []byte("12|aws\n13|aws,onprem\n14_[1-3]|aws\nnot a job\n|aws\n0|aws\n15|\n")
	got := slurm.ParsePendingJobs(out)
	want := []slurm.PendingJob{{ID: 12, Partitions: []string{"aws"}}, {ID: 13, Partitions: []string{"aws", "onprem"}}, {ID: 14, Partitions: []string{"aws"}}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].ID != want[i].ID || !slices.Equal(got[i].Partitions, want[i].Partitions) {
			t.Fatalf("job %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func FuzzParsePendingJobs(f *testing.F) {
	f.Add([]byte("12|aws\n13|aws,onprem\n14_[1-3]|aws\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, j := range slurm.ParsePendingJobs(b) {
			if j.ID <= 0 || len(j.Partitions) == 0 {
				t.Fatalf("bad job %+v from %q", j, b)
			}
		}
	})
}
