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
	sum, _, err := terminateNodes(ctx, d, expr, "suspend")
	if sum == nil {
		return nil, err
	}
	return &sum.SuspendSummary, err
}

// ResumeFail terminates what was launched for nodes that failed to resume (ResumeFailProgram:
// Slurm calls it at ResumeTimeout and does not call SuspendProgram for them) and leaves each node
// a reason saying so. Reconcile later returns the nodes to power saving.
func ResumeFail(ctx context.Context, d *Deps, expr string) (*SuspendSummary, error) {
	sum, found, err := terminateNodes(ctx, d, expr, "resume-fail")
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

// terminateNodes finds the live instances of the nodes, within our cluster tag only, and
// terminates them. It returns, per node, the instance ids it terminated.
func terminateNodes(ctx context.Context, d *Deps, expr, verb string) (*terminateSummary, map[string][]string, error) {
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

		// NodeAddr of each node: the instance's private IP, known to Slurm before the Name tag is.
		// Every node is read (one call) so that a stale address shared with another node is
		// recognised as ambiguous rather than matched.
		all, err := d.Slurm.Nodes(ctx)
		if err != nil {
			d.log().Warn("could not read NodeAddr from Slurm; finding instances by Name tag only", "error", err)
		}
		nodes := make([]*slurm.Node, len(all))
		for i := range all {
			nodes[i] = &all[i]
		}
		ix := newAddrIndex(d.Config, nodes)
		addrs := map[string]string{}
		if err == nil {
			sum.slurm = map[string]slurm.Node{}
		}
		for _, n := range all {
			addrs[n.Name] = n.Addr
			if sum.slurm != nil {
				sum.slurm[n.Name] = n
			}
		}
		keys, perRegion := byRegion(t.groups)
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(d.parallel())
		for _, k := range keys {
			g.Go(func() error {
				got, n, err := terminateRegion(gctx, d, k, perRegion[k], t, addrs, ix)
				mu.Lock()
				defer mu.Unlock()
				for node, ids := range got {
					found[node] = append(found[node], ids...)
				}
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

// terminateRegion finds and terminates the live instances of nodes in one (region, profile).
func terminateRegion(ctx context.Context, d *Deps, k regionKey, groups []*config.NodeGroup, t *target, addrs map[string]string, ix *addrIndex) (map[string][]string, int, error) {
	api, err := d.EC2.Get(ctx, k.region, k.profile)
	if err != nil {
		return nil, 0, fmt.Errorf("EC2 client for %s: %w", k.region, err)
	}
	var nodes []string
	for _, g := range groups {
		nodes = append(nodes, t.byGroup[g]...)
	}
	live, err := findInstances(ctx, d, api, k.region, groups, nodes, addrs)
	if err != nil {
		return nil, 0, err
	}
	want := map[string]bool{}
	for _, n := range nodes {
		want[n] = true
	}
	found := map[string][]string{}
	var ids []string
	for _, in := range live {
		node := in.Node()
		if node == "" {
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
	done, unknown, err := fleet.Terminate(ctx, api, k.region, ids)
	if len(unknown) > 0 {
		d.log().Warn("EC2 no longer knows some instances", "instances", unknown)
	}
	if err != nil {
		return found, len(done), err
	}
	d.log().Debug("terminated", "region", k.region, "instances", len(done))
	return found, len(done), nil
}

// findInstances lists the live instances of our cluster that may belong to nodes, in as few
// DescribeInstances calls as the filter limits allow: by Name tag (one call when the nodes fit in
// one filter), then by private IP only for nodes not found by Name; for more nodes than one filter
// takes, every live instance of the node groups, page by page.
func findInstances(ctx context.Context, d *Deps, api fleet.EC2API, region string, groups []*config.NodeGroup, nodes []string, addrs map[string]string) ([]fleet.Instance, error) {
	base := []fleet.Filter{
		{Name: "tag:" + fleet.TagCluster, Values: []string{d.Cluster}},
		{Name: "instance-state-name", Values: fleet.LiveStates},
	}
	if len(nodes) > fleet.MaxFilterValues {
		return fleet.Describe(ctx, api, region, append(base, fleet.Filter{Name: "tag:" + fleet.TagNodeGroup, Values: groupNames(groups)})...)
	}
	byName, err := fleet.Describe(ctx, api, region, append(base, fleet.Filter{Name: "tag:" + fleet.TagName, Values: nodes})...)
	if err != nil {
		return nil, err
	}
	// Only nodes whose instance was not found by Name (tag not set yet) are looked up by address.
	named := map[string]bool{}
	for _, in := range byName {
		named[in.Node()] = true
	}
	var ips []string
	for _, n := range nodes {
		if a := addrs[n]; !named[n] && a != "" && a != n && isIP(a) {
			ips = append(ips, a)
		}
	}
	if len(ips) == 0 {
		return byName, nil
	}
	byIP, err := fleet.Describe(ctx, api, region, append(base,
		fleet.Filter{Name: "tag:" + fleet.TagNodeGroup, Values: groupNames(groups)},
		fleet.Filter{Name: "private-ip-address", Values: ips})...)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := byName
	for _, in := range byName {
		seen[in.ID] = true
	}
	for _, in := range byIP {
		if !seen[in.ID] {
			out = append(out, in)
		}
	}
	return out, nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.TrimSpace(s))
	return err == nil
}
