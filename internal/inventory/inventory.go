// Package inventory is the one owner of "which instance is which node". It loads Slurm's nodes
// and this cluster's EC2 instances for a scope (Load, which does I/O) and answers, from those two
// lists only, which instance each node has (Join and the View methods, which are pure). Resume,
// suspend, resume-fail, reconcile and status all go resolve → Load → decide on the View → act;
// none of them matches instances to nodes itself.
//
// # The rules
//
//  1. Ours: an instance is this cluster's when its slurm-ec2:cluster tag is the cluster name.
//     Nothing else is ever looked at, terminated or tagged.
//  2. Accounts: EC2 is read per (region, profile) — a Key. An account is a profile, never a region:
//     two profiles in one region are two Keys, each instance is acted on through the client of
//     the Key that listed it, and an instance listed by two Keys (two profiles of one account) is
//     one instance.
//  3. Live: an instance is live unless it is shutting-down or terminated. Only live instances
//     belong to nodes; dead ones only explain why a node lost its instance.
//  4. Node of an instance: its Name tag, when Slurm has a node of that name (Slurm not read: when
//     it is a configured node's name). Without a Name tag,
//     the node whose NodeAddr is the instance's private IP, when that node is in the instance's
//     node group (slurm-ec2:node-group tag) and the address points at one such node only,
//     preferring the one powered-up node over powered-down ones (Slurm keeps a powered-down
//     node's last NodeAddr and EC2 reuses private IPs). Otherwise the instance has no node.
//  5. Powered up: a node is powered up unless Slurm has it POWERED_DOWN or POWERING_DOWN. A node
//     claims the live instances of rule 4 while it is powered up; an instance no powered-up node
//     claims is unclaimed.
//  6. Keep: when several live instances belong to one node, the one kept is the one at the node's
//     NodeAddr; else the oldest (launch time); else the lowest instance id. The others are
//     duplicates. This is the only tie-break.
//  7. Orphan: an unclaimed live instance older than the grace period, measured on EC2's clock
//     (launch times are EC2's). Younger ones may be a resume in flight.
//  8. Gone: a powered-up node that is not powering up and claims no live instance has lost its
//     instance; its dead instances (newest first) say why. A node whose Key could not be read
//     is never gone: nothing is known of it (rule 11).
//  9. Group not configured: an instance whose node-group tag is not a configured group. Rules 4–7
//     hold for it by Name tag: it is never an orphan while Slurm has its node powered up, and is
//     one (after the grace period) once Slurm no longer has that node or has it powered down.
//  10. Untagged: a live instance a powered-up node claims by NodeAddr (rule 4) whose Name tag is
//     missing; its Name (and templated) tags are to be restored, so that `scontrol reconfigure`
//     resetting NodeAddr never makes a running node look gone.
//  11. Failures are per Key: a Key that could not be read is listed in View.Failed with its error;
//     its groups' nodes are Unknown (not gone, not orphaned) and every other Key is still served.
package inventory

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// Key is one EC2 client: a region and the shared-config profile (the account) used there.
type Key struct {
	Region  string `json:"region"`
	Profile string `json:"profile,omitempty"`
}

func (k Key) String() string {
	if k.Profile == "" {
		return k.Region
	}
	return k.Region + "/" + k.Profile
}

// KeyOf is the Key of a node group.
func KeyOf(g *config.NodeGroup) Key { return Key{Region: g.Region, Profile: g.ProfileName} }

// PoweredUp reports whether Slurm considers the node to have, or be getting, an instance (rule 5).
func PoweredUp(n *slurm.Node) bool { return !n.PoweredDown() && !n.PoweringDown() }

