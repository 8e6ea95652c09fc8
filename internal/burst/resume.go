package burst

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// ResumeOptions are the inputs of a resume besides the node list.
type ResumeOptions struct {
	// ResumeFile is the content of SLURM_RESUME_FILE (nil when Slurm gave none). It is used for
	// per-job all-or-nothing launches in node groups with AllOrNothing.
	ResumeFile []byte
}

// ResumeSummary counts what a resume did.
type ResumeSummary struct {
	Asked    int            // nodes in the hostlist
	Launched int            // nodes given a new instance
	Reused   int            // nodes that already had a live instance
	Failed   map[string]int // nodes left DOWN, by EC2 error code (or cool-down)
	Unknown  int            // names not in partitions.json
	// AddressesKnown is when Slurm knew the address of the last node that got one.
	AddressesKnown time.Duration
	Duration       time.Duration
}

// FailedTotal is the number of nodes left DOWN.
func (s *ResumeSummary) FailedTotal() int {
	n := 0
	for _, c := range s.Failed {
		n += c
	}
	return n
}

// resumeRun is the state of one resume.
type resumeRun struct {
	d     *Deps
	t     *target
	start time.Time
	runID string
	slurm map[string]slurm.Node // Slurm's configured nodes, by name
	view  *inventory.View

	mu       sync.Mutex
	sum      *ResumeSummary
	problems []error
	tags     *fleet.Taggers

	// Back-off (backoff.go): the failure count each group's instances are tagged with, and the
	// resume file, to tell jobs why their nodes do not come.
	failTags   map[*config.NodeGroup]int
	resumeFile []byte
}

func (r *resumeRun) problem(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, err)
	r.d.log().Error(err.Error())
}

// Resume launches instances for the nodes of the hostlist expr and tells Slurm their addresses.
// It returns an error when Slurm could not be told the truth about every node (the exit status
// of the ResumeProgram); capacity shortfalls are not errors: those nodes are set DOWN with EC2's
// error code so their jobs go elsewhere at once.
func Resume(ctx context.Context, d *Deps, expr string, opts ResumeOptions) (*ResumeSummary, error) {
	r := &resumeRun{d: d, start: d.now(), runID: randomID(), tags: fleet.NewTaggers(ctx, fleet.TagOptions{PerSecond: d.TagsPerSecond, Logger: d.log()}), resumeFile: opts.ResumeFile}
	t, err := d.resolve(expr)
	if err != nil {
		return nil, err
	}
	r.t = t
	r.sum = &ResumeSummary{Asked: len(t.names), Unknown: len(t.unknown), Failed: map[string]int{}}
	if len(t.unknown) > 0 {
		r.markDown(ctx, t.unknown, reasonPrefix+"node not defined in partitions.json", "NotConfigured", false)
	}
	if len(t.groups) == 0 {
		return r.finish()
	}

	// The group locks cover "find existing instances, launch, tell Slurm": a concurrent suspend,
	// resume or reconcile of the same group sees either none of it or all of it.
	unlock, err := d.lockGroups(ctx, groupNames(t.groups))
	if err != nil {
		return nil, err
	}

	// The inventory, read under the locks: Slurm's nodes (NodeAddr finds instances a node
	// already has; reasons record capacity cool-downs) and the live instances of these groups,
	// one DescribeInstances per (region, profile).
	v, err := inventory.Load(ctx, d.sources(), inventory.NodesScope(d.Config, t.names, inventory.SlurmBestEffort))
	if err != nil {
		unlock()
		return nil, err
	}
	r.view = v
	r.slurm = map[string]slurm.Node{}
	for _, n := range v.Nodes() {
		r.slurm[n.Name] = *n
	}
	groups := r.skipCoolingDown(ctx)
	groups, r.failTags = r.gateGroups(ctx, groups, opts.ResumeFile)
	keys, perRegion := byRegion(groups)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.parallel())
	for _, k := range keys {
		g.Go(func() error {
			r.resumeRegion(gctx, k, perRegion[k], opts)
			return nil
		})
	}
	_ = g.Wait()
	unlock()

	// Name and templated tags: sent from CreateFleet's answer on, in node order, at the rate of
	// EC2's CreateTags bucket of each region (fleet.Tagger). Wait for the last.
	r.tags.Wait()
	return r.finish()
}

