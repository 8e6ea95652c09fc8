package burst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// ActionKind is what reconcile does to a node or an instance.
type ActionKind string

const (
	ActTerminate ActionKind = "terminate"  // terminate an instance
	ActDown      ActionKind = "down"       // set a node DOWN with a reason (its jobs requeue)
	ActPowerDown ActionKind = "power-down" // POWER_DOWN_FORCE: Slurm suspends the node
	ActReturn    ActionKind = "return"     // RESUME a DOWN, powered-down node: back to power saving, usable
	ActDrain     ActionKind = "drain"      // DRAIN a node: no new jobs (its spot instance is about to go)
	ActAddress   ActionKind = "address"    // tell Slurm the node's address again
	ActTag       ActionKind = "tag"        // restore an instance's Name (and templated) tags
)

// Rule names why an action was planned.
type Rule string

const (
	RuleFailedResume Rule = "failed-resume"   // DOWN after ResumeTimeout or by one of our reasons
	RuleCoolDownEnd  Rule = "cool-down-ended" // capacity cool-down over
	RuleVanished     Rule = "instance-gone"   // Slurm thinks the node is up; its instance is gone
	RuleOrphan       Rule = "orphan"          // our instance, no powered-up node claims it
	RuleDuplicate    Rule = "duplicate"       // two live instances for one node
	RuleSpotNotice   Rule = "spot-notice"     // EC2 marked the node's spot instance for termination
	RuleLeftWaiting  Rule = "resume-died"     // a resume died after launching: its nodes wait for nothing
	RuleAddressLost  Rule = "address-lost"    // Slurm lost the node's address (scontrol reconfigure resets it)
	RuleNameLost     Rule = "name-lost"       // a powered-up node's instance has no Name tag
	// Failed launches and boots (backoff.go).
	RuleBackOff      Rule = "back-off"       // a failed boot counted, or a node kept DOWN by its group's back-off
	RuleHold         Rule = "hold"           // the group is held: its idle nodes go DOWN
	RuleProbe        Rule = "probe"          // a held group's probe: one node back in service
	RuleBackOffOver  Rule = "back-off-over"  // the back-off ended: nodes back in service (one keeps the count)
	RuleBackOffReset Rule = "back-off-reset" // a node of the group registered: failures over
)

