package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ScheduleEvent gives instances an EC2 scheduled event (code, NotBefore as RFC 3339 or "+72h").
func (c *Cluster) ScheduleEvent(ctx context.Context, code, notBefore string, ids ...string) error {
	return c.admin(ctx, http.MethodPost, "/ec2sim/events", map[string]any{"InstanceIds": ids, "Code": code, "NotBefore": notBefore}, nil)
}

// SetStatus sets instances' instance and system status checks ("" leaves one as it is).
func (c *Cluster) SetStatus(ctx context.Context, instanceStatus, systemStatus string, ids ...string) error {
	return c.admin(ctx, http.MethodPost, "/ec2sim/status", map[string]any{"InstanceIds": ids, "InstanceStatus": instanceStatus, "SystemStatus": systemStatus}, nil)
}

// setConfigKey adds one key to the cluster's config.json (atomically: the reconcile timer reads it).
func setConfigKey(t *testing.T, c *Cluster, key string, value any) {
	t.Helper()
	path := filepath.Join(c.Etc, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = value
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func nodeOf(t *testing.T, ctx context.Context, c *Cluster, name string) Node {
	t.Helper()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return nodeMap(nodes)[name]
}

// 7. EC2 health: a retirement event on the instance of a running job's node, and an impaired
// instance under another job. The first job finishes where it is (its node drained, then
// replaced: its instance terminated); the second is requeued at once (its node DOWN, its
// instance terminated) and completes on a fresh instance; nothing leaks.
func TestScenario8Health(t *testing.T) {
	c, ctx := start(t, Config{ReconcileEvery: 5 * time.Second})
	setConfigKey(t, c, "HealthCheckGraceSeconds", 0)
	tm := newTiming(t, 2)
	tm.Submit = time.Now()
	const work = 25 // seconds each job runs
	script := fmt.Sprintf("hostname; sleep %d", work)
	idA, err := c.Sbatch(ctx, script, "-N1", "--exclusive", "-p", "aws", "--requeue", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	idB, err := c.Sbatch(ctx, script, "-N1", "--exclusive", "-p", "aws", "--requeue", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	jA, atA := waitJobState(t, ctx, c, idA, 60*time.Second, "RUNNING")
	jB, atB := waitJobState(t, ctx, c, idB, 60*time.Second, "RUNNING")
	tm.Running = later(atA, atB)
	if jA.NodeList == jB.NodeList {
		t.Fatalf("both jobs on %s; --exclusive should part them", jA.NodeList)
	}
	byName := checkInstancesForNodes(t, ctx, c, []string{jA.NodeList, jB.NodeList})
	retiring, sick := byName[jA.NodeList], byName[jB.NodeList]
	time.Sleep(2 * time.Second) // let the jobs get going

	notBefore := time.Now().UTC().Add(72 * time.Hour).Truncate(time.Second)
	if err := c.ScheduleEvent(ctx, "instance-retirement", notBefore.Format(time.RFC3339), retiring.InstanceID); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(ctx, "impaired", "ok", sick.InstanceID); err != nil {
		t.Fatal(err)
	}
	marked := time.Now()

	// Within a reconcile or two: A's node drained naming the event, B's node DOWN and its
	// instance gone.
	wantReason := "slurm-ec2: instance-retirement scheduled for " + notBefore.Format(time.RFC3339)
	drainedAt := waitFor(t, ctx, 30*time.Second, jA.NodeList+" drained for the retirement", func() (bool, string) {
		n := nodeOf(t, ctx, c, jA.NodeList)
		// scontrol prints the reason with " [user@time]" after it.
		return n.Has("DRAIN") && strings.HasPrefix(n.Reason, wantReason), n.State + " " + n.Reason
	})
	sickGoneAt := waitFor(t, ctx, 30*time.Second, "the impaired instance terminated", func() (bool, string) {
		ins, err := c.Instances(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, i := range ins {
			if i.InstanceID == sick.InstanceID {
				return !i.Live(), i.State
			}
		}
		return false, "not listed"
	})
	// B was requeued: its first run died with its node.
	waitFor(t, ctx, 30*time.Second, "job "+idB+" requeued", func() (bool, string) {
		j := mustJob(t, ctx, c, idB)
		return j.Restarts >= 1, fmt.Sprintf("%s restarts=%d", j.State, j.Restarts)
	})

	jA, doneA := waitJobState(t, ctx, c, idA, 90*time.Second, "COMPLETED")
	if jA.Restarts != 0 {
		t.Errorf("job %s on the retiring node: Restarts=%d, want it to finish where it ran", idA, jA.Restarts)
	}
	jB, doneB := waitJobState(t, ctx, c, idB, 150*time.Second, "COMPLETED")
	tm.Done = later(doneA, doneB)
	out := jobOutput(t, c, idB)
	if len(out) == 0 {
		t.Errorf("job %s wrote no output", idB)
	}
	// The retiring instance is replaced once its job is done.
	replacedAt := waitFor(t, ctx, 60*time.Second, "the retiring instance terminated after its job", func() (bool, string) {
		ins, err := c.Instances(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, i := range ins {
			if i.InstanceID == retiring.InstanceID {
				return !i.Live(), i.State
			}
		}
		return false, "not listed"
	})
	ins, _ := c.Instances(ctx)
	for _, i := range ins {
		if i.InstanceID != sick.InstanceID && i.Tags["Name"] == jB.NodeList && strings.HasPrefix(jB.NodeList, "aws-") && i.LaunchTime.Before(marked) && i.Live() {
			t.Errorf("job %s's second run is on %s, an instance from before the failure", idB, i.InstanceID)
		}
	}
	tm.Terminated = waitAllDown(t, ctx, c, 90*time.Second)
	tm.Note = fmt.Sprintf("drained %s %.1fs after the event; impaired %s gone %.1fs after; A done +%.1fs, B (requeued) done +%.1fs; retiring instance gone by +%.1fs (checked after B)",
		jA.NodeList, drainedAt.Sub(marked).Seconds(), sick.InstanceID, sickGoneAt.Sub(marked).Seconds(),
		doneA.Sub(marked).Seconds(), doneB.Sub(marked).Seconds(), replacedAt.Sub(marked).Seconds())
	t.Log(tm.Note)
}