func (r *resumeRun) finish() (*ResumeSummary, error) {
	s := r.sum
	s.Duration = r.d.now().Sub(r.start)
	attrs := []any{"asked", s.Asked, "launched", s.Launched, "reused", s.Reused, "failed", s.FailedTotal(),
		"unknown", s.Unknown, "seconds", fmt.Sprintf("%.2f", s.Duration.Seconds()),
		"addresses_known_seconds", fmt.Sprintf("%.2f", s.AddressesKnown.Seconds())}
	for code, n := range s.Failed {
		attrs = append(attrs, "failed_"+code, n)
	}
	r.d.log().Info("resume done", attrs...)
	return s, errors.Join(r.problems...)
}

// skipCoolingDown sets the nodes of groups in a capacity cool-down DOWN at once, and returns the
// groups to launch for. A group cools down for CoolDownSeconds after EC2 had no capacity for it:
// the record is the DOWN reason of its failed nodes and the time Slurm stamped on it.
func (r *resumeRun) skipCoolingDown(ctx context.Context) []*config.NodeGroup {
	cool := time.Duration(r.d.Config.CoolDownSeconds) * time.Second
	now := r.d.now()
	var out []*config.NodeGroup
	for _, g := range r.t.groups {
		until, code := groupCoolDown(g, r.slurm, cool)
		if !until.After(now) {
			out = append(out, g)
			continue
		}
		nodes := r.t.byGroup[g]
		r.d.log().Warn("node group cooling down after EC2 had no capacity; nodes set DOWN without launching",
			"node_group", g.Name(), "nodes", nodeList(nodes), "code", code, "until", until.UTC().Format(time.RFC3339))
		r.markDown(ctx, nodes, coolDownReason(code, until), "CoolDown", true)
	}
	return out
}

// groupCoolDown returns when the group's capacity cool-down ends (zero if none) and the EC2 code
// that started it.
func groupCoolDown(g *config.NodeGroup, nodes map[string]slurm.Node, cool time.Duration) (time.Time, string) {
	var until time.Time
	var code string
	prefix := g.Name() + "-"
	for name, n := range nodes {
		if !strings.HasPrefix(name, prefix) || !n.IsDown() || n.ReasonTime.IsZero() {
			continue
		}
		p := ParseReason(n.Reason)
		if !p.IsCapacity() || p.CoolDown {
			continue
		}
		if end := n.ReasonTime.Add(cool); end.After(until) {
			until, code = end, p.Code
		}
	}
	return until, code
}

// markDown sets nodes DOWN with a reason and counts them as failed under code. Our nodes first get
// the placeholder NodeAddr: they have no instance, and a DOWN node's jobs are requeued with
// messages to its address, which slurmctld would otherwise try to resolve from the node name
// while holding its locks (10 tries of getaddrinfo per node, seen on 22.05 in the end-to-end
// tests), stalling every other scontrol call.
func (r *resumeRun) markDown(ctx context.Context, nodes []string, reason, code string, ours bool) {
	r.mu.Lock()
	r.sum.Failed[code] += len(nodes)
	r.mu.Unlock()
	if ours {
		if err := r.d.Slurm.SetAddresses(ctx, placeholderAddresses(nodes)); err != nil {
			r.problem(fmt.Errorf("could not set the placeholder address of %s: %w", nodeList(nodes), err))
		}
	}
	if err := r.d.Slurm.Update(ctx, nodes, slurm.StateDown, reason); err != nil {
		r.problem(fmt.Errorf("could not set %s DOWN (%s): %w", nodeList(nodes), reason, err))
	}
}

