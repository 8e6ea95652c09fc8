package burst

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// Failed launches and boots: back off, hold, explain.
//
// A node group counts its failures in a row: boots that failed (the node never registered with
// Slurm within ResumeTimeout) and launches EC2 refused with an error retrying cannot fix
// (fleet.IsPermanent). After the first failure the group backs off: no CreateFleet until
// BackOffBaseSeconds × 2^(failures-1), at most BackOffMaxSeconds, have passed. After
// HoldAfterFailures in a row it is held: every powered-down node of the group goes DOWN with a
// reason that says what failed, how often and what to look at, so jobs stop waiting for it, and
// one node is offered to Slurm again at each back-off interval as a probe. A node of the group
// that registers (its instance launched after the last failure) ends it all: the count is zero
// again and every node the back-off took is returned. `slurm-ec2 release GROUP` does the same at
// once.
//
// Where the count lives, with no state file on the head node (DESIGN.md):
//   - In the reason of the DOWN nodes the back-off took, with the time launches may start again:
//     "slurm-ec2: back-off 2/3: boot failure (...); launches wait until 2026-12-01T22:10:00Z".
//     Slurm keeps reasons across slurmctld restarts and shows them to users and in sinfo -R,
//     which is where an operator looks first. As long as failures are remembered, one node of
//     the group keeps its record and stays DOWN (the keeper), even when the back-off is over.
//   - On every instance launched while the group has failures, the tag slurm-ec2:failures=N (the
//     count at launch). Slurm overwrites a node's reason with "ResumeTimeout reached" when the
//     boot fails, and a group of one node has no other node to keep the record; the instance's
//     tag still says how many failures came before it, so the next count is N+1. Two instances
//     launched at the same count that both fail count once: they are one try.

// tagFailures is the instance tag that carries the group's failure count at launch.
const tagFailures = "slurm-ec2:failures"

// failureKind is what failed.
type failureKind string

const (
	kindBoot   failureKind = "boot"   // the node never registered with Slurm (ResumeTimeout)
	kindLaunch failureKind = "launch" // EC2 refused the launch with a permanent error
)

// backOffPolicy is config.json's back-off settings.
type backOffPolicy struct {
	base, max     time.Duration
	holdAfter     int
	resumeTimeout time.Duration
}

func (d *Deps) backOffPolicy() backOffPolicy {
	c := d.Config
	p := backOffPolicy{
		base:          time.Duration(c.BackOffBaseSeconds) * time.Second,
		max:           time.Duration(c.BackOffMaxSeconds) * time.Second,
		holdAfter:     c.HoldAfterFailures,
		resumeTimeout: d.resumeTimeout(),
	}
	if p.base <= 0 {
		p.base = config.DefaultBackOffBaseSeconds * time.Second
	}
	if p.max < p.base {
		p.max = max(p.base, config.DefaultBackOffMaxSeconds*time.Second)
	}
	if p.holdAfter <= 0 {
		p.holdAfter = config.DefaultHoldAfterFailures
	}
	return p
}

// delay is the back-off after count failures in a row: base, 2×base, 4×base, … up to max.
func (p backOffPolicy) delay(count int) time.Duration {
	if count <= 0 {
		return 0
	}
	d := p.base
	for i := 1; i < count && d < p.max; i++ {
		d *= 2
	}
	return min(d, p.max)
}

// probeInterval is the time between two probes of a held group: the back-off, but never less
// than a boot can take, so a probe has failed or succeeded before the next one starts.
func (p backOffPolicy) probeInterval(count int) time.Duration {
	return max(p.delay(count), p.resumeTimeout+time.Minute)
}

// failureRecord is what a back-off reason says.
type failureRecord struct {
	Count     int         // failures in a row
	HoldAfter int         // the HoldAfterFailures in force when it was written
	Kind      failureKind // what failed last
	Detail    string      // EC2 error code, or which instance never registered
	Until     time.Time   // launches wait until then (held: the next probe)
}

// Held reports a group held after HoldAfterFailures failures in a row.
func (r failureRecord) Held() bool { return r.Count > 0 && r.Count >= r.HoldAfter }

// Due reports whether launches (or, when held, a probe) may start at now.
func (r failureRecord) Due(now time.Time) bool { return !r.Until.After(now) }

// maxDetail bounds the free text in a reason (Slurm shows reasons in one line of sinfo -R).
const maxDetail = 100