// Data is what Load read: the input of Join. Tests build it by hand.
type Data struct {
	// Nodes is every node Slurm listed (ours and others': rule 9 needs nodes of groups no longer
	// configured). Nil when Slurm was not read: then only Name tags match (rule 4).
	Nodes []slurm.Node
	// Instances is every instance read, any state, each with the Key that listed it.
	Instances []Listed
	// Failed is the Keys that could not be read, with why.
	Failed map[Key]error
	// Loaded is the Keys that were read.
	Loaded []Key
	// Skew is EC2's clock minus ours, per Key (launch times are EC2's).
	Skew map[Key]time.Duration
	// Marked is the instances EC2 has marked for a spot interruption.
	Marked map[string]bool
}

// Listed is an instance and the Key whose client listed it.
type Listed struct {
	fleet.Instance
	Key Key
}

// View is the joined inventory: what each node has, decided by the rules of the package doc.
type View struct {
	cfg       *config.Config
	data      Data
	nodes     []*slurm.Node          // configured nodes, Slurm's order
	byName    map[string]*slurm.Node // every node Slurm listed
	owner     map[string]string      // instance id -> node (rule 4), "" for none
	byAddr    map[string]bool        // instance id -> owned by NodeAddr match, not Name tag
	of        map[string][]Listed    // node -> live instances (rule 4), any power state
	gone      map[string][]Listed    // node -> dead instances named for it, newest first
	unclaimed []Listed               // live instances no powered-up node claims (rule 5)
	failed    map[string]bool        // configured group name -> its Key failed
	live      []Listed
	byID      map[string]Listed
	groups    map[string]bool // configured group names
}

// Join applies the rules to what Load read. It is pure.
func Join(cfg *config.Config, d Data) *View {
	v := &View{cfg: cfg, data: d, byName: map[string]*slurm.Node{}, owner: map[string]string{}, byAddr: map[string]bool{},
		of: map[string][]Listed{}, gone: map[string][]Listed{}, failed: map[string]bool{}, byID: map[string]Listed{}}
	for i := range d.Nodes {
		n := &v.data.Nodes[i]
		v.byName[n.Name] = n
		if _, _, ok := cfg.LookupNode(n.Name); ok {
			v.nodes = append(v.nodes, n)
		}
	}
	v.groups = map[string]bool{}
	for _, g := range cfg.NodeGroups() {
		v.groups[g.Name()] = true
		if _, bad := d.Failed[KeyOf(g)]; bad {
			v.failed[g.Name()] = true
		}
	}
	ix := newAddrIndex(cfg, v.data.Nodes)
	// Rule 2: one instance listed by two Keys is one instance.
	insts := slices.Clone(d.Instances)
	slices.SortStableFunc(insts, func(a, b Listed) int { return strings.Compare(a.ID, b.ID) })
	insts = slices.CompactFunc(insts, func(a, b Listed) bool { return a.ID == b.ID })
	for _, in := range insts {
		v.byID[in.ID] = in
		node := in.Node()
		if !v.known(node) {
			node = ""
		}
		if in.Node() == "" {
			if node = ix.lookup(in.PrivateIP, in.Group()); node != "" {
				v.byAddr[in.ID] = true
			}
		}
		if !in.Live() {
			if node != "" {
				v.gone[node] = append(v.gone[node], in)
			}
			continue
		}
		v.live = append(v.live, in)
		v.owner[in.ID] = node
		if node != "" {
			v.of[node] = append(v.of[node], in)
		}
		if node == "" || !v.up(node) {
			v.unclaimed = append(v.unclaimed, in)
		}
	}
	for _, list := range v.gone {
		slices.SortStableFunc(list, func(a, b Listed) int { return b.LaunchTime.Compare(a.LaunchTime) })
	}
	return v
}

// known reports whether a Name tag names a node: one Slurm has or, Slurm unread, a configured one.
func (v *View) known(node string) bool {
	if node == "" {
		return false
	}
	if _, ok := v.byName[node]; ok {
		return true
	}
	_, _, ok := v.cfg.LookupNode(node)
	return v.data.Nodes == nil && ok
}

// Config is the configuration the view was joined with.
func (v *View) Config() *config.Config { return v.cfg }