// resumeRegion handles the groups of one (region, profile).
func (r *resumeRun) resumeRegion(ctx context.Context, k inventory.Key, groups []*config.NodeGroup, opts ResumeOptions) {
	d := r.d
	var all []string
	for _, g := range groups {
		all = append(all, r.t.byGroup[g]...)
	}
	api, err := d.EC2.Get(ctx, k.Region, k.Profile)
	if err != nil {
		d.log().Error("no EC2 client", "region", k.Region, "profile", k.Profile, "err", err)
		r.markDown(ctx, all, reasonPrefix+"EC2 client: "+firstLine(err.Error()), "ClientConfig", true)
		return
	}
	if ferr := r.view.Failed()[k]; ferr != nil {
		// Without the list we could launch a second instance for a node: refuse and say so.
		d.log().Error("could not list our live instances; not launching", "region", k.Region, "profile", k.Profile, "err", ferr)
		r.markDown(ctx, all, reasonPrefix+fleet.ErrorCode(ferr)+" listing instances", fleet.ErrorCode(ferr), true)
		return
	}

	// Instances that already belong to a requested node (a node resumed again after a failed
	// suspend, or a resume retried) are reused, never doubled (inventory rules 4 and 6).
	claimed := map[string]fleet.Instance{}
	extra := map[inventory.Key][]string{} // each through the client that listed it
	for _, n := range all {
		keep, dups, ok := r.view.Keep(n, r.view.Of(n))
		if !ok {
			continue
		}
		claimed[n] = keep.Instance
		for _, in := range dups {
			extra[in.Key] = append(extra[in.Key], in.ID)
		}
	}
	for ek, ids := range extra {
		d.log().Warn("terminating extra instances claiming the same node", "region", ek.Region, "profile", ek.Profile, "instances", ids)
		if _, err := terminateIn(ctx, d, ek, ids); err != nil {
			d.log().Error("could not terminate duplicate instances; reconcile will retry", "err", err)
		}
	}
	if len(claimed) > 0 {
		r.assign(ctx, api, k, claimed, true)
	}
	held := r.gate(ctx, groups, claimed)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.parallel())
	for _, grp := range groups {
		var need []string
		for _, n := range r.t.byGroup[grp] {
			if _, ok := claimed[n]; !ok && !held[n] {
				need = append(need, n)
			}
		}
		for i, b := range r.batches(grp, need, opts) {
			g.Go(func() error {
				r.launchBatch(gctx, api, k, grp, b, i)
				return nil
			})
		}
	}
	_ = g.Wait()
}

// batch is one CreateFleet worth of nodes.
type batch struct {
	nodes        []string
	allOrNothing bool
	jobID        int64
}

// batches splits a group's nodes into CreateFleet calls: per job when the group is all-or-nothing
// and Slurm said which job each node is for (one fleet of up to MaxFleetTarget per job), else
// in node order into the fleets fleet.SplitLaunch gives, so the first answers come sooner.
func (r *resumeRun) batches(g *config.NodeGroup, nodes []string, opts ResumeOptions) []batch {
	var out []batch
	rest := nodes
	if g.AllOrNothing && opts.ResumeFile != nil {
		_, jobs, err := ParseResumeFile(opts.ResumeFile)
		if err != nil {
			r.d.log().Warn("ignoring SLURM_RESUME_FILE; launching without all-or-nothing", "error", err)
		}
		left := map[string]bool{}
		for _, n := range nodes {
			left[n] = true
		}
		for _, j := range jobs {
			names, err := hostlist.Expand(j.Nodes)
			if err != nil {
				r.d.log().Warn("bad node list in SLURM_RESUME_FILE", "job", j.JobID, "error", err)
				continue
			}
			var mine []string
			for _, n := range names {
				if left[n] {
					mine = append(mine, n)
					delete(left, n)
				}
			}
			if len(mine) > fleet.MaxFleetTarget {
				r.d.log().Warn("job needs more nodes than one fleet takes; launching it without all-or-nothing",
					"job", j.JobID, "nodes", len(mine))
				for _, c := range fleet.SplitLaunch(len(mine)) {
					out = append(out, batch{nodes: mine[:c], jobID: j.JobID})
					mine = mine[c:]
				}
				continue
			}
			if len(mine) > 0 {
				out = append(out, batch{nodes: mine, allOrNothing: true, jobID: j.JobID})
			}
		}
		rest = nil
		for _, n := range nodes {
			if left[n] {
				rest = append(rest, n)
			}
		}
	}
	for _, c := range fleet.SplitLaunch(len(rest)) {
		out = append(out, batch{nodes: rest[:c]})
		rest = rest[c:]
	}
	return out
}

