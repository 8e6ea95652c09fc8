package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// Run is one measured invocation of the binary.
type Run struct {
	Kind      string  `json:"kind"` // resume, suspend, reconcile
	Nodes     int     `json:"nodes"`
	Instances int     `json:"instances"` // instances involved (launched, terminated, listed)
	Profile   profile `json:"profile"`
	Regions   int     `json:"regions"`
	Groups    int     `json:"groups"`
	Proc      procResult
	// AddrKnown (resume): from process start to the end of the last `scontrol update nodeaddr=`,
	// as recorded by the stand-in.
	AddrKnown time.Duration `json:"addr_known_ns"`
	// AddrKnownReported is the binary's own addresses_known_seconds.
	AddrKnownReported string                           `json:"addr_known_reported"`
	API               map[string]ec2sim.ActionCounters `json:"api"`
	Slurm             map[string]int                   `json:"slurm"` // invocations by kind
	BoundAddr         time.Duration                    `json:"bound_addr_ns"`
	BoundExit         time.Duration                    `json:"bound_exit_ns"`
	// Expected calls for the targets.
	WantFleets, WantTerminates, WantDescribePages int
	Check                                         string `json:"check"` // correctness of the outcome
	OK                                            bool   `json:"ok"`
}

func (r *Run) collect(e *env) error {
	r.API = e.sim.sim.Counters()
	calls, err := e.slurmCalls()
	if err != nil {
		return err
	}
	r.Slurm = map[string]int{}
	for _, c := range calls {
		r.Slurm[c.Kind()]++
	}
	if t := lastAddressUpdate(calls); !t.IsZero() {
		r.AddrKnown = t.Sub(r.Proc.start)
	}
	return nil
}

func (e *env) resumeRun(ctx context.Context, p profile, n int) (*Run, error) {
	return e.resumeRunPer(ctx, p, spread(n))
}

// resumeRunPer resumes per[i] nodes of group i (the first of each group) in one call, as
// ResumeProgram, and checks the outcome.
func (e *env) resumeRunPer(ctx context.Context, p profile, per []int) (*Run, error) {
	n := total(per)
	names := targetNames(per)
	if err := e.sim.set(p, false); err != nil {
		return nil, err
	}
	nodes := e.allNodes()
	want := map[string]bool{}
	for _, name := range names {
		want[name] = true
	}
	for i := range nodes {
		if want[nodes[i].Name] {
			// Slurm marks the nodes POWERING_UP before it runs ResumeProgram.
			nodes[i].Flags = []string{"CLOUD", "POWERING_UP"}
		}
	}
	if err := e.writeNodes(nodes); err != nil {
		return nil, err
	}
	pr, err := e.runBinary(ctx, "resume done", "resume", expr(names))
	if err != nil {
		return nil, err
	}
	r := &Run{Kind: "resume", Nodes: n, Profile: p, Proc: *pr, AddrKnownReported: pr.Summary["addresses_known_seconds"]}
	if err := r.collect(e); err != nil {
		return nil, err
	}
	bm, err := newBoundModel(p)
	if err != nil {
		return nil, err
	}
	for region, gs := range perRegion(per) {
		a, x := bm.resumeBound(region, gs)
		r.BoundAddr, r.BoundExit = max(r.BoundAddr, a), max(r.BoundExit, x)
		r.Regions++
		r.Groups += len(gs)
		for _, g := range gs {
			r.WantFleets += len(fleet.SplitLaunch(g))
		}
	}
	// Outcome: every node's NodeAddr is the private IP of a live instance named for it.
	after, err := e.readNodes()
	if err != nil {
		return nil, err
	}
	byIP := map[string]ec2sim.InstanceInfo{}
	for _, in := range e.sim.sim.Instances("") {
		if in.State != "terminated" && in.State != "shutting-down" {
			byIP[in.PrivateIP] = in
			r.Instances++
		}
	}
	var noAddr, noName, down int
	reasons := map[string]int{}
	for _, name := range names {
		node := after[name]
		if node.Has("DOWN") {
			down++
			reasons[node.Reason]++
		}
		in, ok := byIP[node.Addr]
		switch {
		case !ok:
			noAddr++
		case in.Tags["Name"] != name:
			noName++
		}
	}
	r.OK = noAddr == 0 && noName == 0 && r.Instances == n && pr.Exit == 0
	r.Check = fmt.Sprintf("%d/%d nodes have their instance's address, %d untagged, %d live instances, exit %d", n-noAddr, n, noName, r.Instances, pr.Exit)
	if down > 0 {
		top, topN := "", 0
		for reason, c := range reasons {
			if c > topN || (c == topN && reason < top) {
				top, topN = reason, c
			}
		}
		r.Check += fmt.Sprintf("; %d set DOWN (%d with reason %q)", down, topN, top)
	}
	return r, nil
}

