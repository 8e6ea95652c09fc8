package burst

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
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
	var with, without []string
	for _, n := range sum.nodes {
		if st, known := sum.slurm[n]; known && !st.IsDown() {
			// Returned to service meanwhile (a reconcile ran at ResumeTimeout too): do not
			// take it down again.
			continue
		}
		if _, ok := found[n]; ok {
			with = append(with, n)
		} else {
			without = append(without, n)
		}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if len(with) > 0 {
		if uerr := d.Slurm.Update(ctx, with, slurm.StateDown, reasonPrefix+"resume failed (node did not register in time); instance terminated"); uerr != nil {
			errs = append(errs, fmt.Errorf("could not leave a reason on %s: %w", nodeList(with), uerr))
		}
	}
	if len(without) > 0 {
		if uerr := d.Slurm.Update(ctx, without, slurm.StateDown, reasonPrefix+"resume failed (node did not register in time); no instance found"); uerr != nil {
			errs = append(errs, fmt.Errorf("could not leave a reason on %s: %w", nodeList(without), uerr))
		}
	}
	return &sum.SuspendSummary, errors.Join(errs...)
}

type terminateSummary struct {
	SuspendSummary
	nodes []string              // our nodes of the request
	slurm map[string]slurm.Node // Slurm's view of every node, read under the locks (nil if unread)
}

// regionFind is the instances found in one (region, profile) for the nodes asked.
type regionFind struct {
	k      regionKey
	api    fleet.EC2API
	groups []*config.NodeGroup
	nodes  []string
	insts  []fleet.Instance
	err    error
}

// terminateNodes finds the live instances of the nodes, within our cluster tag only, and
// terminates them. It returns, per node, the instance ids it terminated. Instances are found by
// their Name tag first; Slurm's NodeAddr is read (one call, every node) only when a node has no
// named instance, or when needStates asks for Slurm's view anyway.
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

		keys, perRegion := byRegion(t.groups)
		finds := make([]*regionFind, len(keys))
		for i, k := range keys {
			f := &regionFind{k: k, groups: perRegion[k]}
			for _, g := range f.groups {
				f.nodes = append(f.nodes, t.byGroup[g]...)
			}
			finds[i] = f
		}
		eachRegion(ctx, d, finds, func(ctx context.Context, f *regionFind) {
			if f.api, f.err = d.EC2.Get(ctx, f.k.region, f.k.profile); f.err == nil {
				f.insts, f.err = findByName(ctx, d, f)
			}
		})

		// Nodes without a named instance may have one not yet named (a resume still tagging):
		// Slurm's NodeAddr finds it.
		var ix *addrIndex
		addrs := map[string]string{}
		if needStates || anyUnnamed(finds) {
			all, err := d.Slurm.Nodes(ctx)
			if err != nil {
				d.log().Warn("could not read NodeAddr from Slurm; finding instances by Name tag only", "error", err)
			} else {
				sum.slurm = map[string]slurm.Node{}
			}
			ptrs := make([]*slurm.Node, len(all))
			for i := range all {
				ptrs[i] = &all[i]
				addrs[all[i].Name] = all[i].Addr
				if sum.slurm != nil {
					sum.slurm[all[i].Name] = all[i]
				}
			}
			ix = newAddrIndex(d.Config, ptrs)
			eachRegion(ctx, d, finds, func(ctx context.Context, f *regionFind) {
				if f.err == nil && len(f.nodes) <= fleet.MaxFilterValues {
					f.err = findByAddress(ctx, d, f, addrs)
				}
			})
		}

		var mu sync.Mutex
		eachRegion(ctx, d, finds, func(ctx context.Context, f *regionFind) {
			got, n, err := terminateFound(ctx, d, f, ix)
			mu.Lock()
			defer mu.Unlock()
			for node, ids := range got {
				found[node] = append(found[node], ids...)
			}
			sum.Terminated += n
			if err != nil {
				errs = append(errs, err)
			}
		})
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

