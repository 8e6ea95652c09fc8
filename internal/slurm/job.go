package slurm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// SetJobAdminComment sets the AdminComment of a job: how slurm-ec2 tells a pending job why the
// nodes it waits for do not come. Seen on Slurm 22.05.8 (test/e2e/backoff_test.go):
//   - `scontrol update jobid=N admincomment=TEXT` works for an administrator (SlurmUser, root)
//     on a PENDING job, and `scontrol show job N` then prints AdminComment=TEXT to every user;
//   - Comment= would work too, but it belongs to the user who submitted the job;
//   - `scontrol notify N TEXT` on a pending job fails: "Requested operation is presently
//     disabled";
//   - a reason set on a node that is not DOWN or DRAINED is accepted and dropped.
//
// A job that no longer exists is an error like any other; callers treat the comment as best
// effort.
func (c *Client) SetJobAdminComment(ctx context.Context, jobID int64, comment string) error {
	if jobID <= 0 {
		return fmt.Errorf("setting the comment of job %d: not a job id", jobID)
	}
	comment = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(comment)
	if err := c.update(ctx, "jobid="+strconv.FormatInt(jobID, 10), "admincomment="+comment); err != nil {
		return fmt.Errorf("setting the admin comment of job %d: %w", jobID, err)
	}
	return nil
}

// PendingJob is a job waiting to start.
type PendingJob struct {
	ID         int64
	Partitions []string // the partitions it may run in
}

// PendingJobs lists the pending jobs with `squeue -h -t PENDING -o %i|%P` (one line per job;
// a job submitted to several partitions lists them comma-separated).
func (c *Client) PendingJobs(ctx context.Context) ([]PendingJob, error) {
	out, err := c.run(ctx, "squeue", "-h", "-t", "PENDING", "-o", "%i|%P")
	if err != nil {
		return nil, err
	}
	return ParsePendingJobs(out), nil
}

// ParsePendingJobs reads PendingJobs' squeue output; lines it cannot read are skipped. Array
// jobs print "12_[3-5]": their id is the array's job id.
func ParsePendingJobs(out []byte) []PendingJob {
	var jobs []PendingJob
	for _, line := range strings.Split(string(out), "\n") {
		id, parts, ok := strings.Cut(strings.TrimSpace(line), "|")
		if !ok {
			continue
		}
		id, _, _ = strings.Cut(id, "_")
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 || parts == "" {
			continue
		}
		jobs = append(jobs, PendingJob{ID: n, Partitions: strings.Split(parts, ",")})
	}
	return jobs
}