// launchBatch runs one CreateFleet, tells Slurm the addresses of what came, and sets the rest DOWN.
func (r *resumeRun) launchBatch(ctx context.Context, api fleet.EC2API, k inventory.Key, g *config.NodeGroup, b batch, i int) {
	d := r.d
	spec := r.launchSpec(g, b, i)
	if !r.d.now().Before(r.launchDeadline()) {
		// EC2 throttled earlier fleets until the launch deadline: do not start another.
		d.log().Error("launch deadline passed (half of ResumeTimeout) while EC2 throttled launches",
			"node_group", g.Name(), "nodes", nodeList(b.nodes))
		r.markDown(ctx, b.nodes, reasonPrefix+"RequestLimitExceeded launch deadline passed", "RequestLimitExceeded", true)
		return
	}
	res, err := fleet.Launch(ctx, api, spec)
	if isThrottle(err) && !b.allOrNothing && len(b.nodes) >= 2*minSplitFleet && r.d.now().Before(r.launchDeadline()) {
		// EC2's launch budget refills a few instances a second and a fleet needs its whole
		// count at once: two halves get through sooner than the whole. Nothing was launched
		// (throttled requests launch nothing), so the halves are new requests.
		half := len(b.nodes) / 2
		d.log().Info("EC2 throttles this fleet; launching it in halves", "node_group", g.Name(), "instances", len(b.nodes))
		r.launchBatch(ctx, api, k, g, batch{nodes: b.nodes[:half], jobID: b.jobID}, i)
		r.launchBatch(ctx, api, k, g, batch{nodes: b.nodes[half:], jobID: b.jobID}, i)
		return
	}
	if isThrottle(err) {
		res, err = r.retryThrottled(ctx, api, spec, err)
	}
	if err == nil && len(instanceTags(g, "", fleet.Instance{})) == 1 { // Name only: send it now (the ids are all it needs)
		r.tags.For(api, k.Region, k.Profile).Add(fleet.NameSets(b.nodes, res.InstanceIDs)...)
	}
	if err != nil {
		code := fleet.ErrorCode(err)
		if r.launchFailed(ctx, g, b.nodes, code, err.Error(), r.resumeFile) {
			return
		}
		d.log().Error("CreateFleet failed", "node_group", g.Name(), "nodes", nodeList(b.nodes), "code", code, "error", err)
		r.markDown(ctx, b.nodes, reasonPrefix+code+" CreateFleet", code, true)
		return
	}
	var insts []fleet.Instance
	if len(res.InstanceIDs) > 0 {
		insts, err = fleet.DescribeIDs(ctx, api, k.Region, res.InstanceIDs, 30*time.Second)
		if err != nil {
			// We cannot tell Slurm where these are: take them back rather than leak them.
			d.log().Error("could not read the new instances' addresses; terminating them", "instances", res.InstanceIDs, "error", err)
			if _, _, terr := fleet.Terminate(ctx, api, k.Region, res.InstanceIDs); terr != nil {
				d.log().Error("could not terminate; reconcile will remove them as orphans", "error", terr)
			}
			r.markDown(ctx, b.nodes, reasonPrefix+fleet.ErrorCode(err)+" DescribeInstances", fleet.ErrorCode(err), true)
			return
		}
	}
	slices.SortFunc(insts, func(a, b fleet.Instance) int { return strings.Compare(a.ID, b.ID) })
	n := min(len(insts), len(b.nodes))
	got := map[string]fleet.Instance{}
	for j := 0; j < n; j++ {
		got[b.nodes[j]] = insts[j]
	}
	if extra := insts[n:]; len(extra) > 0 {
		ids := make([]string, len(extra))
		for j, in := range extra {
			ids[j] = in.ID
		}
		d.log().Warn("fleet gave more instances than nodes; terminating the extra ones", "instances", ids)
		if _, _, err := fleet.Terminate(ctx, api, k.Region, ids); err != nil {
			d.log().Error("could not terminate extra instances; reconcile will remove them as orphans", "error", err)
		}
	}
	if len(got) > 0 {
		r.assign(ctx, api, k, got, false)
	}
	if missing := b.nodes[n:]; len(missing) > 0 {
		fleet.FillZones(ctx, api, res.Errors)
		if code, ok := allPermanent(res.Errors); ok && n == 0 && r.launchFailed(ctx, g, missing, code, res.Errors[0].Message, r.resumeFile) {
			return
		}
		reason, code := shortfallReason(res, len(b.nodes), n)
		d.log().Warn("EC2 did not fill the fleet; nodes set DOWN so their jobs go elsewhere",
			"node_group", g.Name(), "nodes", nodeList(missing), "asked", len(b.nodes), "got", n, "reason", reason)
		r.markDown(ctx, missing, reason, code, true)
	}
}

// minSplitFleet is the smallest fleet a throttled launch is split into.
const minSplitFleet = 8

func isThrottle(err error) bool { return fleet.ClassOf(fleet.ErrorCode(err)) == fleet.ClassThrottle }

