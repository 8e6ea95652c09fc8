package main

import (
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/latency"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// EC2 limits the bounds use (the same as slurm-ec2's: internal/fleet).
const (
	maxFleet      = 1000 // instances per CreateFleet instant (the steady state's setup)
	maxTerminate  = 1000 // ids per TerminateInstances
	maxPage       = 1000 // DescribeInstances MaxResults
	maxNameFilter = 200  // values per DescribeInstances filter
)

// boundModel computes lower bounds from ec2sim's own model: the latency of each call at the
// model's mean (jitter 0), and the token buckets' earliest admission time
// (throttle.Config.MinDuration), per region, regions in parallel. Slurm's own time (scontrol) and
// our process are not in the bound: it is what EC2 alone allows.
type boundModel struct {
	lat latency.Model
	thr *throttle.Config
}

func newBoundModel(p profile) (boundModel, error) {
	m, err := latency.Parse(p.Latency)
	if err != nil {
		return boundModel{}, err
	}
	b := boundModel{lat: m.WithJitter(0)}
	if p.Throttle == "aws" {
		cfg := throttle.AWS()
		b.thr = &cfg
	}
	return b, nil
}

func (b boundModel) l(action string, n int) time.Duration { return b.lat.For(action, n) }

// admitLast is the earliest time the last of calls can pass the buckets, starting full.
func (b boundModel) admitLast(calls []throttle.Call) time.Duration {
	if b.thr == nil || len(calls) == 0 {
		return 0
	}
	return b.thr.MinDuration(calls)
}

// chunks splits n into pieces of at most size.
func chunks(n, size int) []int {
	var out []int
	for n > 0 {
		c := min(n, size)
		out = append(out, c)
		n -= c
	}
	return out
}

// parallelCalls is the bound for independent calls of one action (sizes given) that may all be
// in flight at once: the slowest call, or the last admission plus the quickest call.
func (b boundModel) parallelCalls(region, action string, sizes []int, resources bool) time.Duration {
	if len(sizes) == 0 {
		return 0
	}
	var calls []throttle.Call
	var slowest, quickest time.Duration = 0, -1
	for _, n := range sizes {
		c := throttle.Call{Action: action, Region: region}
		if resources {
			c.N = n
		}
		calls = append(calls, c)
		d := b.l(action, n)
		slowest = max(slowest, d)
		if quickest < 0 || d < quickest {
			quickest = d
		}
	}
	return max(slowest, b.admitLast(calls)+quickest)
}

// resumeBound is the lower bound for resuming groups (instances per node group) of one region:
// one filtered DescribeInstances for instances the nodes may already have, then per node group
// CreateFleet instant in the batches resume sends (fleet.SplitLaunch: at most 250, sent together;
// resource bucket shared with RunInstances) and a
// DescribeInstances by id for the private IPs (CreateFleet returns ids only) -- addresses are
// known when the last of those returns. The exit ("Name tags done") additionally needs one
// CreateTags per instance (the Name tag differs per instance), admitted by the CreateTags bucket
// (100, then 10 a second) from the moment the first CreateFleet returns: its answer holds the
// instance ids, which is all a Name tag needs. That is "CreateFleet's time plus what the
// CreateTags bucket allows".
func (b boundModel) resumeBound(region string, groups []int) (addr, exit time.Duration) {
	var sizes []int
	n := 0
	for _, g := range groups {
		sizes = append(sizes, fleet.SplitLaunch(g)...)
		n += g
	}
	if n == 0 {
		return 0, 0
	}
	pre := b.l("DescribeInstances", 0)
	var calls []throttle.Call
	var slowest, quickest, firstFleet time.Duration = 0, -1, -1
	for _, s := range sizes {
		calls = append(calls, throttle.Call{Action: "CreateFleet", N: s, Region: region})
		d := b.l("CreateFleet", s) + b.l("DescribeInstances", s)
		slowest = max(slowest, d)
		if quickest < 0 || d < quickest {
			quickest = d
		}
		if f := b.l("CreateFleet", s); firstFleet < 0 || f < firstFleet {
			firstFleet = f
		}
	}
	addr = pre + max(slowest, b.admitLast(calls)+quickest)
	tags := make([]throttle.Call, n)
	for i := range tags {
		tags[i] = throttle.Call{Action: "CreateTags", Region: region}
	}
	exit = max(addr, pre+firstFleet+b.admitLast(tags)+b.l("CreateTags", 1))
	return addr, exit
}

// describePages is the time to read n instances page by page (pages are sequential: each needs
// the previous one's token).
func (b boundModel) describePages(n int) time.Duration {
	if n == 0 {
		return b.l("DescribeInstances", 0)
	}
	var d time.Duration
	for _, p := range chunks(n, maxPage) {
		d += b.l("DescribeInstances", p)
	}
	return d
}

// suspendBound is the lower bound for terminating n nodes' instances in one region: their ids
// must be found (one filtered DescribeInstances, paginated), then TerminateInstances in batches
// of 1,000 (request bucket 100/5, resource bucket 1,000/20).
func (b boundModel) suspendBound(region string, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return b.describePages(n) + b.parallelCalls(region, "TerminateInstances", chunks(n, maxTerminate), true)
}

// reconcileBound is the lower bound for reading every instance of the cluster in one region
// (paginated, filtered by the cluster tag) when nothing needs doing.
func (b boundModel) reconcileBound(n int) time.Duration { return b.describePages(n) }

// minDescribePages is the fewest DescribeInstances calls that find n nodes' instances: by Name
// tag when n fits one filter (one page), else by node-group tag, one call per 1,000-instance page.
func minDescribePages(n int) int {
	if n == 0 {
		return 0
	}
	return (n + maxPage - 1) / maxPage
}
