package burst

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// The acting side of backoff.go: what resume, resume-fail, reconcile and release do with the
// decisions. Each function is one well-located hook of its use case.

// jobCommenter tells a pending job why its nodes do not come; *slurm.Client satisfies it.
type jobCommenter interface {
	SetJobAdminComment(ctx context.Context, jobID int64, comment string) error
}

var _ jobCommenter = (*slurm.Client)(nil)

// maxJobComments bounds the scontrol calls one run spends on explaining jobs.
const maxJobComments = 50

// explainJobs sets the AdminComment of the jobs of SLURM_RESUME_FILE that asked for any of
// nodes (set DOWN by the back-off): Slurm shows them "Nodes required for job are DOWN, DRAINED
// or reserved..." as their Reason, and `scontrol show job` shows the comment with the cause.
// Best effort: a failure is logged, never fatal.
func (d *Deps) explainJobs(ctx context.Context, resumeFile []byte, nodes []string, comment string) {
	jc, ok := d.Slurm.(jobCommenter)
	if !ok || len(resumeFile) == 0 || len(nodes) == 0 {
		return
	}
	_, jobs, err := ParseResumeFile(resumeFile)
	if err != nil {
		return
	}
	want := map[string]bool{}
	for _, n := range nodes {
		want[n] = true
	}
	done := 0
	for _, j := range jobs {
		names, err := hostlist.Expand(j.Nodes)
		if err != nil || !slices.ContainsFunc(names, func(n string) bool { return want[n] }) {
			continue
		}
		if done == maxJobComments {
			d.log().Warn("more jobs wait for held nodes than one run explains", "limit", maxJobComments)
			return
		}
		done++
		if err := jc.SetJobAdminComment(ctx, j.JobID, comment); err != nil {
			d.log().Warn("could not tell a job why its nodes do not come", "job", j.JobID, "err", err)
		}
	}
}

// jobComment is the AdminComment of a job whose nodes the back-off took.
func jobComment(group string, r failureRecord) string {
	what := "backing off"
	if r.Held() {
		what = "held"
	}
	return fmt.Sprintf("slurm-ec2: node group %s %s after %d %s failure(s) in a row (%s); nodes DOWN until %s; see 'sinfo -R' and 'slurm-ec2 status'",
		group, what, r.Count, r.Kind, cleanDetail(r.Detail), r.Until.UTC().Format(time.RFC3339))
}

// gateGroups is resume's hook: for each group asked, the back-off decides which nodes launch.
// Nodes that may not launch are set DOWN with the group's record (and their jobs told why);
// a held group's probe moves the next probe time on every holder. It returns the groups left
// to launch (with r.t.byGroup cut to the nodes that launch) and the failure count to tag each
// group's instances with.
func (r *resumeRun) gateGroups(ctx context.Context, groups []*config.NodeGroup, resumeFile []byte) ([]*config.NodeGroup, map[*config.NodeGroup]int) {
	if len(r.slurm) == 0 {
		return groups, nil // Slurm unread: nothing is known of failures
	}
	nodes := make([]slurm.Node, 0, len(r.slurm))
	for _, n := range r.slurm {
		nodes = append(nodes, n)
	}
	fs := readFailures(r.d.Config, nodes)
	p := r.d.backOffPolicy()
	now := r.d.now()
	tags := map[*config.NodeGroup]int{}
	var out []*config.NodeGroup
	for _, g := range groups {
		gf := fs[g.Name()]
		// Nodes that already have a live instance are reused, never gated.
		var need, have []string
		for _, n := range r.t.byGroup[g] {
			if r.view != nil && len(r.view.Of(n)) > 0 {
				have = append(have, n)
			} else {
				need = append(need, n)
			}
		}
		gate := gateLaunch(gf, need, now, p)
		gate.Launch = append(have, gate.Launch...)
		if len(gate.Down) > 0 {
			r.d.log().Warn("node group backing off after failed launches or boots; nodes set DOWN without launching",
				"node_group", g.Name(), "nodes", nodeList(gate.Down), "failures", gf.Count, "until", gf.Until.UTC().Format(time.RFC3339), "reason", gate.Reason)
			r.markDown(ctx, gate.Down, gate.Reason, "BackOff", true)
			rec, _ := parseBackOffReason(gate.Reason)
			r.d.explainJobs(ctx, resumeFile, gate.Down, jobComment(g.Name(), rec))
		}
		if len(gate.Restamp) > 0 {
			if err := r.d.Slurm.Update(ctx, gate.Restamp, slurm.StateDown, gate.Reason); err != nil {
				r.d.log().Warn("could not move the next probe time of a held group", "node_group", g.Name(), "err", err)
			}
		}
		if gate.Probe {
			r.d.log().Info("held node group: probing with one node", "node_group", g.Name(), "node", gate.Launch[0], "failures", gf.Count)
		}
		r.t.byGroup[g] = gate.Launch
		if gate.Tag > 0 {
			tags[g] = gate.Tag
		}
		if len(gate.Launch) > 0 {
			out = append(out, g)
		}
	}
	return out, tags
}