// launchDeadline is when a resume stops waiting for EC2's launch budget: half of ResumeTimeout
// after it started, leaving the other half for the instances to boot.
func (r *resumeRun) launchDeadline() time.Time { return r.start.Add(r.d.resumeTimeout() / 2) }

// retryThrottled asks again for a fleet EC2 throttled beyond the SDK's own retries (a burst of
// thousands outlasts them), waiting for the launch budget to refill, until the launch deadline.
// The same ClientToken makes every try the same request: a fleet is never launched twice.
func (r *resumeRun) retryThrottled(ctx context.Context, api fleet.EC2API, spec fleet.LaunchSpec, last error) (fleet.LaunchResult, error) {
	wait := 5 * time.Second
	for {
		if !r.d.now().Add(wait).Before(r.launchDeadline()) {
			return fleet.LaunchResult{}, fmt.Errorf("still throttled at the launch deadline (half of ResumeTimeout): %w", last)
		}
		r.d.log().Warn("EC2 still throttles CreateFleet; waiting for its launch budget to refill",
			"node_group", spec.Group, "instances", spec.Count, "wait", wait)
		select {
		case <-ctx.Done():
			return fleet.LaunchResult{}, ctx.Err()
		case <-time.After(wait):
		}
		res, err := fleet.Launch(ctx, api, spec)
		if !isThrottle(err) {
			return res, err
		}
		last = err
		wait = min(2*wait, 30*time.Second)
	}
}

// shortfallReason picks the EC2 error that explains missing instances: a capacity error first.
func shortfallReason(res fleet.LaunchResult, asked, got int) (reason, code string) {
	if len(res.Errors) == 0 {
		return fmt.Sprintf("%sfleet gave %d of %d instances", reasonPrefix, got, asked), "Shortfall"
	}
	best := res.Errors[0]
	for _, e := range res.Errors {
		if fleet.ClassOf(e.Code) == fleet.ClassCapacity {
			best = e
			break
		}
	}
	return capacityReason(best), best.Code
}

