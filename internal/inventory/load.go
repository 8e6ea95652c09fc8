package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// Slurm is what loading needs of Slurm; *slurm.Client satisfies it.
type Slurm interface {
	Nodes(ctx context.Context) ([]slurm.Node, error)
}

// EC2 hands out one client per Key; *fleet.Clients satisfies it.
type EC2 interface {
	Get(ctx context.Context, region, profile string) (fleet.EC2API, error)
}

var (
	_ Slurm = (*slurm.Client)(nil)
	_ EC2   = (*fleet.Clients)(nil)
)

// Sources is where Load reads from.
type Sources struct {
	Config   *config.Config
	Cluster  string
	Slurm    Slurm
	EC2      EC2
	Log      *slog.Logger
	Now      func() time.Time
	Parallel int // Keys read at once; default 8
}

// SlurmMode says when Load reads Slurm's nodes.
type SlurmMode int

const (
	// SlurmRequired reads Slurm's nodes; Load fails if it cannot.
	SlurmRequired SlurmMode = iota
	// SlurmBestEffort reads Slurm's nodes; on failure only Name tags match (rule 4), with a warning.
	SlurmBestEffort
	// SlurmIfNeeded reads Slurm's nodes only when a node of the scope has no named instance or an
	// unnamed instance turned up (suspend: most nodes have their Name tag), best effort.
	SlurmIfNeeded
)

// Scope is what to load.
type Scope struct {
	// Nodes, when set, limits the instances to those of these nodes: live ones, in their groups'
	// Keys. Otherwise every instance with the cluster tag, any state, in the Keys of Groups.
	Nodes []string
	// Groups whose Keys are read. With Nodes, the nodes' groups.
	Groups []*config.NodeGroup
	// AllRegions also reads every region EC2 lists (DescribeRegions), for each profile of Groups.
	AllRegions bool
	// SpotNotices reads the spot interruption notices of Keys with live spot instances: an
	// optional call, with a small retry budget and a short timeout.
	SpotNotices bool
	Slurm       SlurmMode
}

// NodesScope is the scope of a command given nodes (resume, suspend, resume-fail).
func NodesScope(cfg *config.Config, nodes []string, mode SlurmMode) Scope {
	s := Scope{Nodes: nodes, Slurm: mode}
	for _, g := range cfg.NodeGroups() {
		if slices.ContainsFunc(nodes, func(n string) bool { c, _, ok := cfg.LookupNode(n); return ok && c == g }) {
			s.Groups = append(s.Groups, g)
		}
	}
	return s
}

// ClusterScope is every configured group (reconcile, status).
func ClusterScope(cfg *config.Config, allRegions bool) Scope {
	return Scope{Groups: cfg.NodeGroups(), AllRegions: allRegions, SpotNotices: true, Slurm: SlurmRequired}
}