// backOffReason writes the record as the reason of a node the back-off took:
//
//	slurm-ec2: back-off 1/3: launch failure (InvalidLaunchTemplateName.NotFoundException); launches wait until 2026-12-01T22:10:00Z
//	slurm-ec2: held 3/3: boot failure (i-0abc never registered; see its console output in the log); next probe 2026-12-01T22:40:00Z; release now: slurm-ec2 release aws-node
func backOffReason(group string, r failureRecord) string {
	detail := cleanDetail(r.Detail)
	until := r.Until.UTC().Format(time.RFC3339)
	if r.Held() {
		return fmt.Sprintf("%sheld %d/%d: %s failure (%s); next probe %s; release now: slurm-ec2 release %s",
			reasonPrefix, r.Count, r.HoldAfter, r.Kind, detail, until, group)
	}
	return fmt.Sprintf("%sback-off %d/%d: %s failure (%s); launches wait until %s",
		reasonPrefix, r.Count, r.HoldAfter, r.Kind, detail, until)
}

// cleanDetail keeps a detail to one short line without the characters the reason's own syntax uses.
func cleanDetail(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '(' || r == ')':
			return ' '
		case r < ' ' || r == 0x7f:
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "..."
	}
	if s == "" {
		s = "no detail"
	}
	return s
}

var backOffRE = regexp.MustCompile(`^slurm-ec2: (back-off|held) ([0-9]{1,4})/([0-9]{1,4}): (boot|launch) failure \(([^()]*)\); (?:launches wait until|next probe) ([0-9TZ:+-]+)(?:;|$)`)

// parseBackOffReason reads a reason written by backOffReason.
func parseBackOffReason(s string) (failureRecord, bool) {
	m := backOffRE.FindStringSubmatch(s)
	if m == nil {
		return failureRecord{}, false
	}
	count, _ := strconv.Atoi(m[2])
	hold, _ := strconv.Atoi(m[3])
	until, err := time.Parse(time.RFC3339, m[6])
	if err != nil || count < 1 || hold < 1 {
		return failureRecord{}, false
	}
	return failureRecord{Count: count, HoldAfter: hold, Kind: failureKind(m[4]), Detail: m[5], Until: until}, true
}

// groupFailures is a node group's failure record as Slurm's nodes hold it.
type groupFailures struct {
	Group string
	failureRecord
	Since   time.Time // when the newest record was written (Slurm's reason time)
	Holders []string  // DOWN nodes that carry a record, sorted
	Idle    []string  // powered-down nodes that are not DOWN: Slurm may still give them jobs
	Stale   []string  // holders whose record is older than the group's (fewer failures)
	// Healthy is the launch time of the newest instance whose node registered (up, responding);
	// set by the caller that knows instances (reconcile).
	Healthy time.Time
}

// readFailures reads every group's record from Slurm's nodes (one pass over all nodes). Groups
// with no record are absent unless they have nodes; callers use Count == 0 for "no failures".
func readFailures(cfg *config.Config, nodes []slurm.Node) map[string]*groupFailures {
	out := map[string]*groupFailures{}
	counts := map[string]int{}
	for i := range nodes {
		n := &nodes[i]
		g, _, ok := cfg.LookupNode(n.Name)
		if !ok {
			continue
		}
		gf := out[g.Name()]
		if gf == nil {
			gf = &groupFailures{Group: g.Name()}
			out[g.Name()] = gf
		}
		r, ok := parseBackOffReason(n.Reason)
		switch {
		case ok && n.IsDown():
			gf.Holders = append(gf.Holders, n.Name)
			counts[n.Name] = r.Count
			if r.Count > gf.Count || (r.Count == gf.Count && r.Until.After(gf.Until)) {
				gf.failureRecord = r
			}
			if n.ReasonTime.After(gf.Since) {
				gf.Since = n.ReasonTime
			}
		case n.PoweredDown() && !n.IsDown() && !n.Drained():
			gf.Idle = append(gf.Idle, n.Name)
		}
	}
	for _, gf := range out {
		slices.Sort(gf.Holders)
		slices.Sort(gf.Idle)
		for _, h := range gf.Holders {
			if counts[h] < gf.Count {
				gf.Stale = append(gf.Stale, h)
			}
		}
	}
	return out
}