// suspendRun terminates n nodes' instances, as SuspendProgram. The instances are launched and
// Name-tagged beforehand with the sim instant and unthrottled (so the run does not depend on what
// the resume run managed to launch), then the buckets are filled and the latency model set.
func (e *env) suspendRun(ctx context.Context, p profile, n int) (*Run, error) {
	per := spread(n)
	if err := e.sim.set(profile{Latency: "none", Throttle: "none"}, false); err != nil {
		return nil, err
	}
	if err := e.launchSteadyState(ctx, per); err != nil {
		return nil, fmt.Errorf("launching the instances to suspend: %w", err)
	}
	byName := map[string]ec2sim.InstanceInfo{}
	for _, in := range e.sim.sim.Instances("") {
		byName[in.Tags["Name"]] = in
	}
	if len(byName) != n {
		return nil, fmt.Errorf("launched %d named instances to suspend, want %d", len(byName), n)
	}
	nodes := e.allNodes()
	for i := range nodes {
		if in, ok := byName[nodes[i].Name]; ok {
			// Slurm marks the nodes POWERING_DOWN and keeps their NodeAddr while SuspendProgram runs.
			nodes[i].Flags, nodes[i].Addr, nodes[i].Hostname = []string{"CLOUD", "POWERING_DOWN"}, in.PrivateIP, in.PrivateDNSName
		}
	}
	if err := e.writeNodes(nodes); err != nil {
		return nil, err
	}
	if err := e.sim.set(p, true); err != nil {
		return nil, err
	}
	pr, err := e.runBinary(ctx, "suspend done", "suspend", expr(targetNames(per)))
	if err != nil {
		return nil, err
	}
	r := &Run{Kind: "suspend", Nodes: n, Profile: p, Proc: *pr}
	if err := r.collect(e); err != nil {
		return nil, err
	}
	bm, err := newBoundModel(p)
	if err != nil {
		return nil, err
	}
	for region, gs := range perRegion(per) {
		m := total(gs)
		r.BoundExit = max(r.BoundExit, bm.suspendBound(region, m))
		r.Regions++
		r.Groups += len(gs)
		r.WantTerminates += len(chunks(m, maxTerminate))
		r.WantDescribePages += minDescribePages(m)
	}
	r.BoundAddr = r.BoundExit
	live := 0
	for _, in := range e.sim.sim.Instances("") {
		if in.State == "terminated" || in.State == "shutting-down" {
			r.Instances++
		} else {
			live++
		}
	}
	r.OK = live == 0 && r.Instances == n && pr.Exit == 0
	r.Check = fmt.Sprintf("%d/%d instances terminating, %d still live, exit %d", r.Instances, n, live, pr.Exit)
	return r, nil
}

// overhead runs resume and suspend of one node against an instant endpoint, runs times each,
// and keeps every run (the report shows the median and the worst). Slurm's table holds 10 nodes
// per group here, so listing it costs little: what is left is our own start-up and work.
func (e *env) overhead(ctx context.Context, p profile, runs int) ([]Run, error) {
	var out []Run
	e.tableSize = 10
	defer func() { e.tableSize = 0 }()
	for range runs {
		r, err := e.resumeRun(ctx, p, 1)
		if err != nil {
			return nil, err
		}
		r.Kind = "resume-overhead"
		s, err := e.suspendRun(ctx, p, 1)
		if err != nil {
			return nil, err
		}
		s.Kind = "suspend-overhead"
		out = append(out, *r, *s)
	}
	return out, nil
}

