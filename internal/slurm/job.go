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
