package faults

import (
	"strings"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// TestInvariantCheckerDetects makes sure the invariant check can fail: a leaked instance, a
// stranded node and a node stuck in ResumeTimeout are each reported.
func TestInvariantCheckerDetects(t *testing.T) {
	e := newEnv(t, envOptions{})
	bootNodes(e, "aws-ondemand-[0-2]")
	if v := checkInvariants(e); len(v) != 0 {
		t.Fatalf("healthy cluster reported: %v", v)
	}
	// aws-ondemand-0 loses its instance; aws-ondemand-1 is powered down by hand while its
	// instance runs; aws-ondemand-5 is DOWN after ResumeTimeout.
	if err := e.sim.TerminateAsUser(e.liveIDs("aws-ondemand-0")); err != nil {
		t.Fatal(err)
	}
	e.fake.Set("aws-ondemand-1", func(n *slurm.Node) { addFlags(n, "POWERED_DOWN"); n.Addr = n.Name })
	e.fake.Set("aws-ondemand-5", func(n *slurm.Node) { n.State, n.Reason = "DOWN", "ResumeTimeout reached" })
	got := strings.Join(checkInvariants(e), "\n")
	for _, want := range []string{"stranded: node aws-ondemand-0", "leaked: instance", "stuck: node aws-ondemand-5"} {
		if !strings.Contains(got, want) {
			t.Errorf("violations lack %q:\n%s", want, got)
		}
	}
}