// reconcileRun builds a steady state of n nodes up with their n instances (Name-tagged, NodeAddr
// = private IP) with the sim instant and unthrottled, then measures one reconcile with p.
func (e *env) reconcileRun(ctx context.Context, p profile, n int) (*Run, error) {
	if err := e.sim.set(profile{Latency: "none", Throttle: "none"}, false); err != nil {
		return nil, err
	}
	per := spread(n)
	names := targetNames(per)
	if err := e.launchSteadyState(ctx, per); err != nil {
		return nil, fmt.Errorf("building the steady state: %w", err)
	}
	byName := map[string]ec2sim.InstanceInfo{}
	for _, in := range e.sim.sim.Instances("") {
		byName[in.Tags["Name"]] = in
	}
	nodes := e.allNodes()
	for i := range nodes {
		if in, ok := byName[nodes[i].Name]; ok {
			nodes[i].State, nodes[i].Flags, nodes[i].Addr, nodes[i].Hostname = "IDLE", []string{"CLOUD"}, in.PrivateIP, in.PrivateDNSName
		}
	}
	if len(byName) != len(names) {
		return nil, fmt.Errorf("steady state has %d named instances, want %d", len(byName), len(names))
	}
	if err := e.writeNodes(nodes); err != nil {
		return nil, err
	}
	if err := e.sim.set(p, true); err != nil {
		return nil, err
	}
	// --force: the stand-in's primary controller is "fakeslurm", not this host; a real head
	// node's own reconcile makes one `scontrol ping` more.
	pr, err := e.runBinary(ctx, "reconcile done", "reconcile", "--force")
	if err != nil {
		return nil, err
	}
	r := &Run{Kind: "reconcile", Nodes: n, Instances: n, Profile: p, Proc: *pr}
	if err := r.collect(e); err != nil {
		return nil, err
	}
	bm, err := newBoundModel(p)
	if err != nil {
		return nil, err
	}
	for _, gs := range perRegion(per) {
		m := total(gs)
		r.BoundExit = max(r.BoundExit, bm.reconcileBound(m))
		r.WantDescribePages += minDescribePages(m)
		r.Regions++
		r.Groups += len(gs)
	}
	r.BoundAddr = r.BoundExit
	r.OK = pr.Exit == 0 && pr.Summary["actions"] == "0"
	r.Check = fmt.Sprintf("nodes=%s instances=%s actions=%s slurm_calls=%s, exit %d", pr.Summary["nodes"], pr.Summary["instances"],
		pr.Summary["actions"], pr.Summary["slurm_calls"], pr.Exit)
	return r, nil
}

// launchSteadyState launches per[i] instances for group i with our launch tags, then Name-tags
// each one for its node, through the same fleet package the binary uses.
func (e *env) launchSteadyState(ctx context.Context, per []int) error {
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", "AKIDBENCHMARK"}, {"AWS_SECRET_ACCESS_KEY", "benchmark-dummy"},
		{"AWS_ENDPOINT_URL_EC2", e.sim.URL}, {"AWS_EC2_METADATA_DISABLED", "true"},
		{"AWS_CONFIG_FILE", os.DevNull}, {"AWS_SHARED_CREDENTIALS_FILE", os.DevNull}} {
		if err := os.Setenv(kv[0], kv[1]); err != nil {
			return err
		}
	}
	clients := fleet.NewClients(fleet.Options{Logger: slog.New(slog.DiscardHandler)})
	for i, g := range groups {
		if per[i] == 0 {
			continue
		}
		api, err := clients.Get(ctx, g.Region, "")
		if err != nil {
			return err
		}
		var ids []string
		for b, c := range chunks(per[i], maxFleet) {
			res, err := fleet.Launch(ctx, api, fleet.LaunchSpec{
				Group:           g.Name,
				OnDemandOptions: &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyLowestPrice},
				Template: types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: ptr("template-name"),
					Version: ptr("$Latest")},
				Overrides:   []types.FleetLaunchTemplateOverridesRequest{{InstanceType: types.InstanceTypeC5Xlarge}},
				SubnetIDs:   g.Subnets,
				Tags:        []types.Tag{fleet.T(fleet.TagCluster, cluster), fleet.T(fleet.TagNodeGroup, g.Name)},
				Count:       c,
				ClientToken: fmt.Sprintf("bench-steady-%s-%d-%d", g.Name, b, time.Now().UnixNano()),
			})
			if err != nil {
				return fmt.Errorf("launching %d instances for %s: %w", c, g.Name, err)
			}
			if len(res.InstanceIDs) != c {
				return fmt.Errorf("launching %d instances for %s: got %d (%v)", c, g.Name, len(res.InstanceIDs), res.Errors)
			}
			ids = append(ids, res.InstanceIDs...)
		}
		slices.Sort(ids)
		sets := make([]fleet.TagSet, len(ids))
		for j, id := range ids {
			sets[j] = fleet.TagSet{InstanceIDs: []string{id}, Tags: []types.Tag{fleet.T(fleet.TagName, fmt.Sprintf("%s-%d", g.Name, j))}}
		}
		if failed, err := fleet.ApplyTags(ctx, api, sets, fleet.TagOptions{PerSecond: math.Inf(1)}); err != nil {
			return fmt.Errorf("naming %d instances of %s: %w", len(failed), g.Name, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// microBenchmarks runs the Go benchmarks (testing.B) and returns their output lines.
func microBenchmarks(ctx context.Context, log *slog.Logger) ([]string, error) {
	log.Info("Go micro-benchmarks")
	var lines []string
	for _, pkg := range []string{"./bench/", "./internal/burst/"} { // one at a time: they measure speed
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1", pkg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go test -bench %s: %w\n%s", pkg, err, out)
		}
		for l := range strings.Lines(string(out)) {
			if strings.HasPrefix(l, "Benchmark") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
	}
	return lines, nil
}