// Keys returns the distinct Keys of groups, in order.
func Keys(groups []*config.NodeGroup) []Key {
	var out []Key
	for _, g := range groups {
		if k := KeyOf(g); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// Load reads Slurm's nodes and EC2's instances of the scope, one Key at a time in parallel, and
// joins them. A Key that cannot be read is recorded in the view (rule 11); Load fails only when
// Slurm's nodes are required and cannot be read, or ctx ends.
func Load(ctx context.Context, src Sources, sc Scope) (*View, error) {
	d, err := Read(ctx, src, sc)
	if err != nil {
		return nil, err
	}
	return Join(src.Config, d), nil
}

// Read is Load without the join.
func Read(ctx context.Context, src Sources, sc Scope) (Data, error) {
	log := src.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := src.Now
	if now == nil {
		now = time.Now
	}
	par := src.Parallel
	if par <= 0 {
		par = 8
	}
	d := Data{Failed: map[Key]error{}, Skew: map[Key]time.Duration{}, Marked: map[string]bool{}}
	if sc.Slurm != SlurmIfNeeded {
		nodes, err := src.Slurm.Nodes(ctx)
		switch {
		case err != nil && sc.Slurm == SlurmRequired:
			return d, fmt.Errorf("reading Slurm's nodes: %w", err)
		case err != nil:
			log.Warn("could not read Slurm's nodes; matching instances by Name tag only", "err", err)
		default:
			d.Nodes = nodes
			if d.Nodes == nil {
				d.Nodes = []slurm.Node{}
			}
		}
	}

	keys := Keys(sc.Groups)
	groupsOf := map[Key][]string{}
	nodesOf := map[Key][]string{}
	for _, g := range sc.Groups {
		groupsOf[KeyOf(g)] = append(groupsOf[KeyOf(g)], g.Name())
	}
	for _, n := range sc.Nodes {
		if g, _, ok := src.Config.LookupNode(n); ok {
			nodesOf[KeyOf(g)] = append(nodesOf[KeyOf(g)], n)
		}
	}
	if sc.AllRegions {
		keys = append(keys, otherRegions(ctx, src, keys, d.Failed, log)...)
	}

	var mu sync.Mutex
	add := func(k Key, insts []fleet.Instance, ec2Now time.Time, marked map[string]bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			d.Failed[k] = err
			return
		}
		d.Loaded = append(d.Loaded, k)
		for _, in := range insts {
			d.Instances = append(d.Instances, Listed{Instance: in, Key: k})
		}
		d.Skew[k] = skew(ec2Now, now(), k, log)
		for id := range marked {
			d.Marked[id] = true
		}
	}
	cluster := fleet.Filter{Name: "tag:" + fleet.TagCluster, Values: []string{src.Cluster}}
	live := fleet.Filter{Name: "instance-state-name", Values: fleet.LiveStates}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, k := range keys {
		g.Go(func() error {
			api, err := src.EC2.Get(gctx, k.Region, k.Profile)
			if err != nil {
				add(k, nil, time.Time{}, nil, fmt.Errorf("EC2 client for %s: %w", k, err))
				return nil
			}
			var insts []fleet.Instance
			var at time.Time
			switch nodes := nodesOf[k]; {
			case sc.Nodes == nil:
				insts, at, err = fleet.DescribeAt(gctx, api, k.Region, cluster)
			case len(nodes) <= fleet.MaxFilterValues && sc.Slurm == SlurmIfNeeded:
				// Few nodes: ask by Name tag, the cheapest question on a large cluster.
				insts, at, err = fleet.DescribeAt(gctx, api, k.Region, cluster, live, fleet.Filter{Name: "tag:" + fleet.TagName, Values: nodes})
			default:
				insts, at, err = fleet.DescribeAt(gctx, api, k.Region, cluster, live, fleet.Filter{Name: "tag:" + fleet.TagNodeGroup, Values: groupsOf[k]})
			}
			var marked map[string]bool
			if err == nil && sc.SpotNotices && slices.ContainsFunc(insts, func(in fleet.Instance) bool { return in.Live() && in.Lifecycle == "spot" }) {
				marked = spotNotices(gctx, api, k, log)
			}
			add(k, insts, at, marked, err)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return d, err
	}
	if err := ctx.Err(); err != nil {
		return d, err
	}
	if sc.Slurm == SlurmIfNeeded {
		if err := byAddress(ctx, src, sc, &d, nodesOf, groupsOf, log); err != nil {
			return d, err
		}
	}
	SortKeys(d.Loaded)
	return d, nil
}

// byAddress reads Slurm when a node of the scope has no named instance or an unnamed one turned
// up, and adds the live instances at those nodes' NodeAddr (rule 4, an instance not yet named).
func byAddress(ctx context.Context, src Sources, sc Scope, d *Data, nodesOf map[Key][]string, groupsOf map[Key][]string, log *slog.Logger) error {
	named := map[string]bool{}
	unnamed := false
	for _, in := range d.Instances {
		if in.Node() == "" {
			unnamed = true
		}
		named[in.Node()] = true
	}
	if !unnamed && !slices.ContainsFunc(sc.Nodes, func(n string) bool { return !named[n] }) {
		return nil
	}
	nodes, err := src.Slurm.Nodes(ctx)
	if err != nil {
		log.Warn("could not read NodeAddr from Slurm; finding instances by Name tag only", "err", err)
		return nil
	}
	d.Nodes = nodes
	if d.Nodes == nil {
		d.Nodes = []slurm.Node{}
	}
	addr := map[string]string{}
	for _, n := range nodes {
		addr[n.Name] = n.Addr
	}
	seen := map[string]bool{}
	for _, in := range d.Instances {
		seen[in.ID] = true
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(src.Parallel, 1))
	for k, list := range nodesOf {
		if _, bad := d.Failed[k]; bad || len(list) > fleet.MaxFilterValues {
			continue // a larger scope was read by node group, unnamed instances included
		}
		var ips []string
		for _, n := range list {
			if a := addr[n]; !named[n] && a != "" && a != n && IsIP(a) {
				ips = append(ips, a)
			}
		}
		if len(ips) == 0 {
			continue
		}
		g.Go(func() error {
			api, err := src.EC2.Get(gctx, k.Region, k.Profile)
			if err == nil {
				var got []fleet.Instance
				got, err = fleet.Describe(gctx, api, k.Region,
					fleet.Filter{Name: "tag:" + fleet.TagCluster, Values: []string{src.Cluster}},
					fleet.Filter{Name: "instance-state-name", Values: fleet.LiveStates},
					fleet.Filter{Name: "tag:" + fleet.TagNodeGroup, Values: groupsOf[k]},
					fleet.Filter{Name: "private-ip-address", Values: ips})
				mu.Lock()
				for _, in := range got {
					if !seen[in.ID] {
						seen[in.ID] = true
						d.Instances = append(d.Instances, Listed{Instance: in, Key: k})
					}
				}
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				d.Failed[k] = err
				mu.Unlock()
			}
			return nil
		})
	}
	return g.Wait()
}

// otherRegions lists, for each profile of keys, the regions EC2 lists that keys lack.
func otherRegions(ctx context.Context, src Sources, keys []Key, failed map[Key]error, log *slog.Logger) []Key {
	var out []Key
	done := map[string]bool{}
	for _, k := range keys {
		if done[k.Profile] {
			continue
		}
		done[k.Profile] = true
		api, err := src.EC2.Get(ctx, k.Region, k.Profile)
		var regions []string
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, fleet.OptionalTimeout)
			regions, err = fleet.Regions(cctx, fleet.AsOptional(api))
			cancel()
		}
		if err != nil {
			sweep := Key{Region: "*", Profile: k.Profile}
			failed[sweep] = fmt.Errorf("listing regions for the sweep through %s: %w", k, err)
			log.Error("could not list EC2's regions; sweeping the configured ones only", "profile", k.Profile, "err", err)
			continue
		}
		for _, r := range regions {
			if nk := (Key{Region: r, Profile: k.Profile}); !slices.Contains(keys, nk) && !slices.Contains(out, nk) {
				out = append(out, nk)
			}
		}
	}
	return out
}

// spotNotices reads the spot interruption notices: optional (the instance-gone rule holds
// without them), so a small retry budget and a short timeout.
func spotNotices(ctx context.Context, api fleet.EC2API, k Key, log *slog.Logger) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, fleet.OptionalTimeout)
	defer cancel()
	marked, err := fleet.SpotMarked(ctx, fleet.AsOptional(api), k.Region)
	if err != nil {
		log.Warn("could not read spot interruption notices", "region", k.Region, "profile", k.Profile, "err", err)
	}
	return marked
}

// skew is EC2's clock minus ours; the Date header has whole seconds, so below 2 s it is noise.
func skew(ec2Now, ours time.Time, k Key, log *slog.Logger) time.Duration {
	if ec2Now.IsZero() {
		return 0
	}
	s := ec2Now.Sub(ours)
	if s > -2*time.Second && s < 2*time.Second {
		return 0
	}
	if s > time.Minute || s < -time.Minute {
		log.Warn("this host's clock and EC2's differ; measuring instance ages on EC2's clock", "region", k.Region, "ec2_minus_local", s.Round(time.Second))
	}
	return s
}

// Err joins the Keys' failures into one error naming each, nil when none failed.
func (v *View) Err() error {
	keys := make([]Key, 0, len(v.data.Failed))
	for k := range v.data.Failed {
		keys = append(keys, k)
	}
	SortKeys(keys)
	var errs []error
	for _, k := range keys {
		errs = append(errs, fmt.Errorf("EC2 %s unreadable (its groups were skipped, every other group was served): %w", k, v.data.Failed[k]))
	}
	return errors.Join(errs...)
}
