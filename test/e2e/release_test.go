package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Scenarios and checks that newer Slurm releases need (make e2e SLURM_VERSION=24.11|26.05).

// confComplaint matches what slurmctld logs about a slurm.conf line it rejects or will
// stop accepting, e.g. 24.11's
// `error: The CommunicationParameters option "NoAddrCache" is defunct, please remove it from slurm.conf.`
var confComplaint = regexp.MustCompile(`(?i)\b(error|warning|fatal):.*(defunct|deprecated|obsolete|slurm\.conf|parse|unrecognized|unknown (option|parameter|key)|invalid (option|parameter|value))`)

// checkSlurmctldLog fails the test for every slurmctld log line complaining about the
// configuration: generate-conf must write what this release accepts.
func checkSlurmctldLog(t *testing.T, c *Cluster) {
	t.Helper()
	f, err := os.Open(filepath.Join(c.Root, "log/slurmctld.log"))
	if err != nil {
		t.Errorf("slurmctld log: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); confComplaint.MatchString(line) {
			t.Errorf("%s complains about the configuration: %s", c.SlurmVersion, line)
		}
	}
}

// 7. `scontrol reconfigure` while cloud nodes are powered up and running a job: the job keeps
// running on the same nodes (no requeue), each node keeps its instance and gets (back) its
// instance's address, and the job's next step launches on them. (22.05 resets a cloud
// node's NodeAddr to slurm.conf's value at reconfigure; 24.11 restarts slurmctld for it.)
func TestScenario7Reconfigure(t *testing.T) {
	c, ctx := start(t, Config{ReconcileEvery: 5 * time.Second, ResumeTimeout: 60})
	tm := newTiming(t, 2)
	tm.Submit = time.Now()
	id, err := c.Sbatch(ctx, "srun -N2 hostname; sleep 30; srun -N2 hostname", "-N2", "-p", "aws", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	j, at := waitJobState(t, ctx, c, id, 90*time.Second, "RUNNING")
	tm.Running = at
	names, err := c.Hostnames(ctx, j.NodeList)
	if err != nil || len(names) != 2 {
		t.Fatalf("job %s nodes %q (%v), want 2", id, j.NodeList, err)
	}
	before := checkInstancesForNodes(t, ctx, c, names)
	// The first step has run once the output has the two names.
	waitFor(t, ctx, 30*time.Second, "the job's first step", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(c.Root, "jobs", id+".out"))
		return len(strings.Fields(string(b))) >= 2, fmt.Sprintf("output %q", b)
	})

	out, err := c.Slurm(ctx, "scontrol", "reconfigure")
	if err != nil {
		t.Fatalf("scontrol reconfigure: %v (%s)", err, out)
	}
	reconf := time.Now()
	waitFor(t, ctx, 30*time.Second, "slurmctld answering after reconfigure", func() (bool, string) {
		out, err := c.Slurm(ctx, "scontrol", "ping")
		return err == nil && strings.Contains(out, "is UP"), out
	})
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nm := nodeMap(nodes)
	var right []string
	for _, n := range names {
		right = append(right, fmt.Sprintf("%s=%s addr=%s", n, nm[n].State, nm[n].Addr))
	}
	t.Logf("right after reconfigure: %s", strings.Join(right, "; "))

	// Every node of the job stays powered up, in service, at its instance's address (a
	// reconcile puts back an address the reconfigure reset).
	fixed := waitFor(t, ctx, 20*time.Second, "the job's nodes powered up at their instances' addresses", func() (bool, string) {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		nm := nodeMap(nodes)
		var bad []string
		for _, n := range names {
			node := nm[n]
			if !node.PoweredUp() || node.Has("DOWN") || node.Has("DRAIN") || node.Addr != before[n].PrivateIP {
				bad = append(bad, fmt.Sprintf("%s=%s addr=%s want %s", n, node.State, node.Addr, before[n].PrivateIP))
			}
		}
		return len(bad) == 0, strings.Join(bad, "; ")
	})
	j, tm.Done = waitJobState(t, ctx, c, id, 90*time.Second, "COMPLETED")
	if j.Restarts != 0 {
		t.Errorf("job %s: Restarts=%d after reconfigure, want 0 (it must keep running)", id, j.Restarts)
	}
	got := jobOutput(t, c, id)
	slices.Sort(got)
	want := slices.Sorted(slices.Values(append(slices.Clone(names), names...)))
	if !slices.Equal(got, want) {
		t.Errorf("job output %v, want each node's name from both steps %v", got, want)
	}
	// Same instances: none terminated while the job ran, none launched for these nodes.
	ins, err := c.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != len(names) {
		var all []string
		for _, i := range ins {
			all = append(all, i.InstanceID+"("+i.Tags["Name"]+","+i.State+")")
		}
		t.Errorf("ec2sim saw %d instances %v, want the job's %d only", len(ins), all, len(names))
	}
	for _, n := range names {
		if i := liveByName(ins)[n]; i.InstanceID != before[n].InstanceID {
			t.Errorf("node %s: instance %s after the job, want %s from before the reconfigure", n, i.InstanceID, before[n].InstanceID)
		}
	}
	tm.Terminated = waitAllDown(t, ctx, c, 90*time.Second)
	tm.Note = fmt.Sprintf("addresses right %.1fs after reconfigure", fixed.Sub(reconf).Seconds())
}
