package slurm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
)

// TestRecordedResumeFiles runs the SLURM_RESUME_FILE parser over the file each release's
// slurmctld really passed to ResumeProgram (copied by the e2e harness's resume wrapper while
// the program ran): the nodes being resumed, per job and in all.
func TestRecordedResumeFiles(t *testing.T) {
	tests := map[string]struct {
		all       string
		jobID     int64
		nodes     string
		partition string
	}{
		"22.05": {all: "aws-ondemand-[0-2]", jobID: 1, nodes: "aws-ondemand-[0-2]"},
		"24.11": {all: "aws-ondemand-[0-2]", jobID: 1, nodes: "aws-ondemand-[0-2]", partition: "aws"},
		"26.05": {all: "aws-ondemand-[0-2]", jobID: 1, nodes: "aws-ondemand-[0-2]", partition: "aws"},
	}
	for rel, w := range tests {
		t.Run(rel, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "resume-file-"+rel+".json"))
			if err != nil {
				t.Fatal(err)
			}
			all, jobs, err := burst.ParseResumeFile(b)
			if err != nil {
				t.Fatal(err)
			}
			if all != w.all || len(jobs) != 1 || jobs[0].JobID != w.jobID || jobs[0].Nodes != w.nodes || jobs[0].Partition != w.partition {
				t.Errorf("ParseResumeFile = %q %+v, want %q and job %d on %s in partition %q", all, jobs, w.all, w.jobID, w.nodes, w.partition)
			}
		})
	}
}
