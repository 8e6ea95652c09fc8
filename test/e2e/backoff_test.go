package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBackOffSlurmFacts checks what Slurm does with the reasons and job comments the back-off
// relies on (internal/slurm/job.go): a back-off record on a node that is not DOWN is no record
// (22.05 and 26.05 drop such a reason, 24.11 keeps it, so slurm-ec2 reads records from DOWN nodes
// only); a pending job whose nodes are all DOWN says so in its Reason; an administrator's
// AdminComment on a pending job is shown by `scontrol show job`; `scontrol notify` refuses
// pending jobs.
func TestBackOffSlurmFacts(t *testing.T) {
	c, ctx := start(t, Config{ResumeTimeout: 30})
	run := func(prog string, args ...string) (string, error) {
		out, err := c.Slurm(ctx, prog, args...)
		t.Logf("%s %s -> err=%v\n%s", prog, strings.Join(args, " "), err, out)
		return out, err
	}
	record := "slurm-ec2: held 3/3: boot failure (test); next probe 2099-01-01T00:00:00Z; release now: slurm-ec2 release aws-ondemand"
	if _, err := run("scontrol", "update", "nodename=aws-ondemand-0", "reason="+record); err != nil {
		t.Fatalf("reason on an idle node refused: %v", err)
	}
	out, _ := run("scontrol", "-o", "show", "node", "aws-ondemand-0")
	t.Logf("%s keeps a reason on a node that is not DOWN: %v", c.SlurmVersion, strings.Contains(out, "slurm-ec2: held"))
	// groups is what `slurm-ec2 status --json` says of each node group's back-off.
	type groupBackOff struct {
		Group    string `json:"node_group"`
		Failures int    `json:"failures"`
		Nodes    int    `json:"nodes_down"`
	}
	groups := func() map[string]groupBackOff {
		t.Helper()
		status, err := c.SlurmEC2(ctx, "status", "--json")
		if err != nil {
			t.Fatalf("slurm-ec2 status: %v\n%s", err, status)
		}
		var st struct {
			NodeGroups []groupBackOff `json:"node_groups"`
		}
		// The log goes to stderr, which SlurmEC2 returns too: the JSON is the first line that opens it.
		js := status[max(0, strings.Index(status, "\n{")):]
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Fatalf("slurm-ec2 status --json: %v\n%s", err, status)
		}
		out := map[string]groupBackOff{}
		for _, g := range st.NodeGroups {
			out[g.Group] = g
		}
		return out
	}
	for _, g := range groups() {
		if g.Failures != 0 || g.Nodes != 0 {
			t.Errorf("group %s: %d failures, %d nodes down, from a record on an idle node; want none", g.Group, g.Failures, g.Nodes)
		}
	}
	if _, err := run("scontrol", "update", "nodename=aws-ondemand-[0-9],aws-spot-[0-99]", "state=down", "reason="+record); err != nil {
		t.Fatal(err)
	}
	// The same record on DOWN nodes counts: the check above is not blind.
	if g := groups()["aws-ondemand"]; g.Failures != 3 || g.Nodes != 10 {
		t.Errorf("group aws-ondemand with its 10 nodes DOWN under %q: %+v; want 3 failures, 10 nodes down", record, g)
	}
	id, err := c.Sbatch(ctx, "hostname", "-N1", "-p", "aws", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, 30*time.Second, "the job's reason", func() (bool, string) {
		out, _ := c.Slurm(ctx, "squeue", "-h", "-o", "%r", "-j", id)
		return strings.Contains(out, "Nodes required for job are DOWN"), out
	})
	if _, err := run("scontrol", "update", "jobid="+id, "admincomment=slurm-ec2: node group aws-ondemand held"); err != nil {
		t.Fatalf("AdminComment refused: %v", err)
	}
	if out, _ := run("scontrol", "-o", "show", "job", id); !strings.Contains(out, "AdminComment=slurm-ec2: node group aws-ondemand held") {
		t.Errorf("AdminComment not shown by scontrol show job")
	}
	if out, _ := run("squeue", "-h", "-t", "PENDING", "-o", "%i|%P"); !strings.Contains(out, id+"|aws") {
		t.Errorf("squeue does not list job %s as pending in aws: %q", id, out)
	}
	if _, err := run("scontrol", "notify", id, "slurm-ec2: held"); err == nil {
		t.Errorf("scontrol notify of a pending job succeeded; it could tell jobs directly")
	}
}

// backOffPartitions is one partition with one on-demand group of 4 nodes: every job needs it.
const backOffPartitions = `{"Partitions": [{"PartitionName": "aws", "NodeGroups": [{
  "NodeGroupName": "node", "MaxNodes": 4, "Region": "us-east-1",
  "SlurmSpecifications": {"CPUs": "4"}, "PurchasingOption": "on-demand",
  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
  "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}],
  "SubnetIds": ["subnet-11111111", "subnet-22222222"]}],
  "PartitionOptions": {"Default": "yes"}}]}`

