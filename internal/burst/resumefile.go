package burst

import (
	"encoding/json"
	"fmt"
)

// ResumeJob is one job of SLURM_RESUME_FILE: the nodes being resumed for it.
type ResumeJob struct {
	JobID     int64
	Nodes     string // hostlist of the nodes resumed for this job
	Partition string
}

// ParseResumeFile reads the JSON that slurmctld puts in SLURM_RESUME_FILE. Slurm 22.05 writes
// {"all_nodes":"..","jobs":[{"job_id":2,"nodes":".."}]}; 23.02 and later write
// {"all_nodes_resume":"..","jobs":[{"job_id":2,"nodes_alloc":"..","nodes_resume":"..","partition":".."}]}.
// Both are accepted; for a job the nodes being resumed win over the nodes allocated.
func ParseResumeFile(data []byte) (all string, jobs []ResumeJob, err error) {
	var f struct {
		AllNodes       string `json:"all_nodes"`
		AllNodesResume string `json:"all_nodes_resume"`
		Jobs           []struct {
			JobID       int64  `json:"job_id"`
			Nodes       string `json:"nodes"`
			NodesResume string `json:"nodes_resume"`
			NodesAlloc  string `json:"nodes_alloc"`
			Partition   string `json:"partition"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", nil, fmt.Errorf("reading SLURM_RESUME_FILE: %w", err)
	}
	all = f.AllNodesResume
	if all == "" {
		all = f.AllNodes
	}
	for _, j := range f.Jobs {
		n := j.NodesResume
		if n == "" {
			n = j.Nodes
		}
		if n == "" {
			n = j.NodesAlloc
		}
		if n == "" {
			continue
		}
		jobs = append(jobs, ResumeJob{JobID: j.JobID, Nodes: n, Partition: j.Partition})
	}
	return all, jobs, nil
}
