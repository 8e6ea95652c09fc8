package burst

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// view joins Slurm's view of our cloud nodes with EC2's view of our cluster's instances.
type view struct {
	nodes     []slurm.Node                // our nodes (in partitions.json), by name
	byName    map[string]*slurm.Node      // name -> node
	instances []fleet.Instance            // every instance with our cluster tag, any state
	claims    map[string][]fleet.Instance // powered-up node -> live instances that claim it
	named     map[string][]fleet.Instance // any node -> live instances that name it (Name tag or NodeAddr)
	gone      map[string][]fleet.Instance // node -> shutting-down/terminated instances named for it
	unclaimed []fleet.Instance            // live instances no powered-up node claims
	apis      map[string]fleet.EC2API     // region -> client
	marked    map[string]bool             // instances with a spot interruption notice
	skew      map[string]time.Duration    // region -> EC2's clock minus ours (launch times are EC2's)
	cfg       *config.Config
}

// poweredUp reports whether Slurm considers the node to have (or be getting) an instance.
func poweredUp(n *slurm.Node) bool {
	return !n.PoweredDown() && !n.PoweringDown()
}

// loadView reads both sides: one Slurm call for every node, and per region the paginated list of
// every instance carrying our cluster tag.
func loadView(ctx context.Context, d *Deps) (*view, error) {
	all, err := d.Slurm.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading Slurm's nodes: %w", err)
	}
	v := &view{cfg: d.Config, marked: map[string]bool{}, skew: map[string]time.Duration{}, byName: map[string]*slurm.Node{}, claims: map[string][]fleet.Instance{}, named: map[string][]fleet.Instance{}, gone: map[string][]fleet.Instance{}, apis: map[string]fleet.EC2API{}}
	for _, n := range all {
		if _, _, ok := d.Config.LookupNode(n.Name); ok {
			v.nodes = append(v.nodes, n)
		}
	}
	for i := range v.nodes {
		v.byName[v.nodes[i].Name] = &v.nodes[i]
	}

	keys, _ := byRegion(d.Config.NodeGroups())
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.parallel())
	for _, k := range keys {
		g.Go(func() error {
			api, err := d.EC2.Get(gctx, k.region, k.profile)
			if err != nil {
				return fmt.Errorf("EC2 client for %s: %w", k.region, err)
			}
			insts, ec2Now, err := fleet.DescribeAt(gctx, api, k.region, fleet.Filter{Name: "tag:" + fleet.TagCluster, Values: []string{d.Cluster}})
			if err != nil {
				return err
			}
			var skew time.Duration
			if !ec2Now.IsZero() {
				// The Date header has whole seconds: ignore differences below that.
				if skew = ec2Now.Sub(d.now()); skew > -2*time.Second && skew < 2*time.Second {
					skew = 0
				} else if skew > time.Minute || skew < -time.Minute {
					d.log().Warn("this host's clock and EC2's differ; measuring instance ages on EC2's clock", "region", k.region, "ec2_minus_local", skew.Round(time.Second))
				}
			}
			var marked map[string]bool
			if slices.ContainsFunc(insts, func(in fleet.Instance) bool { return in.Live() && in.Lifecycle == "spot" }) {
				if marked, err = fleet.SpotMarked(gctx, api, k.region); err != nil {
					// Notices only let us drain early; the instance-gone rule still holds.
					d.log().Warn("could not read spot interruption notices", "region", k.region, "error", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			v.skew[k.region] = skew
			for id := range marked {
				v.marked[id] = true
			}
			v.apis[k.region] = api
			v.instances = append(v.instances, insts...)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Two profiles in one region list the same instances: keep each once.
	slices.SortFunc(v.instances, func(a, b fleet.Instance) int { return strings.Compare(a.ID, b.ID) })
	v.instances = slices.CompactFunc(v.instances, func(a, b fleet.Instance) bool { return a.ID == b.ID })
	v.join()
	return v, nil
}

// join decides which instance claims which node: its Name tag, or, before the Name tag is set,
// its private IP being the node's NodeAddr.
func (v *view) join() {
	ptrs := make([]*slurm.Node, len(v.nodes))
	for i := range v.nodes {
		ptrs[i] = &v.nodes[i]
	}
	ix := newAddrIndex(v.cfg, ptrs)
	for _, in := range v.instances {
		node := in.Node()
		if _, ok := v.byName[node]; !ok {
			node = ""
		}
		if node == "" && in.Node() == "" {
			node = ix.lookup(in.PrivateIP, in.Group())
		}
		if !in.Live() {
			if node != "" {
				v.gone[node] = append(v.gone[node], in)
			}
			continue
		}
		if node != "" {
			v.named[node] = append(v.named[node], in)
		}
		if node == "" || !poweredUp(v.byName[node]) {
			v.unclaimed = append(v.unclaimed, in)
			continue
		}
		v.claims[node] = append(v.claims[node], in)
	}
	for _, list := range v.gone {
		// Newest first: the most recent instance explains the node's state.
		sort.Slice(list, func(a, b int) bool { return list[a].LaunchTime.After(list[b].LaunchTime) })
	}
}