// eachRegion runs fn for every region at once, bounded by d.parallel().
func eachRegion(ctx context.Context, d *Deps, finds []*regionFind, fn func(context.Context, *regionFind)) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.parallel())
	for _, f := range finds {
		g.Go(func() error {
			fn(gctx, f)
			return nil
		})
	}
	_ = g.Wait()
}

// anyUnnamed reports whether a node lacks a named instance, or an unnamed instance turned up.
func anyUnnamed(finds []*regionFind) bool {
	for _, f := range finds {
		named := map[string]bool{}
		for _, in := range f.insts {
			if in.Node() == "" {
				return true
			}
			named[in.Node()] = true
		}
		for _, n := range f.nodes {
			if !named[n] {
				return true
			}
		}
	}
	return false
}

func clusterFilters(d *Deps) []fleet.Filter {
	return []fleet.Filter{
		{Name: "tag:" + fleet.TagCluster, Values: []string{d.Cluster}},
		{Name: "instance-state-name", Values: fleet.LiveStates},
	}
}

// findByName lists the live instances of our cluster named for the nodes, in as few
// DescribeInstances calls as the filter limits allow: one by Name tag when the nodes fit in one
// filter, else every live instance of the node groups, page by page.
func findByName(ctx context.Context, d *Deps, f *regionFind) ([]fleet.Instance, error) {
	if len(f.nodes) > fleet.MaxFilterValues {
		return fleet.Describe(ctx, f.api, f.k.region, append(clusterFilters(d), fleet.Filter{Name: "tag:" + fleet.TagNodeGroup, Values: groupNames(f.groups)})...)
	}
	return fleet.Describe(ctx, f.api, f.k.region, append(clusterFilters(d), fleet.Filter{Name: "tag:" + fleet.TagName, Values: f.nodes})...)
}

// findByAddress adds the live instances whose private IP is the NodeAddr of a node that has no
// named instance.
func findByAddress(ctx context.Context, d *Deps, f *regionFind, addrs map[string]string) error {
	named := map[string]bool{}
	for _, in := range f.insts {
		named[in.Node()] = true
	}
	var ips []string
	for _, n := range f.nodes {
		if a := addrs[n]; !named[n] && a != "" && a != n && isIP(a) {
			ips = append(ips, a)
		}
	}
	if len(ips) == 0 {
		return nil
	}
	byIP, err := fleet.Describe(ctx, f.api, f.k.region, append(clusterFilters(d),
		fleet.Filter{Name: "tag:" + fleet.TagNodeGroup, Values: groupNames(f.groups)},
		fleet.Filter{Name: "private-ip-address", Values: ips})...)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, in := range f.insts {
		seen[in.ID] = true
	}
	for _, in := range byIP {
		if !seen[in.ID] {
			f.insts = append(f.insts, in)
		}
	}
	return nil
}

// terminateFound terminates the found instances that belong to the nodes asked: by Name tag, or
// (unnamed) by an unambiguous NodeAddr.
func terminateFound(ctx context.Context, d *Deps, f *regionFind, ix *addrIndex) (map[string][]string, int, error) {
	if f.err != nil {
		return nil, 0, fmt.Errorf("finding instances in %s: %w", f.k.region, f.err)
	}
	want := map[string]bool{}
	for _, n := range f.nodes {
		want[n] = true
	}
	found := map[string][]string{}
	var ids []string
	for _, in := range f.insts {
		node := in.Node()
		if node == "" && ix != nil {
			node = ix.lookup(in.PrivateIP, in.Group())
		}
		if !want[node] || !in.Live() {
			continue
		}
		found[node] = append(found[node], in.ID)
		ids = append(ids, in.ID)
	}
	if len(ids) == 0 {
		return found, 0, nil
	}
	slices.Sort(ids)
	done, unknown, err := fleet.Terminate(ctx, f.api, f.k.region, ids)
	if len(unknown) > 0 {
		d.log().Warn("EC2 no longer knows some instances", "instances", unknown)
	}
	if err != nil {
		return found, len(done), err
	}
	d.log().Debug("terminated", "region", f.k.region, "instances", len(done))
	return found, len(done), nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.TrimSpace(s))
	return err == nil
}