// launchGate is what resume does with the nodes of one group it was asked to launch.
type launchGate struct {
	Launch []string // nodes to launch
	Down   []string // nodes to set DOWN with Reason, without launching
	// Restamp are DOWN nodes that keep the record, to be given Reason (a probe moves the next
	// probe time forward on every holder, so a second resume does not probe again).
	Restamp []string
	Reason  string
	Probe   bool // Launch is one node probing a held group
	Tag     int  // the failure count to tag the launched instances with (0: no tag)
}

// gateLaunch decides, for the nodes of one group that resume was asked for, which to launch.
func gateLaunch(gf *groupFailures, nodes []string, now time.Time, p backOffPolicy) launchGate {
	if gf == nil || gf.Count == 0 || len(nodes) == 0 {
		return launchGate{Launch: nodes}
	}
	r := gf.failureRecord
	r.HoldAfter = p.holdAfter // the configuration in force decides, not the one that wrote the record
	switch {
	case !r.Due(now):
		return launchGate{Down: nodes, Reason: backOffReason(gf.Group, r)}
	case !r.Held():
		// The back-off is over: launch, and tag the instances with the count so a failure
		// of theirs continues it.
		return launchGate{Launch: nodes, Tag: r.Count}
	}
	// Held and due: one node probes; every other node, and every holder, waits for the next
	// probe.
	r.Until = now.Add(p.probeInterval(r.Count))
	probe := nodes[0]
	var restamp []string
	for _, h := range gf.Holders {
		if !slices.Contains(nodes, h) {
			restamp = append(restamp, h)
		}
	}
	return launchGate{Launch: []string{probe}, Down: nodes[1:], Restamp: restamp, Reason: backOffReason(gf.Group, r),
		Probe: true, Tag: r.Count}
}

// recordFailure is the record after a failure of kind in a group whose record is gf. launchedAt
// is the failure count the failed instance was tagged with at launch (-1 when unknown: a launch
// error, or no instance found): instances launched at the same count are one try.
func recordFailure(gf *groupFailures, kind failureKind, detail string, launchedAt int, now time.Time, p backOffPolicy) failureRecord {
	prior := 0
	if gf != nil {
		prior = gf.Count
	}
	count := prior + 1
	if launchedAt >= 0 {
		count = max(launchedAt+1, prior)
	}
	r := failureRecord{Count: count, HoldAfter: p.holdAfter, Kind: kind, Detail: detail, Until: now.Add(p.delay(count))}
	if gf != nil && count == prior && gf.Until.After(r.Until) {
		r.Until = gf.Until // counted already: never shorten a wait
	}
	return r
}

// failuresTag reads an instance's slurm-ec2:failures tag (-1 when absent or malformed).
func failuresTag(in fleet.Instance) int {
	v, ok := in.Tags[tagFailures]
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 10000 {
		return -1
	}
	return n
}

// backOffPlan is what reconcile does about one group's failures.
type backOffPlan struct {
	Return  []string          // DOWN nodes to return to service
	Down    map[string]string // node -> reason: nodes to set DOWN with a record
	Handled map[string]bool   // DOWN nodes whose fate this plan decides (the other rules leave them)
	Reset   bool              // a node registered: the count is back to zero
	Probe   string            // the node left (or put back) in service for a held group's probe
}