// assign tells Slurm the addresses of nodes' instances and queues their per-instance tags. When
// Slurm cannot be told, new instances are terminated (an instance without its node is a leak).
func (r *resumeRun) assign(ctx context.Context, api fleet.EC2API, k inventory.Key, got map[string]fleet.Instance, reused bool) {
	d := r.d
	nodes := make([]string, 0, len(got))
	for n := range got {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	addrs := make([]slurm.Address, 0, len(nodes))
	for _, n := range nodes {
		in := got[n]
		host := in.PrivateDNS
		if host == "" {
			host = in.PrivateIP
		}
		addrs = append(addrs, slurm.Address{Node: n, Addr: in.PrivateIP, Hostname: host})
	}
	if err := d.Slurm.SetAddresses(ctx, addrs); err != nil {
		r.problem(fmt.Errorf("could not tell Slurm the addresses of %s: %w", nodeList(nodes), err))
		if !reused {
			ids := make([]string, 0, len(nodes))
			for _, n := range nodes {
				ids = append(ids, got[n].ID)
			}
			if _, _, terr := fleet.Terminate(ctx, api, k.Region, ids); terr != nil {
				d.log().Error("could not terminate instances Slurm does not know; reconcile will remove them as orphans", "error", terr)
			}
		}
		r.mu.Lock()
		r.sum.Failed["SlurmUpdate"] += len(nodes)
		r.mu.Unlock()
		return
	}
	var sets []fleet.TagSet
	for _, n := range nodes {
		in := got[n]
		g, _, _ := d.Config.LookupNode(n)
		tags := instanceTags(g, n, in)
		if reused && in.Node() == n && len(tags) == 1 {
			continue // already named
		}
		sets = append(sets, fleet.TagSet{InstanceIDs: []string{in.ID}, Tags: tags})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if reused {
		r.sum.Reused += len(nodes)
	} else {
		r.sum.Launched += len(nodes)
	}
	r.sum.AddressesKnown = r.d.now().Sub(r.start)
	r.tags.For(api, k.Region, k.Profile).Add(sets...)
	for _, n := range nodes {
		d.log().Debug("node has its instance", "node", n, "instance", got[n].ID, "ip", got[n].PrivateIP, "reused", reused)
	}
}

// launchSpec builds the CreateFleet spec of one batch.
func (r *resumeRun) launchSpec(g *config.NodeGroup, b batch, i int) fleet.LaunchSpec {
	s := groupSpec(g, r.d.Cluster)
	h := sha256.Sum256([]byte(r.d.Cluster + "\x00" + g.Name() + "\x00" + strings.Join(b.nodes, ",") + "\x00" + r.runID))
	s.Count = len(b.nodes)
	s.AllOrNothing = b.allOrNothing
	s.ClientToken = fleet.TokenSuffix("slurm-ec2-"+hex.EncodeToString(h[:12]), i)
	// Which nodes this fleet is for: if we die before telling Slurm, reconcile knows which
	// powering-up nodes wait for nothing (EC2 tag values hold 256 characters).
	if hl := hostlist.Compress(b.nodes); len(hl) <= 256 {
		s.Tags = append(slices.Clone(s.Tags), fleet.T(fleet.TagLaunchedFor, hl))
	}
	s.Tags = append(s.Tags, failureTags(r.failTags[g])...)
	return s
}

// groupSpec is a node group's launch settings, with the identity and static tags set at launch
// so no instance ever exists that we cannot find.
func groupSpec(g *config.NodeGroup, cluster string) fleet.LaunchSpec {
	tags := []types.Tag{fleet.T(fleet.TagCluster, cluster), fleet.T(fleet.TagNodeGroup, g.Name())}
	for _, t := range g.Tags {
		if !isTemplated(t.Value) && t.Key != fleet.TagName && !strings.HasPrefix(t.Key, "slurm-ec2:") {
			tags = append(tags, fleet.T(t.Key, t.Value))
		}
	}
	return fleet.LaunchSpec{
		Group:           g.Name(),
		Spot:            g.IsSpot(),
		OnDemandOptions: g.OnDemandOptions,
		SpotOptions:     g.SpotOptions,
		Template:        g.LaunchTemplateSpecification,
		Overrides:       g.LaunchTemplateOverrides,
		SubnetIDs:       g.SubnetIds,
		Tags:            tags,
	}
}

// instanceTags are the per-instance tags: Name = node, and the group's templated tags with
// {node_name}, {ip_address} and {hostname} filled in for this instance.
func instanceTags(g *config.NodeGroup, node string, in fleet.Instance) []types.Tag {
	tags := []types.Tag{fleet.T(fleet.TagName, node)}
	if g == nil {
		return tags
	}
	rep := strings.NewReplacer("{node_name}", node, "{ip_address}", in.PrivateIP, "{hostname}", in.PrivateDNS)
	for _, t := range g.Tags {
		if isTemplated(t.Value) && t.Key != fleet.TagName {
			tags = append(tags, fleet.T(t.Key, rep.Replace(t.Value)))
		}
	}
	return tags
}

func isTemplated(v string) bool {
	return strings.Contains(v, "{node_name}") || strings.Contains(v, "{ip_address}") || strings.Contains(v, "{hostname}")
}

// ResumeGate holds nodes back from a launch (rules that come with their own state, such as a
// capacity back-off or instance health): given the inventory resume loaded under its locks, a
// group and the nodes of it about to be launched, it returns the nodes not to launch, each with
// the DOWN reason and the code it is counted under. It must be pure.
type ResumeGate func(v *inventory.View, g *config.NodeGroup, nodes []string, now time.Time) map[string]Hold

// Hold is why a ResumeGate keeps a node from launching.
type Hold struct{ Reason, Code string }

// gate applies d.ResumeGate to the nodes of groups without an instance, sets the held ones DOWN,
// and returns them.
func (r *resumeRun) gate(ctx context.Context, groups []*config.NodeGroup, claimed map[string]fleet.Instance) map[string]bool {
	held := map[string]bool{}
	if r.d.ResumeGate == nil {
		return held
	}
	for _, g := range groups {
		var need []string
		for _, n := range r.t.byGroup[g] {
			if _, ok := claimed[n]; !ok {
				need = append(need, n)
			}
		}
		if len(need) == 0 {
			continue
		}
		byReason := map[Hold][]string{}
		for n, h := range r.d.ResumeGate(r.view, g, need, r.d.now()) {
			if slices.Contains(need, n) {
				held[n] = true
				byReason[h] = append(byReason[h], n)
			}
		}
		for h, nodes := range byReason {
			slices.Sort(nodes)
			r.d.log().Warn("nodes held back from launching", "node_group", g.Name(), "nodes", nodeList(nodes), "code", h.Code, "reason", h.Reason)
			r.markDown(ctx, nodes, h.Reason, h.Code, true)
		}
	}
	return held
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
