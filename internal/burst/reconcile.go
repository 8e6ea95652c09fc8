package burst

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
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
)

// Action is one step of a reconcile plan.
type Action struct {
	Kind     ActionKind `json:"kind"`
	Rule     Rule       `json:"rule"`
	Node     string     `json:"node,omitempty"`
	Instance string     `json:"instance,omitempty"`
	Region   string     `json:"region,omitempty"`
	Addr     string     `json:"addr,omitempty"` // for ActAddress: the instance's private IP
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
}

// ReconcileSummary counts what a run found and did.
type ReconcileSummary struct {
	Nodes      int
	Instances  int
	Actions    map[string]int // by "kind/rule"
	Plan       []Action
	Skipped    string // why nothing was done, if so
	EC2Errors  map[string]int
	SlurmCalls int
	Duration   time.Duration
	// For metrics: nodes by Slurm state, instances by "lifecycle/state".
	NodeStates     map[string]int
	InstanceCounts map[string]int
}

// resumeTimeoutReason is the reason Slurm (21.08+) sets on a node that did not register within
// ResumeTimeout.
const resumeTimeoutReason = "ResumeTimeout reached"

// Pinger tells which slurmctld is primary; *slurm.Client satisfies it.
type Pinger interface {
	Ping(ctx context.Context) (string, error)
}

// Reconcile brings Slurm and EC2 into agreement: one read of each side, a plan, then the actions
// in batches. With a backup slurmctld only the primary acts.
func Reconcile(ctx context.Context, d *Deps, opts ReconcileOptions) (*ReconcileSummary, error) {
	start := d.now()
	sum := &ReconcileSummary{Actions: map[string]int{}, EC2Errors: map[string]int{}}
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
	// Hold every group's lock: a resume in flight finishes first, and none starts while we act.
	unlock, err := d.lockGroups(ctx, groupNames(d.Config.NodeGroups()))
	if err != nil {
		return sum, err
	}
	defer unlock()

	v, err := loadView(ctx, d)
	sum.SlurmCalls++
	if err != nil {
		sum.EC2Errors[fleet.ErrorCode(err)]++
		return sum, err
	}
	sum.Nodes, sum.Instances = len(v.nodes), len(v.instances)
	sum.observe(v)
	plan := PlanActions(d, v, d.now())
	sum.Plan = plan
	for _, a := range plan {
		sum.Actions[string(a.Kind)+"/"+string(a.Rule)]++
	}
	if opts.DryRun {
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
		return sum, nil
	}
	errs := d.act(ctx, v, plan, sum)
	sum.Duration = d.now().Sub(start)
	attrs := []any{"nodes", sum.Nodes, "instances", sum.Instances, "actions", len(plan),
		"slurm_calls", sum.SlurmCalls, "seconds", fmt.Sprintf("%.2f", sum.Duration.Seconds())}
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

// PlanActions decides what to do from the joined view. It is pure: no I/O.
func PlanActions(d *Deps, v *view, now time.Time) []Action {
	var plan []Action
	cool := time.Duration(d.Config.CoolDownSeconds) * time.Second
	grace := time.Duration(d.Config.OrphanGraceSeconds) * time.Second
	handled := map[string]bool{} // instances already given an action
	waiting := map[string]bool{} // nodes a dead resume left waiting
	terminate := func(in fleet.Instance, rule Rule, node, why string) {
		if handled[in.ID] {
			return
		}
		handled[in.ID] = true
		plan = append(plan, Action{Kind: ActTerminate, Rule: rule, Node: node, Instance: in.ID, Region: in.Region, Reason: why})
	}
	for i := range v.nodes {
		n := &v.nodes[i]
		p := ParseReason(n.Reason)
		switch {
		case n.IsDown():
			rule, ok := downRule(n, p, now, cool)
			if !ok {
				continue // an admin's DOWN, or a cool-down still running: not ours to undo
			}
			for _, in := range v.named[n.Name] {
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
		case poweredUp(n) && !n.PoweringUp():
			claims := v.claims[n.Name]
			if len(claims) == 0 {
				reason := vanishedReason(v.gone[n.Name])
				plan = append(plan,
					Action{Kind: ActDown, Rule: RuleVanished, Node: n.Name, Reason: reason},
					Action{Kind: ActPowerDown, Rule: RuleVanished, Node: n.Name})
				continue
			}
			if len(claims) == 1 && claims[0].PrivateIP != "" && claims[0].PrivateIP != n.Addr {
				// `scontrol reconfigure` resets cloud nodes' NodeAddr to slurm.conf's (seen on
				// 22.05): the Name-tagged instance says where the node is.
				in := claims[0]
				plan = append(plan, Action{Kind: ActAddress, Rule: RuleAddressLost, Node: n.Name, Instance: in.ID, Region: in.Region,
					Addr: in.PrivateIP, Hostname: cmp.Or(in.PrivateDNS, in.PrivateIP)})
			}
			if len(claims) == 1 && v.marked[claims[0].ID] && !n.Has("DRAIN") {
				plan = append(plan, Action{Kind: ActDrain, Rule: RuleSpotNotice, Node: n.Name, Instance: claims[0].ID, Region: claims[0].Region,
					Reason: reasonPrefix + "spot interruption notice for " + claims[0].ID})
			}
			fallthrough
		case poweredUp(n):
			claims := v.claims[n.Name]
			if len(claims) < 2 {
				continue
			}
			keep := keepOf(n, claims)
			for _, in := range claims {
				if in.ID != keep {
					terminate(in, RuleDuplicate, n.Name, "second instance for "+n.Name+"; keeping "+keep)
				}
			}
		}
	}
	for _, in := range v.unclaimed {
		if handled[in.ID] {
			continue
		}
		if age := now.Add(v.skew[in.Region]).Sub(in.LaunchTime); age < grace {
			continue // may be a resume in flight, or a node booting
		}
		why := "no powered-up node claims it"
		if in.Node() != "" {
			why = "its node " + in.Node() + " is powered down"
		}
		terminate(in, RuleOrphan, in.Node(), why)
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
			n := v.byName[name]
			if n == nil || waiting[name] || !n.PoweringUp() || n.IsDown() || len(v.claims[name]) > 0 {
				continue
			}
			waiting[name] = true
			plan = append(plan,
				Action{Kind: ActDown, Rule: RuleLeftWaiting, Node: name, Reason: reasonPrefix + "resume did not finish; its instance " + in.ID + " never reached Slurm"},
				Action{Kind: ActPowerDown, Rule: RuleLeftWaiting, Node: name})
		}
	}
	return plan
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
		return RuleFailedResume, true
	}
	return "", false
}

