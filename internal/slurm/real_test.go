package slurm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// TestRealSlurm runs the Client against a real slurmctld started by
// testdata/realslurm.sh:
//
//	internal/slurm/testdata/realslurm.sh up
//	SLURM_CONF=/tmp/slurm-b/slurm.conf SLURM_EC2_REAL_SLURM=1 go test ./internal/slurm -run Real -v
//	internal/slurm/testdata/realslurm.sh down
func TestRealSlurm(t *testing.T) {
	if os.Getenv("SLURM_EC2_REAL_SLURM") != "1" {
		t.Skip("set SLURM_EC2_REAL_SLURM=1 (and SLURM_CONF) with a slurmctld from testdata/realslurm.sh up")
	}
	ctx := context.Background()
	c := &slurm.Client{Timeout: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))}

	host, err := c.Ping(ctx)
	if err != nil || host == "" {
		t.Fatalf("Ping = %q, %v", host, err)
	}

	cfg, err := c.Config(ctx)
	if err != nil || !slurm.CloudNodesVisible(cfg) {
		t.Fatalf("PrivateData = %q (need cloud), err %v", cfg["PrivateData"], err)
	}

	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]slurm.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	for i := range 10 {
		n, ok := byName[fmt.Sprintf("aws-spot-%d", i)]
		if !ok || !n.Has("CLOUD") {
			t.Fatalf("aws-spot-%d missing or not CLOUD: %+v", i, n)
		}
	}
	if len(nodes) < 1010 {
		t.Errorf("Nodes returned %d, want >= 1010 (PrivateData=cloud missing?)", len(nodes))
	}

	// Addresses, in reverse order, must land on the right nodes.
	var addrs []slurm.Address
	for i := 9; i >= 0; i-- {
		addrs = append(addrs, slurm.Address{Node: fmt.Sprintf("aws-spot-%d", i), Addr: fmt.Sprintf("10.9.0.%d", i), Hostname: fmt.Sprintf("ip-10-9-0-%d", i)})
	}
	if err := c.SetAddresses(ctx, addrs); err != nil {
		t.Fatal(err)
	}
	got, err := c.ShowNodes(ctx, []string{"aws-spot-0", "aws-spot-7"})
	if err != nil || len(got) != 2 {
		t.Fatalf("ShowNodes = %v, %v", got, err)
	}
	for _, n := range got {
		var i int
		fmt.Sscanf(n.Name, "aws-spot-%d", &i)
		if n.Addr != fmt.Sprintf("10.9.0.%d", i) || n.Hostname != fmt.Sprintf("ip-10-9-0-%d", i) {
			t.Errorf("%s: addr %s host %s", n.Name, n.Addr, n.Hostname)
		}
	}

	// 1,000 addresses in one call (measured).
	var big []slurm.Address
	for i := range 1000 {
		big = append(big, slurm.Address{Node: fmt.Sprintf("aws-big-%d", i), Addr: fmt.Sprintf("10.8.%d.%d", i/256, i%256)})
	}
	start := time.Now()
	if err := c.SetAddresses(ctx, big); err != nil {
		t.Fatal(err)
	}
	t.Logf("SetAddresses(1000 nodes, 1 exec) took %v", time.Since(start))

	// DOWN with a reason containing spaces and "=", then RESUME.
	reason := "slurm-ec2 test: x=y [a b]"
	if err := c.Update(ctx, []string{"aws-spot-6"}, slurm.StateDown, reason); err != nil {
		t.Fatal(err)
	}
	got, err = c.ShowNodes(ctx, []string{"aws-spot-6"})
	if err != nil || len(got) != 1 || !got[0].IsDown() || got[0].Reason != reason || got[0].ReasonTime.IsZero() {
		t.Fatalf("after DOWN: %+v %v", got, err)
	}
	if err := c.Update(ctx, []string{"aws-spot-6"}, slurm.StateResume, ""); err != nil {
		t.Fatal(err)
	}
	got, err = c.ShowNodes(ctx, []string{"aws-spot-6"})
	if err != nil || len(got) != 1 || got[0].IsDown() || got[0].Reason != "" {
		t.Fatalf("after RESUME: %+v %v", got, err)
	}

	// Unknown nodes.
	_, err = c.ShowNodes(ctx, []string{"aws-spot-1", "aws-nope-1"})
	var nf *slurm.NotFoundError
	if !errors.As(err, &nf) || len(nf.Names) != 1 || nf.Names[0] != "aws-nope-1" {
		t.Errorf("ShowNodes(unknown) err = %v", err)
	}
	err = c.Update(ctx, []string{"aws-nope-1"}, slurm.StateDown, "x")
	var ce *slurm.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || ce.Stderr != "slurm_update error: Invalid node name specified" {
		t.Errorf("Update(unknown) err = %v", err)
	}
}