// Nodes is Slurm's nodes of configured groups, in Slurm's order.
func (v *View) Nodes() []*slurm.Node { return v.nodes }

// Node is Slurm's node of that name (configured or not), nil if Slurm has none or was not read.
func (v *View) Node(name string) *slurm.Node { return v.byName[name] }

// SlurmRead reports whether Slurm's nodes were read.
func (v *View) SlurmRead() bool { return v.data.Nodes != nil }

// Instances is every instance read, any state, each once.
func (v *View) Instances() []Listed {
	out := slices.Clone(v.data.Instances)
	slices.SortStableFunc(out, func(a, b Listed) int { return strings.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b Listed) bool { return a.ID == b.ID })
}

// Instance is the instance with that id, any state.
func (v *View) Instance(id string) (Listed, bool) {
	in, ok := v.byID[id]
	return in, ok
}

// Data is what the view was joined from (a copy of its lists): re-checks swap parts and join again.
func (v *View) Data() Data {
	d := v.data
	d.Nodes = slices.Clone(d.Nodes)
	d.Instances = slices.Clone(d.Instances)
	return d
}

// Live is every live instance, each once, by id.
func (v *View) Live() []Listed { return v.live }

// Of is the live instances belonging to a node (rule 4), whatever Slurm's power state: resume
// reuses them, suspend terminates them.
func (v *View) Of(node string) []Listed { return v.of[node] }

// Claims is the live instances a powered-up node claims (rule 5); none for a powered-down node,
// or when Slurm was not read.
func (v *View) Claims(node string) []Listed {
	if !v.up(node) {
		return nil
	}
	return v.of[node]
}

// up reports whether Slurm has the node powered up (false when Slurm does not have it).
func (v *View) up(node string) bool {
	n := v.byName[node]
	return n != nil && PoweredUp(n)
}

// NodeOf is the node a live instance belongs to (rule 4), "" for none.
func (v *View) NodeOf(id string) string { return v.owner[id] }

// Keep picks the instance to keep among those of a node, and the duplicates (rule 6). ok is false
// when the list is empty.
func (v *View) Keep(node string, list []Listed) (keep Listed, dups []Listed, ok bool) {
	if len(list) == 0 {
		return Listed{}, nil, false
	}
	addr := ""
	if n := v.byName[node]; n != nil {
		addr = n.Addr
	}
	return KeepOf(addr, list)
}

// KeepOf is rule 6 on its own: the instance at addr, else the oldest, else the lowest id.
func KeepOf(addr string, list []Listed) (keep Listed, dups []Listed, ok bool) {
	if len(list) == 0 {
		return Listed{}, nil, false
	}
	best := 0
	for i := 1; i < len(list); i++ {
		if better(addr, list[i], list[best]) {
			best = i
		}
	}
	for i, in := range list {
		if i != best {
			dups = append(dups, in)
		}
	}
	return list[best], dups, true
}