// keepOf picks the instance to keep among several claiming one node: the one Slurm knows (its
// NodeAddr), else the oldest.
func keepOf(n *slurm.Node, claims []fleet.Instance) string {
	for _, in := range claims {
		if in.PrivateIP == n.Addr {
			return in.ID
		}
	}
	oldest := claims[0]
	for _, in := range claims[1:] {
		if in.LaunchTime.Before(oldest.LaunchTime) {
			oldest = in
		}
	}
	return oldest.ID
}

// vanishedReason names the instance a node lost and EC2's state reason.
func vanishedReason(gone []fleet.Instance) string {
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
func (d *Deps) act(ctx context.Context, v *view, plan []Action, sum *ReconcileSummary) []error {
	var errs []error
	terms := map[string][]string{}
	down := map[string][]string{}  // reason -> nodes
	drain := map[string][]string{} // reason -> nodes
	var powerDown, ret []string
	var addrs []slurm.Address
	for _, a := range plan {
		switch a.Kind {
		case ActTerminate:
			terms[a.Region] = append(terms[a.Region], a.Instance)
		case ActDown:
			down[a.Reason] = append(down[a.Reason], a.Node)
		case ActPowerDown:
			powerDown = append(powerDown, a.Node)
		case ActReturn:
			ret = append(ret, a.Node)
		case ActDrain:
			drain[a.Reason] = append(drain[a.Reason], a.Node)
		case ActAddress:
			addrs = append(addrs, slurm.Address{Node: a.Node, Addr: a.Addr, Hostname: a.Hostname})
		}
	}
	regions := make([]string, 0, len(terms))
	for r := range terms {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	for _, r := range regions {
		api := v.apis[r]
		if api == nil {
			errs = append(errs, fmt.Errorf("no EC2 client for region %s", r))
			continue
		}
		_, unknown, err := fleet.Terminate(ctx, api, r, terms[r])
		if len(unknown) > 0 {
			d.log().Info("instances already gone", "instances", unknown)
		}
		if err != nil {
			sum.EC2Errors[fleet.ErrorCode(err)]++
			errs = append(errs, err)
		}
	}
	// Many nodes losing their instances at once (a bulk spot interruption) share one reason per
	// EC2 state reason, so Slurm gets a few calls, not one per node.
	down = mergeReasons(down, func(r string) string {
		if i := strings.LastIndex(r, " ("); i > 0 {
			return reasonPrefix + "instance gone" + r[i:]
		}
		return r
	})
	drain = mergeReasons(drain, func(string) string { return reasonPrefix + "spot interruption notice" })
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
		if n := v.byName[a.Node]; (a.Kind == ActDown || a.Kind == ActPowerDown) && n != nil && (n.Addr == "" || n.Addr == n.Name) && !slices.Contains(unaddressed, n.Name) {
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
