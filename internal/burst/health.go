package burst

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// Instance health (issue 17): EC2 says ahead of time when it will reboot, stop or retire an
// instance (scheduled events), and when an instance or its host fails its status checks. Reconcile
// reads both once per (region, profile) and acts before jobs die:
//
//   - a scheduled event on a busy node: DRAIN it with a reason naming the event and its date, so
//     its jobs finish and no new one lands; once it is idle, replace it (DOWN, power down,
//     terminate: a later job gets a fresh instance, and the DOWN rule returns the node);
//   - a scheduled event on an idle node: POWER_DOWN now (Slurm waits for a job that slipped in);
//   - status checks failed for longer than HealthCheckGraceSeconds (EC2's ImpairedSince, so the
//     wait spans runs without a state file): DOWN with a reason (its job requeues), power down,
//     terminate the instance;
//   - a node is acted on once: the drain, the DOWN or the power-down is what the next run sees;
//   - an admin's DOWN or DRAIN (a reason not written by slurm-ec2) is never touched.

// Health rules and the action kind only they use.
const (
	RuleScheduledEvent Rule = "scheduled-event" // EC2 scheduled a reboot, stop or retirement
	RuleImpaired       Rule = "status-impaired" // instance or system status check failed past the grace

	// ActPowerDownIdle is POWER_DOWN: Slurm suspends the node once it has no job (an idle node at
	// once), never killing one that slipped in.
	ActPowerDownIdle ActionKind = "power-down-idle"
)

// impairedCode is the first word of the reason of a node taken down for failed status checks.
const impairedCode = "status-check-failed"

// eventReason names the event and when it starts: "slurm-ec2: instance-retirement scheduled for
// 2026-12-04T10:00:00Z". Nodes sharing an event date share a reason (one scontrol call).
func eventReason(e fleet.Event) string {
	return reasonPrefix + e.Code + " scheduled for " + e.NotBefore.UTC().Format(time.RFC3339)
}

// impairedReason says which checks failed and since when.
func impairedReason(h fleet.Health, since time.Time) string {
	return fmt.Sprintf("%s%s since %s: instance status %s, system status %s", reasonPrefix, impairedCode,
		since.UTC().Format(time.RFC3339), h.InstanceStatus, h.SystemStatus)
}

// healthRule tells whether a reason of ours was written by a health rule, and which.
func healthRule(p ParsedReason) (Rule, bool) {
	switch {
	case !p.Ours:
		return "", false
	case p.Code == impairedCode:
		return RuleImpaired, true
	case slices.Contains(fleet.EventCodes, p.Code):
		return RuleScheduledEvent, true
	}
	return "", false
}

// idle is a node with no job; busy one running or finishing jobs.
func idle(n *slurm.Node) bool { return n.State == "IDLE" && !n.Has("COMPLETING") }
func busy(n *slurm.Node) bool {
	return n.State == "ALLOCATED" || n.State == "MIXED" || n.Has("COMPLETING")
}

// HealthPlanner is reconcile's health rules over the health read this run.
func HealthPlanner(health map[string]fleet.Health, grace time.Duration) Planner {
	return func(v *inventory.View, now time.Time, planned []Action) []Action {
		return PlanHealth(v, health, grace, now, planned)
	}
}