// failureTags are the launch tags that carry a group's failure count to its instances.
func failureTags(count int) []types.Tag {
	if count <= 0 {
		return nil
	}
	return []types.Tag{fleet.T(tagFailures, strconv.Itoa(count))}
}

// launchFailed is resume's hook for a CreateFleet that launched nothing: an error retrying
// cannot fix starts (or continues) the group's back-off; it returns false for any other error,
// which the caller handles as before.
func (r *resumeRun) launchFailed(ctx context.Context, g *config.NodeGroup, nodes []string, code, detail string, resumeFile []byte) bool {
	if !fleet.IsPermanent(code) {
		return false
	}
	var gf *groupFailures
	if len(r.slurm) > 0 {
		all := make([]slurm.Node, 0, len(r.slurm))
		for _, n := range r.slurm {
			all = append(all, n)
		}
		gf = readFailures(r.d.Config, all)[g.Name()]
	}
	rec := recordFailure(gf, kindLaunch, code, -1, r.d.now(), r.d.backOffPolicy())
	reason := backOffReason(g.Name(), rec)
	r.d.log().Error("CreateFleet failed with an error retrying cannot fix; node group backs off",
		"node_group", g.Name(), "nodes", nodeList(nodes), "code", code, "failures", rec.Count, "held", rec.Held(),
		"until", rec.Until.UTC().Format(time.RFC3339), "err", firstLine(detail), "look_at", lookAt(code))
	r.markDown(ctx, nodes, reason, code, true)
	r.d.explainJobs(ctx, resumeFile, nodes, jobComment(g.Name(), rec))
	return true
}

// allPermanent reports whether every per-override error of a fleet that launched nothing is
// one retrying cannot fix (an AMI that does not exist fails every override alike).
func allPermanent(errs []fleet.LaunchError) (string, bool) {
	if len(errs) == 0 {
		return "", false
	}
	for _, e := range errs {
		if !fleet.IsPermanent(e.Code) {
			return "", false
		}
	}
	return errs[0].Code, true
}

// lookAt tells the operator where to look for an error code.
func lookAt(code string) string {
	switch fleet.ClassOf(code) {
	case fleet.ClassPermission:
		return "the head node's IAM permissions (slurm-ec2 iam-policy) and the account's state"
	case fleet.ClassConfig:
		return "the node group's launch template, image, subnets and overrides (slurm-ec2 validate --aws)"
	}
	return "the instance's console output (in this log) and the compute node's slurmd"
}