// Action is one step of a reconcile plan.
type Action struct {
	Kind     ActionKind `json:"kind"`
	Rule     Rule       `json:"rule"`
	Node     string     `json:"node,omitempty"`
	Instance string     `json:"instance,omitempty"`
	Region   string     `json:"region,omitempty"`
	Profile  string     `json:"profile,omitempty"` // with Region, the EC2 client that acts on Instance
	Addr     string     `json:"addr,omitempty"`    // for ActAddress: the instance's private IP
	Hostname string     `json:"hostname,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

func (a Action) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-16s", a.Kind, a.Rule)
	if a.Node != "" {
		fmt.Fprintf(&b, " node=%s", a.Node)
	}
	if a.Instance != "" {
		fmt.Fprintf(&b, " instance=%s region=%s", a.Instance, a.Region)
	}
	if a.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", a.Reason)
	}
	return b.String()
}

// ReconcileOptions tune a reconcile run.
type ReconcileOptions struct {
	DryRun bool      // print the plan, act on nothing
	Force  bool      // act even when this host is not the primary slurmctld
	Out    io.Writer // where the dry-run plan goes
	// Hostname of this machine, for the primary-controller check. Default os.Hostname.
	Hostname string
	// AllRegions also sweeps every region EC2 lists (DescribeRegions), not only configured ones.
	AllRegions bool
}

// ReconcileSummary counts what a run found and did.
type ReconcileSummary struct {
	Nodes     int
	Instances int
	Actions   map[string]int // by "kind/rule"
	Plan      []Action
	Skipped   string // why nothing was done, if so
	EC2Errors map[string]int
	// Unreachable counts, by "region" or "region/profile", the EC2 clients that could not be read.
	Unreachable map[string]int
	SlurmCalls  int
	Duration    time.Duration
	// For metrics: nodes by Slurm state, instances by "lifecycle/state".
	NodeStates     map[string]int
	InstanceCounts map[string]int
	// Health counts our live instances by problem: "scheduled_event", "impaired".
	Health map[string]int
	// BackOff is each node group's failures in a row, back-off and hold (backoff.go).
	BackOff []GroupBackOff
}

// resumeTimeoutReason is the reason Slurm (21.08+) sets on a node that did not register within
// ResumeTimeout.
const resumeTimeoutReason = "ResumeTimeout reached"

// Pinger tells which slurmctld is primary; *slurm.Client satisfies it.
type Pinger interface {
	Ping(ctx context.Context) (string, error)
}

// Reconcile brings Slurm and EC2 into agreement: resolve (every configured group) → load the
// inventory without any lock (a resume never waits on a slow read) → plan (pure) → take the locks
// of the groups the plan touches, re-check what it acts on, and act. With a backup slurmctld only
// the primary acts. A (region, profile) that cannot be read is reported (error, metric) and
// every other group is still served.
func Reconcile(ctx context.Context, d *Deps, opts ReconcileOptions) (*ReconcileSummary, error) {
	start := d.now()
	sum := &ReconcileSummary{Actions: map[string]int{}, EC2Errors: map[string]int{}, Unreachable: map[string]int{}}
	if p, ok := d.Slurm.(Pinger); ok && !opts.Force && !opts.DryRun {
		primary, err := p.Ping(ctx)
		sum.SlurmCalls++
		if err != nil {
			return sum, fmt.Errorf("asking Slurm which controller is primary: %w", err)
		}
		host := opts.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		if short, _, _ := strings.Cut(host, "."); primary != "" && !strings.EqualFold(primary, short) && !strings.EqualFold(primary, host) {
			sum.Skipped = "this host (" + host + ") is not the primary slurmctld (" + primary + ")"
			d.log().Info("reconcile skipped", "why", sum.Skipped)
			return sum, nil
		}
	}

	v, err := inventory.Load(ctx, d.sources(), inventory.ClusterScope(d.Config, opts.AllRegions))
	sum.SlurmCalls++
	if err != nil {
		sum.EC2Errors[fleet.ErrorCode(err)]++
		return sum, err
	}
	var errs []error
	for k, kerr := range v.Failed() {
		sum.EC2Errors[fleet.ErrorCode(kerr)]++
		sum.Unreachable[k.String()]++
		d.log().Error("EC2 unreachable; its node groups are skipped, the others served", "region", k.Region, "profile", k.Profile, "err", kerr)
	}
	if err := v.Err(); err != nil {
		errs = append(errs, err)
	}
	sum.Nodes, sum.Instances = len(v.Nodes()), len(v.Instances())
	sum.observe(v)
	d = d.withHealth(ctx, v, sum)
	sum.BackOff = backOffState(d.Config, nodesOf(v), d.backOffPolicy())
	for _, g := range sum.BackOff {
		logBackOff(d.log(), g)
	}
	plan := PlanActions(d, v, d.now())
	if opts.DryRun {
		sum.setPlan(plan)
		out := opts.Out
		if out == nil {
			out = io.Discard
		}
		if len(plan) == 0 {
			fmt.Fprintln(out, "nothing to do")
		}
		for _, a := range plan {
			fmt.Fprintln(out, a.String())
		}
		sum.Duration = d.now().Sub(start)
		return sum, errors.Join(errs...)
	}
	if len(plan) > 0 {
		// Only now the locks, and only those of the groups acted on: a resume in flight finishes
		// first, and none starts while we act. What changed meanwhile is re-read and re-planned;
		// only actions both plans agree on are carried out.
		unlock, err := d.lockGroups(ctx, planGroups(d, v, plan))
		if err != nil {
			return sum, err
		}
		defer unlock()
		plan, err = d.recheck(ctx, v, plan, sum)
		if err != nil {
			return sum, errors.Join(append(errs, err)...)
		}
	}
	sum.setPlan(plan)
	errs = append(errs, d.act(ctx, v, plan, sum)...)
	d.explainHeld(ctx, plan)
	sum.Duration = d.now().Sub(start)
	attrs := []any{"nodes", sum.Nodes, "instances", sum.Instances, "actions", len(plan),
		"slurm_calls", sum.SlurmCalls, "unreachable", len(sum.Unreachable), "seconds", fmt.Sprintf("%.2f", sum.Duration.Seconds())}
	keys := make([]string, 0, len(sum.Actions))
	for k := range sum.Actions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, k, sum.Actions[k])
	}
	d.log().Info("reconcile done", attrs...)
	if path := d.Config.MetricsFile; path != "" {
		if err := WriteMetrics(path, sum, d.now()); err != nil {
			errs = append(errs, err)
		}
	}
	return sum, errors.Join(errs...)
}

func (s *ReconcileSummary) setPlan(plan []Action) {
	s.Plan = plan
	s.Actions = map[string]int{}
	for _, a := range plan {
		s.Actions[string(a.Kind)+"/"+string(a.Rule)]++
	}
}

// planGroups is the configured node groups a plan touches: its nodes' and its instances'.
func planGroups(d *Deps, v *inventory.View, plan []Action) []string {
	var out []string
	for _, a := range plan {
		if g, _, ok := d.Config.LookupNode(a.Node); ok {
			out = append(out, g.Name())
		}
		if in, ok := v.Instance(a.Instance); ok && !v.Unconfigured(in.Instance) {
			out = append(out, in.Group())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// recheck re-reads, under the locks, what the plan acts on — Slurm's nodes, the planned
// instances, and the instances named for or at the address of the planned nodes — plans again on
// that, and keeps the actions both plans agree on.
func (d *Deps) recheck(ctx context.Context, v *inventory.View, plan []Action, sum *ReconcileSummary) ([]Action, error) {
	nodes, err := d.Slurm.Nodes(ctx)
	sum.SlurmCalls++
	if err != nil {
		return nil, fmt.Errorf("re-reading Slurm's nodes before acting: %w", err)
	}
	addr := map[string]string{}
	for _, n := range nodes {
		addr[n.Name] = n.Addr
	}
	type ask struct{ ids, names, ips []string }
	asks := map[inventory.Key]*ask{}
	get := func(k inventory.Key) *ask {
		if asks[k] == nil {
			asks[k] = &ask{}
		}
		return asks[k]
	}
	for _, a := range plan {
		if in, ok := v.Instance(a.Instance); ok {
			get(in.Key).ids = append(get(in.Key).ids, in.ID)
		}
		if g, _, ok := d.Config.LookupNode(a.Node); ok {
			q := get(inventory.KeyOf(g))
			q.names = append(q.names, a.Node)
			if ip := addr[a.Node]; inventory.IsIP(ip) {
				q.ips = append(q.ips, ip)
			}
		}
	}
	fresh := map[string]inventory.Listed{}
	asked := map[string]bool{}
	cluster := fleet.Filter{Name: "tag:" + fleet.TagCluster, Values: []string{d.Cluster}}
	for k, q := range asks {
		api, err := d.EC2.Get(ctx, k.Region, k.Profile)
		if err != nil {
			return nil, fmt.Errorf("EC2 client for %s: %w", k, err)
		}
		for _, f := range []fleet.Filter{{Name: "instance-id", Values: q.ids}, {Name: "tag:" + fleet.TagName, Values: q.names}, {Name: "private-ip-address", Values: q.ips}} {
			f.Values = slices.Compact(slices.Sorted(slices.Values(f.Values)))
			if len(f.Values) == 0 {
				continue
			}
			got, err := fleet.Describe(ctx, api, k.Region, cluster, f)
			if err != nil {
				sum.EC2Errors[fleet.ErrorCode(err)]++
				return nil, fmt.Errorf("re-reading instances in %s before acting: %w", k, err)
			}
			for _, in := range got {
				fresh[in.ID] = inventory.Listed{Instance: in, Key: k}
			}
		}
		for _, id := range q.ids {
			asked[id] = true
		}
	}
	data := v.Data()
	data.Nodes = nodes
	var insts []inventory.Listed
	for _, in := range data.Instances {
		if f, ok := fresh[in.ID]; ok {
			insts = append(insts, f)
			delete(fresh, in.ID)
		} else if !asked[in.ID] {
			insts = append(insts, in)
		}
		// Asked for and not returned: EC2 no longer lists it.
	}
	for _, in := range fresh {
		insts = append(insts, in)
	}
	data.Instances = insts
	again := PlanActions(d, inventory.Join(d.Config, data), d.now())
	same := map[string]bool{}
	for _, a := range again {
		same[a.id()] = true
	}
	var out []Action
	for _, a := range plan {
		if same[a.id()] {
			out = append(out, a)
		} else {
			d.log().Info("action dropped: what it acts on changed before the locks were taken", "action", a.String())
		}
	}
	return out, nil
}

// id identifies an action across two plans.
func (a Action) id() string {
	return string(a.Kind) + "\x00" + string(a.Rule) + "\x00" + a.Node + "\x00" + a.Instance
}

// Planner adds actions to reconcile's plan from the inventory (other rules: capacity back-off,
// instance health). It must be pure; it sees the actions planned before it so it can leave alone
// what is already handled.
type Planner func(v *inventory.View, now time.Time, planned []Action) []Action

// PlanActions decides what to do from the inventory: the built-in rules, then d.Planners. It is
// pure: no I/O. An instance is terminated at most once, whatever rule asks first.
func PlanActions(d *Deps, v *inventory.View, now time.Time) []Action {
	var plan []Action
	cool := time.Duration(d.Config.CoolDownSeconds) * time.Second
	grace := time.Duration(d.Config.OrphanGraceSeconds) * time.Second
	handled := map[string]bool{} // instances already given an action
	waiting := map[string]bool{} // nodes a dead resume left waiting
	terminate := func(in inventory.Listed, rule Rule, node, why string) {
		if handled[in.ID] {
			return
		}
		handled[in.ID] = true
		plan = append(plan, Action{Kind: ActTerminate, Rule: rule, Node: node, Instance: in.ID, Region: in.Region, Profile: in.Key.Profile, Reason: why})
	}
	for _, n := range v.Nodes() {
		if v.Unknown(n.Name) {
			continue // its (region, profile) could not be read: nothing is known of it
		}
		p := ParseReason(n.Reason)
		switch {
		case n.IsDown() && ownedByBackOff(n):
			continue // the back-off rule below decides (backoff.go)
		case n.IsDown():
			rule, ok := downRule(n, p, now, cool)
			if !ok {
				continue // an admin's DOWN, or a cool-down still running: not ours to undo
			}
			for _, in := range v.Of(n.Name) {
				terminate(in, rule, n.Name, "node "+n.Name+" failed to resume")
			}
			switch {
			case n.PoweredDown():
				plan = append(plan, Action{Kind: ActReturn, Rule: rule, Node: n.Name})
			case n.PoweringDown():
				// Slurm is suspending it; the next run returns it.
			default:
				plan = append(plan, Action{Kind: ActPowerDown, Rule: rule, Node: n.Name})
			}
		case v.IsGone(n.Name):
			reason := vanishedReason(v.DeadOf(n.Name))
			plan = append(plan,
				Action{Kind: ActDown, Rule: RuleVanished, Node: n.Name, Reason: reason},
				Action{Kind: ActPowerDown, Rule: RuleVanished, Node: n.Name})
		case inventory.PoweredUp(n) && !n.PoweringUp():
			claims := v.Claims(n.Name)
			if len(claims) == 1 && claims[0].PrivateIP != "" && claims[0].PrivateIP != n.Addr {
				// `scontrol reconfigure` resets cloud nodes' NodeAddr to slurm.conf's (seen on
				// 22.05): the Name-tagged instance says where the node is.
				in := claims[0]
				plan = append(plan, Action{Kind: ActAddress, Rule: RuleAddressLost, Node: n.Name, Instance: in.ID, Region: in.Region, Profile: in.Key.Profile,
					Addr: in.PrivateIP, Hostname: cmp.Or(in.PrivateDNS, in.PrivateIP)})
			}
			if len(claims) == 1 && v.Marked(claims[0].ID) && !n.Has("DRAIN") {
				plan = append(plan, Action{Kind: ActDrain, Rule: RuleSpotNotice, Node: n.Name, Instance: claims[0].ID, Region: claims[0].Region, Profile: claims[0].Key.Profile,
					Reason: reasonPrefix + "spot interruption notice for " + claims[0].ID})
			}
			fallthrough
		case inventory.PoweredUp(n):
			keep, dups, _ := v.Keep(n.Name, v.Claims(n.Name))
			for _, in := range dups {
				terminate(in, RuleDuplicate, n.Name, "second instance for "+n.Name+"; keeping "+keep.ID)
			}
		}
	}
	// Rule 10: a powered-up node's instance without its Name tag gets it back (and its templated
	// tags), so that losing NodeAddr never makes it look gone.
	for _, in := range v.Untagged() {
		if handled[in.ID] {
			continue
		}
		node := v.NodeOf(in.ID)
		if keep, _, ok := v.Keep(node, v.Claims(node)); ok && keep.ID == in.ID {
			plan = append(plan, Action{Kind: ActTag, Rule: RuleNameLost, Node: node, Instance: in.ID, Region: in.Region, Profile: in.Key.Profile})
		}
	}
	for _, in := range v.Orphans(now, grace) {
		if handled[in.ID] {
			continue
		}
		terminate(in, RuleOrphan, in.Node(), orphanWhy(v, in))
		// A resume that died between CreateFleet and telling Slurm leaves its nodes powering up
		// with nothing behind them until ResumeTimeout; the fleet's launch tag names them. Set
		// them DOWN now (their jobs requeue) and power them down.
		if in.Node() != "" {
			continue
		}
		names, err := hostlist.Expand(in.Tags[fleet.TagLaunchedFor])
		if err != nil {
			continue
		}
		for _, name := range names {
			n := v.Node(name)
			if n == nil || waiting[name] || !n.PoweringUp() || n.IsDown() || len(v.Claims(name)) > 0 || v.Unknown(name) {
				continue
			}
			if _, _, ok := d.Config.LookupNode(name); !ok {
				continue
			}
			waiting[name] = true
			plan = append(plan,
				Action{Kind: ActDown, Rule: RuleLeftWaiting, Node: name, Reason: reasonPrefix + "resume did not finish; its instance " + in.ID + " never reached Slurm"},
				Action{Kind: ActPowerDown, Rule: RuleLeftWaiting, Node: name})
		}
	}
	// The back-off rules (backoff.go) come first, then the Planners of this run (health, ...).
	backOff := func(v *inventory.View, now time.Time, _ []Action) []Action { return backOffActions(d, v, now) }
	for _, p := range append([]Planner{backOff}, d.Planners...) {
		for _, a := range p(v, now, plan) {
			if a.Kind == ActTerminate {
				if handled[a.Instance] {
					continue
				}
				handled[a.Instance] = true
			}
			plan = append(plan, a)
		}
	}
	return plan
}

// orphanWhy says why an instance is an orphan, truthfully for each case of rules 5, 7 and 9.
func orphanWhy(v *inventory.View, in inventory.Listed) string {
	node := in.Node()
	var why string
	switch n := v.Node(node); {
	case node == "":
		why = "no powered-up node claims it"
	case n == nil && v.SlurmRead():
		why = "Slurm has no node " + node
	case n == nil:
		why = "no powered-up node claims it"
	default:
		why = "its node " + node + " is powered down"
	}
	if v.Unconfigured(in.Instance) {
		why = "node group " + in.Group() + " is not configured; " + why
	}
	return why
}

// downRule tells whether a DOWN node is one reconcile returns to service, and why.
func downRule(n *slurm.Node, p ParsedReason, now time.Time, cool time.Duration) (Rule, bool) {
	switch {
	case strings.HasPrefix(n.Reason, resumeTimeoutReason):
		return RuleFailedResume, true
	case p.CoolDown:
		return RuleCoolDownEnd, !p.Until.After(now)
	case p.IsCapacity():
		return RuleCoolDownEnd, n.ReasonTime.IsZero() || !n.ReasonTime.Add(cool).After(now)
	case p.Ours:
		if rule, ok := healthRule(p); ok {
			return rule, true // replaced for its instance's health: back to service
		}
		return RuleFailedResume, true
	}
	return "", false
}

// vanishedReason names the instance a node lost and EC2's state reason.
func vanishedReason(gone []inventory.Listed) string {
	if len(gone) == 0 {
		return reasonPrefix + "no instance found"
	}
	in := gone[0]
	r := in.StateReason
	if r == "" {
		r = "no state reason"
	}
	return fmt.Sprintf("%sinstance %s %s (%s)", reasonPrefix, in.ID, in.State, r)
}

// act carries out a plan: terminations per region in batches, Slurm updates grouped by state
// and reason.
func (d *Deps) act(ctx context.Context, v *inventory.View, plan []Action, sum *ReconcileSummary) []error {
	var errs []error
	terms := map[inventory.Key][]string{}
	tags := map[inventory.Key][]fleet.TagSet{}
	down := map[string][]string{}  // reason -> nodes
	drain := map[string][]string{} // reason -> nodes
	var powerDown, powerDownIdle, ret []string
	var addrs []slurm.Address
	for _, a := range plan {
		k := inventory.Key{Region: a.Region, Profile: a.Profile}
		switch a.Kind {
		case ActTerminate:
			terms[k] = append(terms[k], a.Instance)
		case ActTag:
			in, ok := v.Instance(a.Instance)
			g, _, gok := d.Config.LookupNode(a.Node)
			if ok && gok {
				tags[k] = append(tags[k], fleet.TagSet{InstanceIDs: []string{in.ID}, Tags: instanceTags(g, a.Node, in.Instance)})
			}
		case ActDown:
			down[a.Reason] = append(down[a.Reason], a.Node)
		case ActPowerDown:
			powerDown = append(powerDown, a.Node)
		case ActPowerDownIdle:
			powerDownIdle = append(powerDownIdle, a.Node)
		case ActReturn:
			ret = append(ret, a.Node)
		case ActDrain:
			drain[a.Reason] = append(drain[a.Reason], a.Node)
		case ActAddress:
			addrs = append(addrs, slurm.Address{Node: a.Node, Addr: a.Addr, Hostname: a.Hostname})
		}
	}
	// Each instance through the client of the (region, profile) that listed it: two accounts in
	// one region are two clients.
	keys := slices.Collect(maps.Keys(terms))
	inventory.SortKeys(keys)
	for _, k := range keys {
		api, err := d.EC2.Get(ctx, k.Region, k.Profile)
		if err != nil {
			errs = append(errs, fmt.Errorf("EC2 client for %s: %w", k, err))
			continue
		}
		_, unknown, err := fleet.Terminate(ctx, api, k.Region, terms[k])
		if len(unknown) > 0 {
			d.log().Warn("EC2 no longer knows instances it listed", "region", k.Region, "profile", k.Profile, "instances", unknown)
		}
		if err != nil {
			sum.EC2Errors[fleet.ErrorCode(err)]++
			errs = append(errs, err)
		}
	}
	keys = slices.Collect(maps.Keys(tags))
	inventory.SortKeys(keys)
	for _, k := range keys {
		api, err := d.EC2.Get(ctx, k.Region, k.Profile)
		if err != nil {
			errs = append(errs, fmt.Errorf("EC2 client for %s: %w", k, err))
			continue
		}
		if failed, err := fleet.ApplyTags(ctx, api, tags[k], fleet.NewTagLimiter(d.TagsPerSecond)); err != nil {
			sum.EC2Errors[fleet.ErrorCode(err)]++
			errs = append(errs, fmt.Errorf("restoring the Name tags of %d instances in %s: %w", len(failed), k, err))
		}
	}
	// Many nodes losing their instances at once (a bulk spot interruption) share one reason per
	// EC2 state reason, so Slurm gets a few calls, not one per node.
	down = mergeReasons(down, func(r string) string {
		if _, ok := parseBackOffReason(r); ok {
			return r // a group's back-off record: already one reason per group
		}
		if i := strings.LastIndex(r, " ("); i > 0 {
			return reasonPrefix + "instance gone" + r[i:]
		}
		return r
	})
	drain = mergeReasons(drain, func(r string) string {
		if strings.HasPrefix(r, reasonPrefix+"spot interruption notice") {
			return reasonPrefix + "spot interruption notice"
		}
		return r // scheduled events: nodes with one event date already share a reason
	})
	update := func(nodes []string, st slurm.State, reason string) {
		if len(nodes) == 0 {
			return
		}
		slices.Sort(nodes)
		sum.SlurmCalls++
		if err := d.Slurm.Update(ctx, nodes, st, reason); err != nil {
			errs = append(errs, fmt.Errorf("setting %s %s: %w", nodeList(nodes), st, err))
		}
	}
	// Nodes that never had an address get the placeholder before they are set DOWN or powered
	// down, so slurmctld does not try to resolve their names (see markDown in resume.go).
	var unaddressed []string
	for _, a := range plan {
		if n := v.Node(a.Node); (a.Kind == ActDown || a.Kind == ActPowerDown) && n != nil && (n.Addr == "" || n.Addr == n.Name) && !slices.Contains(unaddressed, n.Name) {
			unaddressed = append(unaddressed, n.Name)
		}
	}
	if len(addrs) > 0 {
		sum.SlurmCalls++
		if err := d.Slurm.SetAddresses(ctx, addrs); err != nil {
			errs = append(errs, fmt.Errorf("telling Slurm the addresses of %d nodes again: %w", len(addrs), err))
		}
	}
	if len(unaddressed) > 0 {
		sum.SlurmCalls++
		if err := d.Slurm.SetAddresses(ctx, placeholderAddresses(unaddressed)); err != nil {
			errs = append(errs, fmt.Errorf("setting the placeholder address of %s: %w", nodeList(unaddressed), err))
		}
	}
	for _, r := range sortedKeysOf(down) {
		update(down[r], slurm.StateDown, r)
	}
	for _, r := range sortedKeysOf(drain) {
		update(drain[r], slurm.StateDrain, r)
	}
	update(powerDown, slurm.StatePowerDownForce, "")
	update(powerDownIdle, slurm.StatePowerDown, "")
	update(ret, slurm.StateResume, "")
	return errs
}

// mergeReasons folds per-node reasons into shared ones when many nodes need the same change.
func mergeReasons(byReason map[string][]string, general func(string) string) map[string][]string {
	if len(byReason) <= 20 {
		return byReason
	}
	merged := map[string][]string{}
	for r, nodes := range byReason {
		g := general(r)
		merged[g] = append(merged[g], nodes...)
	}
	return merged
}

func sortedKeysOf(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
