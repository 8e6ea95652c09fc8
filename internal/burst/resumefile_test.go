package burst

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseResumeFile(t *testing.T) {
	tests := map[string]struct {
		in      string
		all     string
		jobs    []ResumeJob
		wantErr bool
	}{
		"slurm 22.05": {
			// As observed from a real 22.05 slurmctld (shared/slurm/NOTES.md).
			in:   `{"jobs":[{"job_id":2,"nodes":"aws-node-[0-1]"}],"all_nodes":"aws-node-[0-1]"}`,
			all:  "aws-node-[0-1]",
			jobs: []ResumeJob{{JobID: 2, Nodes: "aws-node-[0-1]"}},
		},
		"slurm 23.x": {
			in: `{"all_nodes_resume":"aws-spot-[0-3],aws-od-1","jobs":[
				{"extra":"","features":"","job_id":7,"nodes_alloc":"aws-spot-[0-5]","nodes_resume":"aws-spot-[0-3]","oversubscribe":"OK","partition":"aws","reservation":""},
				{"job_id":8,"nodes_alloc":"aws-od-1","partition":"aws"}]}`,
			all: "aws-spot-[0-3],aws-od-1",
			jobs: []ResumeJob{
				{JobID: 7, Nodes: "aws-spot-[0-3]", Partition: "aws"},
				{JobID: 8, Nodes: "aws-od-1", Partition: "aws"},
			},
		},
		"no jobs":  {in: `{"all_nodes":"a-b-1"}`, all: "a-b-1"},
		"not json": {in: `jobs=1`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			all, jobs, err := ParseResumeFile([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if all != tc.all {
				t.Errorf("all = %q, want %q", all, tc.all)
			}
			if diff := cmp.Diff(tc.jobs, jobs); diff != "" {
				t.Errorf("jobs (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseResumeFile(f *testing.F) {
	f.Add([]byte(`{"jobs":[{"job_id":2,"nodes":"aws-node-[0-1]"}],"all_nodes":"aws-node-[0-1]"}`))
	f.Add([]byte(`{"all_nodes_resume":"x","jobs":[{"job_id":1,"nodes_resume":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, jobs, err := ParseResumeFile(data)
		if err != nil && jobs != nil {
			t.Fatal("jobs returned with an error")
		}
		for _, j := range jobs {
			if j.Nodes == "" {
				t.Fatal("job without nodes returned")
			}
		}
	})
}
