// Package burst holds slurm-ec2's use cases (resume, suspend, resume-fail, reconcile, status):
// it joins Slurm's view of the cloud nodes with EC2's view of our instances. EC2 (tags, and private
// IPs matched to Slurm's NodeAddr) is the only record of which instance is which node, so every
// program here is safe to kill at any point.
package burst

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// Slurm is what burst needs of Slurm; *slurm.Client satisfies it.
type Slurm interface {
	Nodes(ctx context.Context) ([]slurm.Node, error)
	ShowNodes(ctx context.Context, names []string) ([]slurm.Node, error)
	SetAddresses(ctx context.Context, addrs []slurm.Address) error
	Update(ctx context.Context, names []string, state slurm.State, reason string) error
}

var _ Slurm = (*slurm.Client)(nil)

// EC2 hands out one EC2 client per (region, profile); *fleet.Clients satisfies it.
type EC2 interface {
	Get(ctx context.Context, region, profile string) (fleet.EC2API, error)
}

var _ EC2 = (*fleet.Clients)(nil)

// Deps is everything a use case needs.
type Deps struct {
	Config  *config.Config
	Cluster string // resolved ClusterName
	Slurm   Slurm
	EC2     EC2
	Log     *slog.Logger
	Now     func() time.Time
	// LockDir holds the per-node-group lock files that serialise resume, suspend and reconcile
	// on the same group. "" disables locking (tests of a single process).
	LockDir string
	// Parallel bounds concurrent EC2 work (node groups, chunks). Default 8.
	Parallel int
	// TagsPerSecond paces per-instance CreateTags calls; 0 means fleet.DefaultTagRate, below
	// EC2's CreateTags refill rate.
	TagsPerSecond float64
	// Planners add rules to reconcile's plan (see Planner); ResumeGate holds nodes back from a
	// launch (see ResumeGate). Both are optional.
	Planners   []Planner
	ResumeGate ResumeGate
}

// sources is what inventory.Load reads from.
func (d *Deps) sources() inventory.Sources {
	return inventory.Sources{Config: d.Config, Cluster: d.Cluster, Slurm: d.Slurm, EC2: d.EC2, Log: d.log(), Now: d.now, Parallel: d.parallel()}
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deps) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// resumeTimeout is Slurm's ResumeTimeout as config.json's SlurmConf gives it (Slurm's default,
// 60 s, when it does not).
func (d *Deps) resumeTimeout() time.Duration {
	if v, ok := config.Lookup(d.Config.SlurmConf, "ResumeTimeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 60 * time.Second
}

func (d *Deps) parallel() int {
	if d.Parallel > 0 {
		return d.Parallel
	}
	return 8
}

// target is the set of nodes a command was given, split by node group.
type target struct {
	names   []string                       // every name, in the order given
	groups  []*config.NodeGroup            // groups with nodes, in config order
	byGroup map[*config.NodeGroup][]string // nodes of each group, by index
	index   map[string]int                 // node name -> index in its group
	unknown []string                       // names that are not ours
}

// resolve expands a hostlist and maps each name to its node group. Names that are not ours are
// logged as errors and kept in unknown.
func (d *Deps) resolve(expr string) (*target, error) {
	names, err := hostlist.Expand(expr)
	if err != nil {
		return nil, fmt.Errorf("reading the node list %q: %w", expr, err)
	}
	t := &target{byGroup: map[*config.NodeGroup][]string{}, index: map[string]int{}}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		t.names = append(t.names, n)
		g, i, ok := d.Config.LookupNode(n)
		if !ok {
			t.unknown = append(t.unknown, n)
			continue
		}
		if _, ok := t.byGroup[g]; !ok {
			t.groups = append(t.groups, g)
		}
		t.byGroup[g] = append(t.byGroup[g], n)
		t.index[n] = i
	}
	for _, g := range t.groups {
		nodes := t.byGroup[g]
		sort.Slice(nodes, func(a, b int) bool { return t.index[nodes[a]] < t.index[nodes[b]] })
	}
	// Keep config order for groups.
	order := map[*config.NodeGroup]int{}
	for i, g := range d.Config.NodeGroups() {
		order[g] = i
	}
	slices.SortFunc(t.groups, func(a, b *config.NodeGroup) int { return order[a] - order[b] })
	if len(t.unknown) > 0 {
		d.log().Error("nodes not defined in partitions.json; skipped", "nodes", nodeList(t.unknown), "count", len(t.unknown))
	}
	return t, nil
}

// byRegion splits groups by (region, profile), keeping order.
func byRegion(groups []*config.NodeGroup) ([]inventory.Key, map[inventory.Key][]*config.NodeGroup) {
	m := map[inventory.Key][]*config.NodeGroup{}
	for _, g := range groups {
		m[inventory.KeyOf(g)] = append(m[inventory.KeyOf(g)], g)
	}
	return inventory.Keys(groups), m
}

func groupNames(groups []*config.NodeGroup) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g.Name()
	}
	return out
}

// maxListInMessage bounds a node list in a log line or an error: a hostile or huge argument must
// not turn into a 70 KB log line.
const maxListInMessage = 300

// nodeList is a node list for messages: compressed, and cut at maxListInMessage bytes.
func nodeList(names []string) string {
	s := hostlist.Compress(names)
	if len(s) > maxListInMessage {
		s = fmt.Sprintf("%s...(%d nodes, %d bytes)", strings.ToValidUTF8(s[:maxListInMessage], ""), len(names), len(s))
	}
	return s
}