func better(addr string, a, b Listed) bool {
	if aAt, bAt := addr != "" && a.PrivateIP == addr, addr != "" && b.PrivateIP == addr; aAt != bAt {
		return aAt
	}
	if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

// Unclaimed is the live instances no powered-up node claims (rule 5), by id.
func (v *View) Unclaimed() []Listed { return v.unclaimed }

// Orphans is the unclaimed instances older than grace on EC2's clock (rule 7), by id.
func (v *View) Orphans(now time.Time, grace time.Duration) []Listed {
	var out []Listed
	for _, in := range v.unclaimed {
		if now.Add(v.data.Skew[in.Key]).Sub(in.LaunchTime) >= grace {
			out = append(out, in)
		}
	}
	return out
}

// Gone is the configured, powered-up (and not powering-up) nodes that claim no live instance
// (rule 8), in Slurm's order. Nodes whose Key failed are left out (rule 11).
func (v *View) Gone() []*slurm.Node {
	var out []*slurm.Node
	for _, n := range v.nodes {
		if v.IsGone(n.Name) {
			out = append(out, n)
		}
	}
	return out
}

// IsGone reports whether a configured node lost its instance (rule 8).
func (v *View) IsGone(node string) bool {
	n := v.byName[node]
	if n == nil || !PoweredUp(n) || n.PoweringUp() || len(v.of[node]) > 0 || v.Unknown(node) {
		return false
	}
	_, _, ok := v.cfg.LookupNode(node)
	return ok
}

// DeadOf is the dead instances named for a node, newest first: why it lost its instance.
func (v *View) DeadOf(node string) []Listed { return v.gone[node] }

// Unconfigured reports whether the instance's node group is not configured (rule 9). An instance
// without a node-group tag was not launched by slurm-ec2 and is simply an orphan.
func (v *View) Unconfigured(in fleet.Instance) bool {
	g := in.Group()
	return g != "" && !v.groups[g]
}

// Untagged is the live instances claimed by a powered-up configured node through its NodeAddr,
// without a Name tag (rule 10), by id.
func (v *View) Untagged() []Listed {
	var out []Listed
	for _, in := range v.live {
		node := v.owner[in.ID]
		if !v.byAddr[in.ID] || node == "" {
			continue
		}
		if v.up(node) {
			if _, _, ok := v.cfg.LookupNode(node); ok {
				out = append(out, in)
			}
		}
	}
	return out
}

// Unknown reports whether nothing is known of a node's instances: its group's Key failed (rule 11).
func (v *View) Unknown(node string) bool {
	if len(v.failed) == 0 {
		return false
	}
	g, _, ok := v.cfg.LookupNode(node)
	return ok && v.failed[g.Name()]
}

// Failed is the Keys that could not be read, with why.
func (v *View) Failed() map[Key]error { return v.data.Failed }

// Loaded is the Keys that were read.
func (v *View) Loaded() []Key { return v.data.Loaded }

// Marked reports whether EC2 marked the instance for a spot interruption.
func (v *View) Marked(id string) bool { return v.data.Marked[id] }

// Skew is EC2's clock minus ours for a Key.
func (v *View) Skew(k Key) time.Duration { return v.data.Skew[k] }

// addrIndex is rule 4's NodeAddr half.
type addrIndex struct {
	cfg    *config.Config
	byAddr map[string][]*slurm.Node
}

func newAddrIndex(cfg *config.Config, nodes []slurm.Node) *addrIndex {
	ix := &addrIndex{cfg: cfg, byAddr: map[string][]*slurm.Node{}}
	for i := range nodes {
		n := &nodes[i]
		if n.Addr == "" || n.Addr == n.Name || !IsIP(n.Addr) {
			continue
		}
		ix.byAddr[n.Addr] = append(ix.byAddr[n.Addr], n)
	}
	return ix
}

// lookup returns the node whose NodeAddr is ip, in node group group, or "".
func (ix *addrIndex) lookup(ip, group string) string {
	if ip == "" {
		return ""
	}
	var up, down []string
	for _, n := range ix.byAddr[ip] {
		g, _, ok := ix.cfg.LookupNode(n.Name)
		if !ok || g.Name() != group {
			continue
		}
		if PoweredUp(n) {
			up = append(up, n.Name)
		} else {
			down = append(down, n.Name)
		}
	}
	switch {
	case len(up) == 1:
		return up[0]
	case len(up) == 0 && len(down) == 1:
		return down[0]
	}
	return ""
}

// IsIP reports whether s is a literal IP address (a NodeAddr that is not a name).
func IsIP(s string) bool {
	_, err := netip.ParseAddr(strings.TrimSpace(s))
	return err == nil
}

// SortKeys orders Keys by region, then profile.
func SortKeys(keys []Key) {
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.Region, b.Region), strings.Compare(a.Profile, b.Profile))
	})
}
