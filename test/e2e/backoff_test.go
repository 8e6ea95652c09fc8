package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestBackOffSlurmFacts records what Slurm 22.05 does with the reasons and job comments the
// back-off relies on: a reason set on a node that is not DOWN, across a power-up, and what a
// pending job shows when the nodes it could use are DOWN.
func TestBackOffSlurmFacts(t *testing.T) {
	c, ctx := start(t, Config{ResumeTimeout: 30})
	show := func(what string, prog string, args ...string) string {
		out, err := c.Slurm(ctx, prog, args...)
		t.Logf("%s: %s %s -> err=%v\n%s", what, prog, strings.Join(args, " "), err, out)
		return out
	}
	show("reason on idle~", "scontrol", "update", "nodename=aws-ondemand-0", "reason=slurm-ec2: memo test")
	show("node after reason", "scontrol", "-o", "show", "node", "aws-ondemand-0")
	show("down+resume", "scontrol", "update", "nodename=aws-ondemand-1", "state=down", "reason=x")
	show("resume", "scontrol", "update", "nodename=aws-ondemand-1", "state=resume")
	show("reason after resume", "scontrol", "update", "nodename=aws-ondemand-1", "reason=slurm-ec2: memo 2")
	show("node 1", "scontrol", "-o", "show", "node", "aws-ondemand-1")
	id, err := c.Sbatch(ctx, "hostname", "-N1", "-w", "aws-ondemand-0", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	show("node 0 powering up", "scontrol", "-o", "show", "node", "aws-ondemand-0")
	waitJobState(t, ctx, c, id, 90*time.Second, "COMPLETED")
	show("node 0 after job", "scontrol", "-o", "show", "node", "aws-ondemand-0")
	// Every node of the partition DOWN: what does a pending job say?
	show("all down", "scontrol", "update", "nodename=aws-ondemand-[0-9],aws-spot-[0-99]", "state=down", "reason=slurm-ec2: held 3/3: boot failure (test)")
	id2, err := c.Sbatch(ctx, "hostname", "-N1", "-p", "aws", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	show("squeue", "squeue", "-o", "%i %T %r")
	show("admincomment", "scontrol", "update", "jobid="+id2, "admincomment=slurm-ec2: node group aws-ondemand held")
	show("comment", "scontrol", "update", "jobid="+id2, "comment=slurm-ec2: x")
	show("job", "scontrol", "-o", "show", "job", id2)
	show("squeue comment", "squeue", "-o", "%i %T %r %k", "-j", id2)
	show("squeue admin", "squeue", "-O", "JobID,Reason,AdminComment", "-j", id2)
	show("notify", "scontrol", "notify", id2, "slurm-ec2: held")
}
