package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EventCodes are the codes of EC2's scheduled events (EC2 API Reference, InstanceStatusEvent):
// each means EC2 will reboot, stop or retire the instance or its host in a window that starts at
// NotBefore.
var EventCodes = []string{"instance-retirement", "instance-stop", "system-reboot", "system-maintenance", "instance-reboot"}

// Status check values (EC2 API Reference, InstanceStatusSummary).
const (
	StatusOK       = "ok"
	StatusImpaired = "impaired"
)

// Event is one scheduled event of an instance.
type Event struct {
	ID, Code, Description string
	NotBefore, NotAfter   time.Time // NotAfter may be zero
}

// Health is what EC2 says about one instance's health. Only instances with a problem have one.
type Health struct {
	InstanceID     string
	InstanceStatus string // ok | impaired | initializing | insufficient-data | not-applicable
	SystemStatus   string
	// ImpairedSince is when the earliest failing check started failing, as EC2 records it
	// (InstanceStatusDetails.ImpairedSince: "the time when a status check failed"). It lets the
	// grace period span reconcile runs without a state file. Zero when EC2 gave none.
	ImpairedSince time.Time
	Events        []Event // pending events only: completed and canceled ones are left out
}

// Impaired reports a failed instance or system status check.
func (h Health) Impaired() bool {
	return h.InstanceStatus == StatusImpaired || h.SystemStatus == StatusImpaired
}

// NextEvent is the pending event that starts first, if any.
func (h Health) NextEvent() (Event, bool) {
	if len(h.Events) == 0 {
		return Event{}, false
	}
	first := h.Events[0]
	for _, e := range h.Events[1:] {
		if e.NotBefore.Before(first.NotBefore) {
			first = e
		}
	}
	return first, true
}

// healthQueries are the DescribeInstanceStatus filters that together find every instance with a
// problem. EC2 ANDs filters of different names, so each problem is its own query; each answer
// holds only the instances with that problem, whatever the size of the fleet.
var healthQueries = [][]types.Filter{
	{{Name: aws.String("event.code"), Values: EventCodes}},
	{{Name: aws.String("instance-status.status"), Values: []string{StatusImpaired}}},
	{{Name: aws.String("system-status.status"), Values: []string{StatusImpaired}}},
}

// DescribeHealth returns the health of the instances of a region that have a scheduled event or a
// failed status check, keyed by instance id, keeping only those ours says are ours (nil keeps
// all). It makes one paginated DescribeInstanceStatus query (IncludeAllInstances, MaxResults
// 1000) per kind of problem, three in all, at the same time.
func DescribeHealth(ctx context.Context, api EC2API, region string, ours func(id string) bool) (map[string]Health, error) {
	found := make([][]types.InstanceStatus, len(healthQueries))
	g, gctx := errgroup.WithContext(ctx)
	for i, fs := range healthQueries {
		g.Go(func() error {
			in := &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), MaxResults: aws.Int32(MaxIDsPerCall), Filters: fs}
			p := ec2.NewDescribeInstanceStatusPaginator(api, in)
			for p.HasMorePages() {
				page, err := p.NextPage(gctx)
				if err != nil {
					return fmt.Errorf("reading instance health (DescribeInstanceStatus) in %s: %w", region, err)
				}
				found[i] = append(found[i], page.InstanceStatuses...)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]Health{}
	for _, list := range found {
		for _, st := range list {
			id := aws.ToString(st.InstanceId)
			if _, seen := out[id]; seen || id == "" || (ours != nil && !ours(id)) {
				continue
			}
			// An event query also finds instances whose only events are over.
			if h := healthOf(st); h.Impaired() || len(h.Events) > 0 {
				out[id] = h
			}
		}
	}
	return out, nil
}

// healthOf converts one DescribeInstanceStatus item.
func healthOf(st types.InstanceStatus) Health {
	h := Health{InstanceID: aws.ToString(st.InstanceId)}
	for _, sum := range []*types.InstanceStatusSummary{st.InstanceStatus, st.SystemStatus} {
		if sum == nil {
			continue
		}
		for _, d := range sum.Details {
			if d.Status == types.StatusTypeFailed && d.ImpairedSince != nil {
				if t := *d.ImpairedSince; h.ImpairedSince.IsZero() || t.Before(h.ImpairedSince) {
					h.ImpairedSince = t
				}
			}
		}
	}
	if st.InstanceStatus != nil {
		h.InstanceStatus = string(st.InstanceStatus.Status)
	}
	if st.SystemStatus != nil {
		h.SystemStatus = string(st.SystemStatus.Status)
	}
	for _, e := range st.Events {
		desc := aws.ToString(e.Description)
		// A finished event stays listed for up to a week, its description starting "[Completed]"
		// (EC2 API Reference, InstanceStatusEvent).
		if strings.HasPrefix(desc, "[Completed]") {
			continue
		}
		h.Events = append(h.Events, Event{ID: aws.ToString(e.InstanceEventId), Code: string(e.Code), Description: desc,
			NotBefore: aws.ToTime(e.NotBefore), NotAfter: aws.ToTime(e.NotAfter)})
	}
	return h
}