// PlanHealth decides what the health of the nodes' instances calls for (see the rules above). It
// is pure. Nodes another rule already acts on are left to it.
func PlanHealth(v *inventory.View, health map[string]fleet.Health, grace time.Duration, now time.Time, planned []Action) []Action {
	if len(health) == 0 {
		return nil
	}
	taken := map[string]bool{}
	for _, a := range planned {
		if a.Kind != ActAddress && a.Kind != ActTag {
			taken[a.Node] = true
		}
	}
	// Only the nodes of instances with a problem: a few, whatever the size of the cluster; in
	// name order, so that the plan is the same for the same view (reconcile re-plans under the
	// locks and keeps what both plans agree on).
	var names []string
	for id := range health {
		if node := v.NodeOf(id); node != "" {
			names = append(names, node)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var plan []Action
	for _, name := range names {
		n := v.Node(name)
		if _, _, ours := v.Config().LookupNode(name); n == nil || !ours {
			continue
		}
		if v.Unknown(n.Name) || taken[n.Name] || n.IsDown() || !inventory.PoweredUp(n) || n.PoweringUp() {
			continue
		}
		in, _, ok := v.Keep(n.Name, v.Claims(n.Name))
		if !ok {
			continue
		}
		h, ok := health[in.ID]
		if !ok {
			continue
		}
		p := ParseReason(n.Reason)
		if n.Drained() && !p.Ours {
			continue // an admin's DRAIN: theirs to lift
		}
		act := func(kind ActionKind, rule Rule, reason string) {
			plan = append(plan, Action{Kind: kind, Rule: rule, Node: n.Name, Instance: in.ID, Region: in.Region, Profile: in.Key.Profile, Reason: reason})
		}
		replace := func(rule Rule, reason string) {
			act(ActDown, rule, reason)
			act(ActPowerDown, rule, "")
			act(ActTerminate, rule, "replaced: "+reason)
		}
		if h.Impaired() {
			since := h.ImpairedSince
			if since.IsZero() {
				since = in.LaunchTime // EC2: for an instance launched impaired, its launch time
			}
			if !now.Add(v.Skew(in.Key)).Before(since.Add(grace)) {
				replace(RuleImpaired, impairedReason(h, since))
				continue
			}
		}
		ev, ok := h.NextEvent()
		if !ok {
			continue
		}
		switch rule, ours := healthRule(p); {
		case n.Drained() && ours && rule == RuleScheduledEvent && idle(n):
			replace(RuleScheduledEvent, n.Reason) // its jobs are done
		case n.Drained():
			// Draining for the event (waits for its jobs), or drained by another rule of ours.
		case busy(n):
			act(ActDrain, RuleScheduledEvent, eventReason(ev))
		case idle(n):
			act(ActPowerDownIdle, RuleScheduledEvent, eventReason(ev))
		}
	}
	return plan
}

// healthProblem is the status column's words for an instance's health, "" when it is fine.
func healthProblem(h fleet.Health, launched, now time.Time, grace time.Duration) string {
	var out string
	if h.Impaired() {
		since := h.ImpairedSince
		if since.IsZero() {
			since = launched
		}
		out = fmt.Sprintf("impaired %s (grace %s)", now.Sub(since).Round(time.Second), grace)
	}
	if ev, ok := h.NextEvent(); ok {
		if out != "" {
			out += ", "
		}
		out += ev.Code + " " + ev.NotBefore.UTC().Format(time.RFC3339)
	}
	return out
}

// readHealth reads the health of the view's live instances: one DescribeHealth per configured
// (region, profile) that has any, in parallel, each with the small retry budget of optional calls. A
// (region, profile) whose health cannot be read is in the error map: its instances are judged on
// the other rules only.
func (d *Deps) readHealth(ctx context.Context, v *inventory.View) (map[string]fleet.Health, map[inventory.Key]error) {
	// Only the (region, profile)s of configured node groups: elsewhere (the --all-regions sweep)
	// every instance of ours is an orphan anyway, and the IAM policy allows only DescribeInstances.
	configured := map[inventory.Key]bool{}
	for _, k := range inventory.Keys(d.Config.NodeGroups()) {
		configured[k] = true
	}
	byKey := map[inventory.Key]bool{}
	for _, in := range v.Live() {
		if configured[in.Key] {
			byKey[in.Key] = true
		}
	}
	out := map[string]fleet.Health{}
	failed := map[inventory.Key]error{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.parallel())
	for k := range byKey {
		g.Go(func() error {
			h, err := d.readHealthOf(gctx, v, k)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[k] = err
				return nil
			}
			for id, x := range h {
				out[id] = x
			}
			return nil
		})
	}
	_ = g.Wait() // every error is kept per key
	return out, failed
}

func (d *Deps) readHealthOf(ctx context.Context, v *inventory.View, k inventory.Key) (map[string]fleet.Health, error) {
	api, err := d.EC2.Get(ctx, k.Region, k.Profile)
	if err != nil {
		return nil, fmt.Errorf("EC2 client for %s: %w", k, err)
	}
	ctx, cancel := context.WithTimeout(ctx, fleet.OptionalTimeout)
	defer cancel()
	return fleet.DescribeHealth(ctx, fleet.AsOptional(api), k.Region, func(id string) bool {
		in, ok := v.Instance(id)
		return ok && in.Key == k && in.Live()
	})
}

// withHealth reads this run's instance health and returns Deps whose planners include the health
// rules; the reads that failed are logged and counted, never fatal.
func (d *Deps) withHealth(ctx context.Context, v *inventory.View, sum *ReconcileSummary) *Deps {
	health, failed := d.readHealth(ctx, v)
	for k, err := range failed {
		sum.EC2Errors[fleet.ErrorCode(err)]++
		d.log().Warn("could not read instance health; scheduled events and status checks are not acted on there this run",
			"region", k.Region, "profile", k.Profile, "err", err)
	}
	sum.Health = map[string]int{}
	for _, h := range health {
		if h.Impaired() {
			sum.Health["impaired"]++
		}
		if _, ok := h.NextEvent(); ok {
			sum.Health["scheduled_event"]++
		}
	}
	grace := time.Duration(d.Config.HealthCheckGraceSeconds) * time.Second
	dd := *d
	dd.Planners = append(slices.Clone(d.Planners), HealthPlanner(health, grace))
	return &dd
}