// adminCommentRE takes AdminComment out of a `scontrol -o show job` line (up to the next key).
var adminCommentRE = regexp.MustCompile(`AdminComment=(.*?)\s+[A-Z][A-Za-z]*=`)

// startFor is start with a longer bound on the whole scenario.
func startFor(t *testing.T, cfg Config, d time.Duration) (*Cluster, context.Context) {
	t.Helper()
	c, _ := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c, ctx
}

// TestScenario9BackOffNeverBoots: an image that never boots, two jobs pending. Over the broken
// window slurm-ec2 launches a bounded number of instances (the group backs off, then is held and
// probes with one node), the jobs say why they wait, and fixing the image lets both jobs run
// without restarting anything.
func TestScenario9BackOffNeverBoots(t *testing.T) {
	const resumeTimeout = 20
	broken := 4 * time.Minute
	c, ctx := startFor(t, Config{ReconcileEvery: 5 * time.Second, ResumeTimeout: resumeTimeout, Partitions: []byte(backOffPartitions),
		ConfigExtra: map[string]any{"BackOffBaseSeconds": 20, "BackOffMaxSeconds": 40, "HoldAfterFailures": 2}}, 9*time.Minute)
	if err := c.Knob("fail-boot", "1000"); err != nil {
		t.Fatal(err)
	}
	tm := newTiming(t, 2)
	tm.Submit = time.Now()
	var ids []string
	for range 2 {
		id, err := c.Sbatch(ctx, "hostname", "-N1", "-p", "aws", "--requeue", outFlag(c))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	seen := map[string]time.Time{}
	count := func() {
		ins, err := c.Instances(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range ins {
			if _, ok := seen[i.InstanceID]; !ok {
				seen[i.InstanceID] = i.LaunchTime
			}
		}
	}
	var comment, reason, sinfoR string
	for time.Since(tm.Submit) < broken {
		count()
		if out, err := c.Slurm(ctx, "scontrol", "-o", "show", "job", ids[0]); err == nil {
			if m := adminCommentRE.FindStringSubmatch(out); m != nil {
				comment = m[1]
			}
		}
		if out, err := c.Slurm(ctx, "squeue", "-h", "-o", "%r", "-j", ids[0]); err == nil && strings.TrimSpace(out) != "" {
			reason = strings.TrimSpace(out)
		}
		if out, err := c.Slurm(ctx, "sinfo", "-R", "-h", "-o", "%E"); err == nil && strings.Contains(out, "slurm-ec2:") {
			sinfoR = strings.TrimSpace(strings.Split(out, "\n")[0])
		}
		time.Sleep(5 * time.Second)
	}
	launched := len(seen)
	t.Logf("broken image for %v (ResumeTimeout %ds, back-off 20s..40s, hold after 2): %d instances launched", broken, resumeTimeout, launched)
	t.Logf("job %s: squeue reason %q; AdminComment %q", ids[0], reason, comment)
	t.Logf("sinfo -R: %s", sinfoR)
	if out, err := c.SlurmEC2(ctx, "status"); err == nil {
		t.Logf("slurm-ec2 status:\n%s", out)
	}
	// Without the back-off every ResumeTimeout relaunches both nodes: about 2 per 25 s.
	if launched > 8 {
		t.Errorf("%d instances launched in %v for an image that never boots, want at most 8", launched, broken)
	}
	if !strings.Contains(comment, "slurm-ec2: node group aws-node") {
		t.Errorf("job %s does not say why it waits: AdminComment %q", ids[0], comment)
	}
	if !strings.Contains(sinfoR, "slurm-ec2: held") {
		t.Errorf("sinfo -R does not show the hold: %q", sinfoR)
	}
	for _, id := range ids {
		if j := mustJob(t, ctx, c, id); j.State == "COMPLETED" {
			t.Fatalf("job %s completed with an image that never boots", id)
		}
	}

	// The image is fixed: the next probe boots, the hold ends, both jobs run. No restart.
	if err := c.Knob("fail-boot", "0"); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	var last time.Time
	for _, id := range ids {
		_, at := waitJobState(t, ctx, c, id, 4*time.Minute, "COMPLETED")
		if at.After(last) {
			last = at
		}
	}
	count()
	tm.Running, tm.Done = last, last
	tm.Note = fmt.Sprintf("%d instances in %v broken; both jobs done %.0fs after the fix; %d instances in all", launched, broken, last.Sub(fixed).Seconds(), len(seen))
	t.Logf("%s", tm.Note)
}