// recordBootFailures is resume-fail's hook: the nodes that missed ResumeTimeout get their
// group's record, one failure more per group and call. It logs the last console lines of one
// failed instance per group: what an operator needs to see why the image does not boot.
func (d *Deps) recordBootFailures(ctx context.Context, nodes []string, v *inventory.View, found map[string][]string) error {
	byGroup := map[*config.NodeGroup][]string{}
	var order []*config.NodeGroup
	for _, n := range nodes {
		g, _, ok := d.Config.LookupNode(n)
		if !ok {
			continue
		}
		if v != nil {
			if sn := v.Node(n); sn != nil {
				if _, counted := parseBackOffReason(sn.Reason); counted {
					continue // a reconcile that ran at ResumeTimeout counted it already
				}
			}
		}
		if _, seen := byGroup[g]; !seen {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], n)
	}
	var all []slurm.Node
	if v != nil {
		for _, n := range v.Nodes() {
			all = append(all, *n)
		}
	}
	fs := readFailures(d.Config, all)
	p := d.backOffPolicy()
	var errs []error
	for _, g := range order {
		names := byGroup[g]
		detail := names[0] + " never registered with Slurm within ResumeTimeout"
		var inst string
		if ids := found[names[0]]; len(ids) > 0 {
			inst = ids[0]
			detail = names[0] + " (" + inst + ") never registered with Slurm within ResumeTimeout"
		}
		// Instances launched at the same count are one try (their tag says which).
		at := -1
		for _, n := range names {
			for _, id := range found[n] {
				if in, ok := instanceOf(v, id); ok {
					at = max(at, failuresTag(in))
				}
			}
		}
		rec := recordFailure(fs[g.Name()], kindBoot, detail, at, d.now(), p)
		reason := backOffReason(g.Name(), rec)
		attrs := []any{"node_group", g.Name(), "nodes", nodeList(names), "failures", rec.Count, "held", rec.Held(),
			"until", rec.Until.UTC().Format(time.RFC3339), "look_at", lookAt("")}
		if inst != "" {
			attrs = append(attrs, "instance", inst, "console", d.consoleTail(ctx, g, inst))
		}
		d.log().Error("nodes did not register with Slurm in time; node group backs off", attrs...)
		if err := d.Slurm.Update(ctx, names, slurm.StateDown, reason); err != nil {
			errs = append(errs, fmt.Errorf("could not leave the back-off reason on %s: %w", nodeList(names), err))
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func instanceOf(v *inventory.View, id string) (fleet.Instance, bool) {
	if v == nil {
		return fleet.Instance{}, false
	}
	l, ok := v.Instance(id)
	return l.Instance, ok
}

// consoleLines is how much of a failed instance's console goes into the log.
const consoleLines = 5

// consoleTail reads the last lines of an instance's console for the log (best effort: a
// missing permission or an instance without output gives a short note instead).
func (d *Deps) consoleTail(ctx context.Context, g *config.NodeGroup, id string) string {
	api, err := d.EC2.Get(ctx, g.Region, g.ProfileName)
	if err != nil {
		return "no EC2 client: " + firstLine(err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	lines, err := fleet.ConsoleTail(ctx, api, id, consoleLines)
	switch {
	case err != nil:
		return "unavailable: " + fleet.ErrorCode(err)
	case len(lines) == 0:
		return "empty"
	}
	return strings.Join(lines, " | ")
}

// Release ends the back-off or hold of node groups at once (`slurm-ec2 release GROUP`): every
// node DOWN with a back-off reason returns to service, and the count is zero again. It
// returns the nodes released.
func Release(ctx context.Context, d *Deps, groups []string) ([]string, error) {
	for _, g := range groups {
		if _, ok := d.Config.NodeGroup(g); !ok {
			return nil, fmt.Errorf("%q is not a node group of partitions.json (node groups are named <PartitionName>-<NodeGroupName>)", g)
		}
	}
	unlock, err := d.lockGroups(ctx, groups)
	if err != nil {
		return nil, err
	}
	defer unlock()
	nodes, err := d.Slurm.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading Slurm's nodes: %w", err)
	}
	fs := readFailures(d.Config, nodes)
	var names []string
	for _, g := range groups {
		if gf := fs[g]; gf != nil {
			names = append(names, gf.Holders...)
		}
	}
	if len(names) == 0 {
		d.log().Info("release: no node is held", "node_groups", strings.Join(groups, ","))
		return nil, nil
	}
	if err := d.Slurm.Update(ctx, names, slurm.StateResume, ""); err != nil {
		return nil, fmt.Errorf("returning %s to service: %w", nodeList(names), err)
	}
	d.log().Info("released node groups from back-off", "node_groups", strings.Join(groups, ","), "nodes", nodeList(names), "count", len(names))
	return names, nil
}

// writeBackOffMetrics adds the node groups' failures to reconcile's metrics.
func writeBackOffMetrics(b *strings.Builder, groups []GroupBackOff, now time.Time) {
	gauge := func(name, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	gauge("slurm_ec2_node_group_failures", "Failed launches or boots in a row of each node group (0: none).")
	for _, g := range groups {
		fmt.Fprintf(b, "slurm_ec2_node_group_failures{node_group=%q} %d\n", g.Group, g.Failures)
	}
	gauge("slurm_ec2_node_group_held", "1 when the node group is held after HoldAfterFailures failures in a row.")
	for _, g := range groups {
		held := 0
		if g.Held {
			held = 1
		}
		fmt.Fprintf(b, "slurm_ec2_node_group_held{node_group=%q} %d\n", g.Group, held)
	}
	gauge("slurm_ec2_node_group_backoff_seconds", "Seconds until the node group may launch again (held: until its next probe).")
	for _, g := range groups {
		left := 0.0
		if g.Failures > 0 && g.Until.After(now) {
			left = g.Until.Sub(now).Seconds()
		}
		fmt.Fprintf(b, "slurm_ec2_node_group_backoff_seconds{node_group=%q} %.0f\n", g.Group, left)
	}
}

// logBackOff is a helper for a structured log of a group's state (status, reconcile).
func logBackOff(log *slog.Logger, g GroupBackOff) {
	if g.Failures == 0 {
		return
	}
	log.Warn("node group has failed launches or boots", "node_group", g.Group, "failures", g.Failures, "held", g.Held,
		"kind", g.Kind, "detail", g.Detail, "until", g.Until.UTC().Format(time.RFC3339), "nodes_down", g.Nodes)
}

// backOffActions is reconcile's back-off rule (built in, after the other rules): per group,
// count the boots that missed ResumeTimeout, end the failures when a node registered, hold,
// probe, and return what the back-off no longer needs. Pure and deterministic (config order,
// sorted nodes), as reconcile's re-check under the locks requires.
func backOffActions(d *Deps, v *inventory.View, now time.Time) []Action {
	p := d.backOffPolicy()
	var nodes []slurm.Node
	for _, n := range v.Nodes() {
		if !v.Unknown(n.Name) {
			nodes = append(nodes, *n)
		}
	}
	fs := readFailures(d.Config, nodes)
	timed := map[string]map[string]int{}
	for i := range nodes {
		n := &nodes[i]
		g, _, ok := d.Config.LookupNode(n.Name)
		if !ok {
			continue
		}
		gf := fs[g.Name()]
		switch {
		case n.IsDown() && strings.HasPrefix(n.Reason, resumeTimeoutReason):
			// Slurm's own reason: no ResumeFailProgram, or it has not run yet. The instance's
			// tag (live, or dead but still listed) says at which count it was launched.
			at := -1
			for _, in := range v.Of(n.Name) {
				at = max(at, failuresTag(in.Instance))
			}
			if dead := v.DeadOf(n.Name); len(dead) > 0 {
				at = max(at, failuresTag(dead[0].Instance))
			}
			if timed[g.Name()] == nil {
				timed[g.Name()] = map[string]int{}
			}
			timed[g.Name()][n.Name] = at
		case inventory.PoweredUp(n) && !n.PoweringUp() && !n.IsDown() && n.Responding():
			for _, in := range v.Claims(n.Name) {
				if in.LaunchTime.After(gf.Healthy) {
					gf.Healthy = in.LaunchTime
				}
			}
		}
	}
	var plan []Action
	for _, g := range d.Config.NodeGroups() {
		gf := fs[g.Name()]
		if gf == nil {
			continue
		}
		bp := planBackOff(gf, timed[g.Name()], now, p)
		owned := slices.Sorted(maps.Keys(bp.Handled))
		for _, name := range owned {
			// A node the back-off keeps DOWN has no business with an instance.
			if slices.Contains(bp.Return, name) {
				continue
			}
			for _, in := range v.Of(name) {
				plan = append(plan, Action{Kind: ActTerminate, Rule: RuleBackOff, Node: name, Instance: in.ID, Region: in.Region,
					Profile: in.Key.Profile, Reason: "node " + name + " is DOWN for its group's back-off"})
			}
			if n := v.Node(name); n != nil && !n.PoweredDown() && !n.PoweringDown() {
				plan = append(plan, Action{Kind: ActPowerDown, Rule: RuleBackOff, Node: name})
			}
		}
		for _, name := range slices.Sorted(maps.Keys(bp.Down)) {
			rule := RuleBackOff
			if r, _ := parseBackOffReason(bp.Down[name]); r.Held() {
				rule = RuleHold
			}
			plan = append(plan, Action{Kind: ActDown, Rule: rule, Node: name, Reason: bp.Down[name]})
		}
		for _, name := range bp.Return {
			rule := RuleBackOffOver
			switch {
			case bp.Reset:
				rule = RuleBackOffReset
			case name == bp.Probe:
				rule = RuleProbe
			}
			plan = append(plan, Action{Kind: ActReturn, Rule: rule, Node: name})
		}
	}
	return plan
}

// ownedByBackOff reports a DOWN node whose fate the back-off rule decides: its reason is a
// back-off record, or Slurm's ResumeTimeout (a failed boot, counted by the back-off).
func ownedByBackOff(n *slurm.Node) bool {
	if !n.IsDown() {
		return false
	}
	if _, ok := parseBackOffReason(n.Reason); ok {
		return true
	}
	return strings.HasPrefix(n.Reason, resumeTimeoutReason)
}

// nodesOf copies the configured nodes of a view whose EC2 side was read.
func nodesOf(v *inventory.View) []slurm.Node {
	var out []slurm.Node
	for _, n := range v.Nodes() {
		if !v.Unknown(n.Name) {
			out = append(out, *n)
		}
	}
	return out
}

// writeBackOffTable prints the node groups with failures under status's table.
func writeBackOffTable(w io.Writer, groups []GroupBackOff, now time.Time) error {
	for _, g := range groups {
		if g.Failures == 0 {
			continue
		}
		what, when := "backing off", "launches wait until"
		if g.Held {
			what, when = "HELD", "next probe"
		}
		left := ""
		if g.Until.After(now) {
			left = " (in " + g.Until.Sub(now).Round(time.Second).String() + ")"
		}
		if _, err := fmt.Fprintf(w, "node group %s %s: %d %s failure(s) in a row (%s); %d nodes DOWN; %s %s%s; release now: slurm-ec2 release %s\n",
			g.Group, what, g.Failures, g.Kind, g.Detail, g.Nodes, when, g.Until.UTC().Format(time.RFC3339), left, g.Group); err != nil {
			return err
		}
	}
	return nil
}

// pendingLister lists pending jobs; *slurm.Client satisfies it.
type pendingLister interface {
	PendingJobs(ctx context.Context) ([]slurm.PendingJob, error)
}

var _ pendingLister = (*slurm.Client)(nil)

// explainHeld is reconcile's hook after acting: when it held a group (or took more of its nodes),
// the jobs pending in the group's partition are told why, with the group's record. Jobs a
// resume already told about a back-off get the newer word. Best effort.
func (d *Deps) explainHeld(ctx context.Context, plan []Action) {
	jc, ok1 := d.Slurm.(jobCommenter)
	pl, ok2 := d.Slurm.(pendingLister)
	if !ok1 || !ok2 {
		return
	}
	held := map[string]failureRecord{} // partition -> record of a group held in it
	var heldGroups []string
	for _, a := range plan {
		if a.Kind != ActDown || a.Rule != RuleHold {
			continue
		}
		g, _, ok := d.Config.LookupNode(a.Node)
		r, rok := parseBackOffReason(a.Reason)
		if !ok || !rok || slices.Contains(heldGroups, g.Name()) {
			continue
		}
		heldGroups = append(heldGroups, g.Name())
		held[g.Partition] = r
	}
	if len(held) == 0 {
		return
	}
	jobs, err := pl.PendingJobs(ctx)
	if err != nil {
		d.log().Warn("could not list pending jobs to tell them a node group is held", "err", err)
		return
	}
	done := 0
	for _, j := range jobs {
		for _, p := range j.Partitions {
			r, ok := held[p]
			if !ok {
				continue
			}
			group := ""
			for _, g := range heldGroups {
				if ng, _ := d.Config.NodeGroup(g); ng != nil && ng.Partition == p {
					group = g
				}
			}
			if done == maxJobComments {
				return
			}
			done++
			if err := jc.SetJobAdminComment(ctx, j.ID, jobComment(group, r)); err != nil {
				d.log().Warn("could not tell a job why its nodes do not come", "job", j.ID, "err", err)
			}
			break
		}
	}
}
