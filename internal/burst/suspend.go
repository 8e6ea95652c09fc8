package burst

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// SuspendSummary counts what a suspend or resume-fail did.
type SuspendSummary struct {
	Asked      int
	Terminated int // instances terminated
	NoInstance int // nodes that had no live instance
	Unknown    int
	Duration   time.Duration
}

// Suspend terminates the instances of the nodes of the hostlist expr (SuspendProgram).
func Suspend(ctx context.Context, d *Deps, expr string) (*SuspendSummary, error) {
	sum, _, err := terminateNodes(ctx, d, expr, "suspend", false)
	if sum == nil {
		return nil, err
	}
	return &sum.SuspendSummary, err
}

// ResumeFail terminates what was launched for nodes that failed to resume (ResumeFailProgram:
// Slurm calls it at ResumeTimeout and does not call SuspendProgram for them) and leaves each node
// a reason saying so. Reconcile later returns the nodes to power saving.
func ResumeFail(ctx context.Context, d *Deps, expr string) (*SuspendSummary, error) {
	sum, found, err := terminateNodes(ctx, d, expr, "resume-fail", true)
	if sum == nil {
		return nil, err
	}
	var with, without, unknown []string
	for _, n := range sum.nodes {
		if st := sum.slurmNode(n); st != nil && !st.IsDown() {
			// Returned to service meanwhile (a reconcile ran at ResumeTimeout too): do not
			// take it down again.
			continue
		}
		if _, ok := found[n]; ok {
			with = append(with, n)
		} else if sum.view != nil && sum.view.Unknown(n) {
			unknown = append(unknown, n)
		} else {
			without = append(without, n)
		}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	// A boot that failed counts towards its group's back-off (backoff.go): the reason left on
	// the nodes is the group's record.
	if failed := append(with, without...); len(failed) > 0 {
		if uerr := d.recordBootFailures(ctx, failed, sum.view, found); uerr != nil {
			errs = append(errs, uerr)
		}
	}
	if len(unknown) > 0 {
		if uerr := d.Slurm.Update(ctx, unknown, slurm.StateDown, reasonPrefix+"resume failed (node did not register in time); EC2 unreachable, instance not checked"); uerr != nil {
			errs = append(errs, fmt.Errorf("could not leave a reason on %s: %w", nodeList(unknown), uerr))
		}
	}
	return &sum.SuspendSummary, errors.Join(errs...)
}

type terminateSummary struct {
	SuspendSummary
	nodes []string        // our nodes of the request
	view  *inventory.View // the inventory read under the locks (nil when no node was ours)
}

// slurmNode is Slurm's view of a node as read under the locks, nil if unread or unknown.
func (s *terminateSummary) slurmNode(name string) *slurm.Node {
	if s.view == nil || !s.view.SlurmRead() {
		return nil
	}
	return s.view.Node(name)
}

// terminateNodes terminates the live instances of the nodes (inventory rule 4: Name tag, else an
// unambiguous NodeAddr), within our cluster tag only, through the client of the (region,
// profile) that listed each. It returns, per node, the instance ids it terminated. needStates
// asks for Slurm's view even when every node has a named instance.
func terminateNodes(ctx context.Context, d *Deps, expr, verb string, needStates bool) (*terminateSummary, map[string][]string, error) {
	start := d.now()
	t, err := d.resolve(expr)
	if err != nil {
		return nil, nil, err
	}
	sum := &terminateSummary{SuspendSummary: SuspendSummary{Asked: len(t.names), Unknown: len(t.unknown)}}
	for _, g := range t.groups {
		sum.nodes = append(sum.nodes, t.byGroup[g]...)
	}
	found := map[string][]string{}
	var errs []error

	if len(t.groups) > 0 {
		// Under the group locks, a resume of these nodes is either finished (its addresses are
		// in Slurm) or not started.
		unlock, err := d.lockGroups(ctx, groupNames(t.groups))
		if err != nil {
			return nil, nil, err
		}
		defer unlock()

		mode := inventory.SlurmIfNeeded
		if needStates {
			mode = inventory.SlurmBestEffort
		}
		v, err := inventory.Load(ctx, d.sources(), inventory.NodesScope(d.Config, sum.nodes, mode))
		if err != nil {
			return nil, nil, err
		}
		sum.view = v
		if err := v.Err(); err != nil {
			errs = append(errs, err)
		}
		ids := map[inventory.Key][]string{}
		for _, n := range sum.nodes {
			for _, in := range v.Of(n) {
				found[n] = append(found[n], in.ID)
				ids[in.Key] = append(ids[in.Key], in.ID)
			}
		}
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(d.parallel())
		for k, list := range ids {
			g.Go(func() error {
				n, err := terminateIn(gctx, d, k, list)
				mu.Lock()
				defer mu.Unlock()
				sum.Terminated += n
				if err != nil {
					errs = append(errs, err)
				}
				return nil
			})
		}
		_ = g.Wait()
	}
	var none []string
	for _, n := range sum.nodes {
		if _, ok := found[n]; !ok {
			none = append(none, n)
		}
	}
	sum.NoInstance = len(none)
	if len(none) > 0 {
		d.log().Info("nodes had no live instance", "nodes", nodeList(none), "count", len(none))
	}
	sum.Duration = d.now().Sub(start)
	d.log().Info(verb+" done", "asked", sum.Asked, "terminated", sum.Terminated, "no_instance", sum.NoInstance,
		"unknown", sum.Unknown, "failed", len(errs) > 0, "seconds", fmt.Sprintf("%.2f", sum.Duration.Seconds()))
	return sum, found, errors.Join(errs...)
}

// terminateIn terminates instances of one (region, profile).
func terminateIn(ctx context.Context, d *Deps, k inventory.Key, ids []string) (int, error) {
	api, err := d.EC2.Get(ctx, k.Region, k.Profile)
	if err != nil {
		return 0, fmt.Errorf("EC2 client for %s: %w", k, err)
	}
	slices.Sort(ids)
	done, unknown, err := fleet.Terminate(ctx, api, k.Region, ids)
	if len(unknown) > 0 {
		d.log().Warn("EC2 no longer knows some instances", "instances", unknown)
	}
	if err != nil {
		return len(done), err
	}
	d.log().Debug("terminated", "region", k.Region, "profile", k.Profile, "instances", len(done))
	return len(done), nil
}
