package fleet_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// TestDescribeHealthOverTheWire reads health from ec2sim through the SDK: only instances with a
// problem come back, ours only, every page of the three queries, ImpairedSince as EC2 set it, and
// completed events left out.
func TestDescribeHealthOverTheWire(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	setNow := func(t time.Time) { clock.Store(&t) }
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	setNow(now)
	sim := ec2sim.New(ec2sim.Options{Seed: 9, Now: func() time.Time { return *clock.Load() }})
	api := client(t, sim)
	ctx := context.Background()
	var ids []string
	for _, n := range []int{1000, 10} {
		res, err := fleet.Launch(ctx, api, spec(n))
		if err != nil || len(res.InstanceIDs) != n {
			t.Fatalf("launch: %v, %d", err, len(res.InstanceIDs))
		}
		ids = append(ids, res.InstanceIDs...)
	}
	other, err := fleet.Launch(ctx, api, spec(2)) // not ours
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, id := range ids {
		ours[id] = true
	}
	retire := now.Add(72 * time.Hour)
	// 1005 events: two pages of the event query.
	if _, err := sim.ScheduleEvent(ids[:1005], ec2sim.EventSpec{Code: "instance-retirement", NotBefore: retire}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.ScheduleEvent(other.InstanceIDs, ec2sim.EventSpec{Code: "system-reboot", NotBefore: retire}); err != nil {
		t.Fatal(err)
	}
	// A finished reboot window on a healthy instance: listed by EC2 as [Completed], not a problem.
	if _, err := sim.ScheduleEvent(ids[1009:], ec2sim.EventSpec{Code: "system-reboot", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus([]string{ids[0], ids[1006]}, "impaired", ""); err != nil {
		t.Fatal(err)
	}
	impairedAt := now
	now = now.Add(3 * time.Minute)
	setNow(now)
	if err := sim.SetStatus([]string{ids[0], ids[1007]}, "", "impaired"); err != nil {
		t.Fatal(err)
	}
	sim.ResetCounters()
	h, err := fleet.DescribeHealth(ctx, api, "us-east-1", func(id string) bool { return ours[id] })
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1007 {
		t.Fatalf("%d instances with problems, want 1005 with events + 2 impaired", len(h))
	}
	if n := sim.Counters()["DescribeInstanceStatus"].Total; n != 4 {
		t.Errorf("DescribeInstanceStatus calls = %d, want 4 (two pages of events, one per failed check)", n)
	}
	for _, id := range other.InstanceIDs {
		if _, ok := h[id]; ok {
			t.Errorf("instance %s is not ours but was kept", id)
		}
	}
	if _, ok := h[ids[1009]]; ok {
		t.Errorf("completed event reported as a problem: %+v", h[ids[1009]])
	}
	both := h[ids[0]]
	ev, ok := both.NextEvent()
	if !both.Impaired() || !ok || ev.Code != "instance-retirement" || !ev.NotBefore.Equal(retire) || !both.ImpairedSince.Equal(impairedAt) ||
		both.InstanceStatus != "impaired" || both.SystemStatus != "impaired" {
		t.Errorf("impaired instance with an event: %+v", both)
	}
	if got := h[ids[1007]]; !got.Impaired() || got.InstanceStatus != "ok" || !got.ImpairedSince.Equal(now) || len(got.Events) != 0 {
		t.Errorf("system-impaired instance: %+v", got)
	}
	if got := h[ids[5]]; got.Impaired() || len(got.Events) != 1 || got.InstanceStatus != "ok" {
		t.Errorf("instance with an event only: %+v", got)
	}
}