// planBackOff decides what reconcile does about a group's failures at now:
//   - a node of the group registered with an instance launched after the newest record: the
//     failures are over; every holder returns to service;
//   - nodes Slurm took DOWN with "ResumeTimeout reached" (no ResumeFailProgram, or it has not run
//     yet) are boot failures: counted (timedOut gives the count their instance was tagged with at
//     launch, -1 if unknown), and their reason becomes the record;
//   - held: every idle node goes DOWN with the record, but when the probe is due one node stays
//     in service (an idle one, else a holder returned) for Slurm to give a job to;
//   - backing off and due: every holder but one (the keeper of the count) returns; the keeper
//     too when the group has no idle node left;
//   - backing off, not due: holders stay DOWN;
//   - not held, and no new failure for BackOffMaxSeconds after the back-off ended: forgotten,
//     every holder returns.
func planBackOff(gf *groupFailures, timedOut map[string]int, now time.Time, p backOffPolicy) backOffPlan {
	plan := backOffPlan{Down: map[string]string{}, Handled: map[string]bool{}}
	if gf == nil {
		return plan
	}
	for n := range timedOut {
		plan.Handled[n] = true
	}
	for _, n := range gf.Holders {
		plan.Handled[n] = true
	}
	cur := *gf
	if gf.Count > 0 && !gf.Healthy.IsZero() && !gf.Healthy.Before(gf.Since) {
		plan.Reset = true
		plan.Return = slices.Clone(gf.Holders)
		cur = groupFailures{Group: gf.Group, Idle: gf.Idle}
	}
	cur.HoldAfter = p.holdAfter
	if len(timedOut) > 0 {
		at := -1
		for _, t := range timedOut {
			at = max(at, t)
		}
		names := sortedKeysOf2(timedOut)
		r := recordFailure(&cur, kindBoot, names[0]+" never registered with Slurm within ResumeTimeout", at, now, p)
		reason := backOffReason(gf.Group, r)
		for _, n := range names {
			plan.Down[n] = reason
		}
		cur.failureRecord = r
		cur.Holders = mergeSorted(cur.Holders, names)
	}
	r := cur.failureRecord
	if r.Count == 0 {
		return plan
	}
	if len(timedOut) == 0 && !r.Held() && now.After(r.Until.Add(p.max)) {
		// No failure for BackOffMaxSeconds after the back-off ended: the failures were not "in a
		// row" with anything; forget them (nothing stays DOWN for good without a new failure).
		plan.Return = slices.Clone(cur.Holders)
		return plan
	}
	switch {
	case r.Held():
		reason := backOffReason(gf.Group, r)
		idle := cur.Idle
		if r.Due(now) {
			if len(idle) > 0 {
				plan.Probe, idle = idle[0], idle[1:]
			} else if len(cur.Holders) > 0 && len(plan.Down) == 0 {
				plan.Probe = cur.Holders[0]
				plan.Return = append(plan.Return, plan.Probe)
			}
		}
		for _, n := range idle {
			plan.Down[n] = reason
		}
	case r.Due(now) && len(cur.Holders) > 0:
		// One holder keeps the count while Slurm has other nodes of the group to use; when it
		// has none (a group of one node), the keeper returns too, or nothing could ever probe.
		keeper := ""
		if len(cur.Idle) > 0 {
			keeper = cur.Holders[len(cur.Holders)-1]
		}
		for _, h := range cur.Holders {
			if h != keeper && plan.Down[h] == "" {
				plan.Return = append(plan.Return, h)
			}
		}
	}
	slices.Sort(plan.Return)
	plan.Return = slices.Compact(plan.Return)
	if r.Held() && !plan.Reset {
		// Every holder of a held group says so, with the group's record (sinfo -R shows one
		// cause); the next probe time is the record's.
		reason := backOffReason(gf.Group, r)
		if d, ok := plan.Down[firstKey(plan.Down)]; ok {
			reason = d
		}
		for _, h := range gf.Stale {
			if _, ok := plan.Down[h]; !ok && !slices.Contains(plan.Return, h) {
				plan.Down[h] = reason
			}
		}
	}
	return plan
}

func firstKey(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func sortedKeysOf2(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// GroupBackOff is one node group's failures, for status and metrics.
type GroupBackOff struct {
	Group    string    `json:"node_group"`
	Failures int       `json:"failures"`
	Kind     string    `json:"kind,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Until    time.Time `json:"until,omitzero"` // launches (held: the next probe) wait until then
	Held     bool      `json:"held"`
	Nodes    int       `json:"nodes_down"` // nodes the back-off holds DOWN
}

// backOffState reads every node group's failures from Slurm's nodes, in config order; groups
// without failures are included with Failures 0.
func backOffState(cfg *config.Config, nodes []slurm.Node, p backOffPolicy) []GroupBackOff {
	fs := readFailures(cfg, nodes)
	var out []GroupBackOff
	for _, g := range cfg.NodeGroups() {
		gb := GroupBackOff{Group: g.Name()}
		if gf := fs[g.Name()]; gf != nil && gf.Count > 0 {
			r := gf.failureRecord
			r.HoldAfter = p.holdAfter
			gb.Failures, gb.Kind, gb.Detail, gb.Until, gb.Held, gb.Nodes = r.Count, string(r.Kind), r.Detail, r.Until, r.Held(), len(gf.Holders)
		}
		out = append(out, gb)
	}
	return out
}

// BackOffRecord reads a node reason written by the back-off: whether the group is held, and
// until when launches (held: the next probe) wait. ok is false for any other reason.
func BackOffRecord(reason string) (held bool, until time.Time, ok bool) {
	r, ok := parseBackOffReason(reason)
	return r.Held(), r.Until, ok
}
