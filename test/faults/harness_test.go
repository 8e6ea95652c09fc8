// Package faults is the fault matrix of issue 9: every program of slurm-ec2 (resume, suspend,
// resume-fail, reconcile) driven against ec2sim and the recording Slurm stand-in while EC2 and
// Slurm misbehave, each case ending with the invariant check of invariant_test.go after at most
// two reconcile runs. `make faults` prints the table of cases, faults injected and verdicts.
//
// Time is virtual where it matters: the head node, the slurmctld model and ec2sim read one
// clock (real time plus an offset the tests advance), with ec2sim optionally skewed from it.
package faults

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/simenv"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

var tableFile = flag.String("table", "", "also write the fault table to this file")

const (
	cluster    = "faults"
	region     = "us-east-1"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAULTSSECRET" // AWS_SECRET_ACCESS_KEY of every run
	testToken  = "FwoGZXIvYXdzEFAULTSSESSIONTOKENxyz"         // AWS_SESSION_TOKEN of every run
	testKeyID  = "AKIAFAULTSTESTKEY001"

	// Timeouts of the modelled slurm.conf and config.json (seconds of the virtual clock).
	resumeTimeout  = 300 * time.Second
	suspendTimeout = 60 * time.Second
	coolDown       = 60 * time.Second
	orphanGrace    = 120 * time.Second
)

const partitionsJSON = `{
  "Partitions": [{
    "PartitionName": "aws",
    "NodeGroups": [
      {
        "NodeGroupName": "ondemand", "MaxNodes": 8, "Region": "us-east-1",
        "SlurmSpecifications": {"CPUs": "4"},
        "PurchasingOption": "on-demand",
        "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
        "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}],
        "SubnetIds": ["subnet-11111111", "subnet-22222222"],
        "Tags": [{"Key": "Owner", "Value": "{node_name}@{ip_address}"}]
      },
      {
        "NodeGroupName": "spot", "MaxNodes": 40, "Region": "us-east-1",
        "SlurmSpecifications": {"CPUs": "4"},
        "PurchasingOption": "spot",
        "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
        "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}, {"InstanceType": "c4.xlarge"}],
        "SubnetIds": ["subnet-11111111", "subnet-22222222"]
      }
    ],
    "PartitionOptions": {"Default": "yes"}
  }]
}`

// clock is the head node's clock: real time plus an offset the tests advance.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// latencyKnob is ec2sim's latency model, changeable while a case runs. It is applied after the
// action took effect, so a caller killed while it waits has launched (or tagged) already.
type latencyKnob struct {
	mu     sync.Mutex
	per    map[string]time.Duration
	scaled ec2sim.LatencyModel // when set, every action
}

func (l *latencyKnob) For(action string, n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.scaled != nil {
		return l.scaled.For(action, n)
	}
	return l.per[action]
}

func (l *latencyKnob) set(action string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.per[action] = d
}

func (l *latencyKnob) setModel(m ec2sim.LatencyModel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.scaled = m
}

func (l *latencyKnob) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.per = map[string]time.Duration{}
	l.scaled = nil
}

// syncBuffer collects every log line of a case (in-process and child processes' stderr).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOptions struct {
	skew time.Duration // ec2sim's clock minus the head node's
	// partitions replaces partitionsJSON.
	partitions string
	// accounts are AWS profiles that are EC2 accounts of their own (each its own ec2sim); with
	// any, the plugin's clients pick the endpoint by profile, and a profile neither "" nor listed
	// does not exist.
	accounts []string
}

// account is one more EC2 account of a case.
type account = simenv.Account

// env is one case's world: ec2sim, the fake Slurm, the slurmctld model, the config and the
// in-process use cases.
type env struct {
	t    *testing.T
	clk  *clock
	sim  *ec2sim.Sim
	lat  *latencyKnob
	url  string
	fake *fakeslurm.Fake
	dir  string
	cfg  *config.Config
	deps *burst.Deps
	ctld *slurmctld
	logs *syncBuffer
	// faults names what the case injected, for the table.
	faults []string
	main   *simenv.Account
	// accounts by profile (envOptions.accounts); unreachable profiles fail to get a client.
	accounts map[string]*account
	accts    *simenv.Accounts
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("fault matrix: skipped in -short mode")
	}
	e := &env{t: t, clk: &clock{}, lat: &latencyKnob{per: map[string]time.Duration{}}, logs: &syncBuffer{}}
	skew := o.skew
	e.main = simenv.Start(t, ec2sim.Options{
		Seed:    7,
		Now:     func() time.Time { return e.clk.Now().Add(skew) },
		Latency: e.lat,
	})
	e.sim, e.url = e.main.Sim, e.main.URL

	e.fake = fakeslurm.New(t, "aws-ondemand-[0-7]", "aws-spot-[0-39]")
	e.dir = t.TempDir()
	conf := fmt.Sprintf(`{"LogLevel": "DEBUG", "LogFileName": %q, "SlurmBinPath": %q,
	  "SlurmConf": {"PrivateData": "CLOUD", "ResumeProgram": "/usr/bin/resume", "SuspendProgram": "/usr/bin/suspend",
	    "ResumeRate": 100, "SuspendRate": 100, "ResumeTimeout": %d, "SuspendTime": 350, "SuspendTimeout": %d},
	  "ClusterName": %q, "CoolDownSeconds": %d, "OrphanGraceSeconds": %d, "CommandTimeoutSeconds": 3}`,
		filepath.Join(e.dir, "aws_plugin.log"), e.fake.BinDir, int(resumeTimeout.Seconds()), int(suspendTimeout.Seconds()),
		cluster, int(coolDown.Seconds()), int(orphanGrace.Seconds()))
	writeFile(t, filepath.Join(e.dir, config.ConfigFileName), conf)
	parts := partitionsJSON
	if o.partitions != "" {
		parts = o.partitions
	}
	writeFile(t, filepath.Join(e.dir, config.PartitionsFileName), parts)
	cfg, err := config.Load(e.dir)
	if err != nil {
		t.Fatalf("loading the fault-matrix config: %v", err)
	}
	e.cfg = cfg

	simenv.Setenv(t, e.url, e.dir, simenv.Credentials{KeyID: testKeyID, Secret: testSecret, Token: testToken})
	t.Setenv("SLURM_EC2_CONFIG_DIR", e.dir)

	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.deps = &burst.Deps{
		Config:  cfg,
		Cluster: cluster,
		Slurm:   &slurm.Client{BinDir: e.fake.BinDir, Timeout: 3 * time.Second, Logger: log},
		EC2: fleet.NewClients(fleet.Options{Logger: log, MaxAttempts: 6, MaxBackoff: 200 * time.Millisecond,
			HTTPTimeout: 60 * time.Second}),
		Log:           log,
		LockDir:       e.dir,
		TagsPerSecond: 1000,
		Now:           e.clk.Now,
	}
	if len(o.accounts) > 0 {
		e.useAccounts(o.accounts, log)
	}
	e.ctld = newSlurmctld(e)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of the case:\n%s", tail(e.logs.String(), 12000))
		}
	})
	return e
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// opTimeout bounds every in-process program run: a program that does not return within it is
// a "hung" failure of the case, not a hung test binary.
const opTimeout = 90 * time.Second

func (e *env) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// resumeProgram is slurmctld running ResumeProgram for nodes it made POWERING_UP.
func (e *env) resumeProgram(nodes []string) error {
	if len(nodes) == 0 {
		return nil
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	_, err := burst.Resume(ctx, e.deps, hostlist.Compress(nodes), burst.ResumeOptions{})
	if ctx.Err() != nil {
		e.t.Errorf("resume of %s did not return within %v", hostlist.Compress(nodes), opTimeout)
	}
	return err
}

func (e *env) suspendProgram(nodes []string) error {
	if len(nodes) == 0 {
		return nil
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	_, err := burst.Suspend(ctx, e.deps, hostlist.Compress(nodes))
	if ctx.Err() != nil {
		e.t.Errorf("suspend of %s did not return within %v", hostlist.Compress(nodes), opTimeout)
	}
	return err
}

func (e *env) resumeFailProgram(nodes []string) error {
	if len(nodes) == 0 {
		return nil
	}
	ctx, cancel := e.opCtx()
	defer cancel()
	_, err := burst.ResumeFail(ctx, e.deps, hostlist.Compress(nodes))
	if ctx.Err() != nil {
		e.t.Errorf("resume-fail of %s did not return within %v", hostlist.Compress(nodes), opTimeout)
	}
	return err
}

func (e *env) reconcile() error {
	ctx, cancel := e.opCtx()
	defer cancel()
	_, err := burst.Reconcile(ctx, e.deps, burst.ReconcileOptions{Force: true})
	if ctx.Err() != nil {
		e.t.Errorf("reconcile did not return within %v", opTimeout)
	}
	return err
}

// powerUp is slurmctld deciding to resume nodes, then running ResumeProgram for them.
func (e *env) powerUp(nodes ...string) error {
	return e.resumeProgram(e.ctld.beginResume(expand(e.t, nodes...)))
}

// powerDown is slurmctld suspending idle nodes: POWERING_DOWN, then SuspendProgram.
func (e *env) powerDown(nodes ...string) error {
	return e.suspendProgram(e.ctld.beginSuspend(expand(e.t, nodes...)))
}

func expand(t *testing.T, exprs ...string) []string {
	t.Helper()
	var out []string
	for _, x := range exprs {
		names, err := hostlist.Expand(x)
		if err != nil {
			t.Fatalf("bad hostlist %q: %v", x, err)
		}
		out = append(out, names...)
	}
	return out
}

// inject records and installs an ec2sim fault.
func (e *env) inject(f ec2sim.Fault) {
	e.t.Helper()
	if err := e.sim.InjectFault(f); err != nil {
		e.t.Fatal(err)
	}
	desc := fmt.Sprintf("%s %s", f.Action, f.Code)
	if f.Rate > 0 {
		desc += fmt.Sprintf(" %.0f%%", f.Rate*100)
	}
	if f.ExtraLatency > 0 {
		desc += " +" + f.ExtraLatency.String()
	}
	if f.Duration > 0 {
		desc += " for " + f.Duration.String()
	}
	if f.Count > 0 {
		desc += fmt.Sprintf(" x%d", f.Count)
	}
	e.note(strings.Join(strings.Fields(desc), " "))
}

func (e *env) note(s string) {
	if !slices.Contains(e.faults, s) {
		e.faults = append(e.faults, s)
	}
}

// instances are our cluster's instances in ec2sim (every account), any state.
func (e *env) instances() []ec2sim.InstanceInfo {
	var out []ec2sim.InstanceInfo
	sims := []*ec2sim.Sim{e.sim}
	for _, p := range slices.Sorted(maps.Keys(e.accounts)) {
		sims = append(sims, e.accounts[p].Sim)
	}
	for _, sim := range sims {
		for _, in := range sim.Instances(region) {
			if in.Tags[fleet.TagCluster] == cluster {
				out = append(out, in)
			}
		}
	}
	return out
}

// useAccounts gives each profile its own ec2sim (on the case's clock, with its own instance ids)
// and makes the plugin's clients pick the endpoint by profile.
func (e *env) useAccounts(profiles []string, log *slog.Logger) {
	e.accounts = map[string]*account{}
	for i, p := range profiles {
		e.accounts[p] = simenv.Start(e.t, ec2sim.Options{Seed: uint64(100 + i), Now: e.clk.Now, AccountID: fmt.Sprintf("%012d", 100000000000+i)})
	}
	e.accts = &simenv.Accounts{Main: e.main, ByProfile: e.accounts}
	e.deps.EC2 = e.accts.Clients(fleet.Options{Logger: log, MaxAttempts: 6, MaxBackoff: 200 * time.Millisecond, HTTPTimeout: 60 * time.Second})
}

// setUnreachable makes a profile's client fail (a profile missing from ~/.aws/config) or work.
func (e *env) setUnreachable(profile string, down bool) { e.accts.SetUnreachable(profile, down) }

// launchRaw launches n instances with tags in an account (nil: the main one), as something
// other than resume would.
func (e *env) launchRaw(a *account, n int, tags map[string]string) []string {
	e.t.Helper()
	if a == nil {
		a = e.main
	}
	return a.Launch(e.t, region, "subnet-11111111", n, tags)
}

func live(in ec2sim.InstanceInfo) bool { return in.State == "pending" || in.State == "running" }

// liveIDs returns the live instances of our cluster whose Name tag or address names one of nodes
// (all of them when nodes is empty).
func (e *env) liveIDs(nodes ...string) []string {
	want := map[string]bool{}
	for _, n := range nodes {
		want[n] = true
	}
	addr := map[string]string{}
	for _, n := range e.fake.Nodes() {
		addr[n.Addr] = n.Name
	}
	var ids []string
	for _, in := range e.instances() {
		if !live(in) {
			continue
		}
		name := in.Tags["Name"]
		if name == "" {
			name = addr[in.PrivateIP]
		}
		if len(want) == 0 || want[name] {
			ids = append(ids, in.InstanceID)
		}
	}
	return ids
}

// recoverAndCheck clears every injected fault, lets time run (the slurmctld model acts on its
// timeouts) with at most two reconcile runs, and checks the invariants.
func (e *env) recoverAndCheck() []string {
	e.t.Helper()
	e.sim.ClearFaults()
	for p := range e.accounts {
		e.setUnreachable(p, false)
	}
	e.lat.clear()
	e.fake.SetFaults(fakeslurm.Faults{})
	for run := 1; run <= 2; run++ {
		e.clk.Advance(resumeTimeout + time.Second)
		e.ctld.tick()
		if err := e.reconcile(); err != nil {
			e.t.Logf("reconcile run %d: %v", run, err)
		}
		e.ctld.tick()
	}
	return checkInvariants(e)
}

// ---- the result table ----

type result struct {
	name, faults, verdict string
}

var (
	resultsMu sync.Mutex
	results   []result
)

// finish records the case's row and fails the test on a violated invariant.
func (e *env) finish(violations []string) {
	e.t.Helper()
	verdict := "held"
	if len(violations) > 0 {
		verdict = fmt.Sprintf("VIOLATED (%d)", len(violations))
		for _, v := range violations {
			e.t.Errorf("invariant: %s", v)
		}
	}
	faults := strings.Join(e.faults, "; ")
	if faults == "" {
		faults = "-"
	}
	resultsMu.Lock()
	results = append(results, result{name: e.t.Name(), faults: faults, verdict: verdict})
	resultsMu.Unlock()
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if len(results) > 0 {
		var b strings.Builder
		writeTable(&b, results)
		fmt.Print(b.String())
		if *tableFile != "" {
			_ = os.WriteFile(*tableFile, []byte(b.String()), 0o644)
		}
	}
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func writeTable(b *strings.Builder, rs []result) {
	w1, w2 := len("case"), len("faults injected")
	for _, r := range rs {
		w1 = max(w1, len(r.name))
		w2 = max(w2, min(len(r.faults), 90))
	}
	fmt.Fprintf(b, "\n%-*s  %-*s  %s\n", w1, "case", w2, "faults injected", "invariant")
	fmt.Fprintf(b, "%s  %s  %s\n", strings.Repeat("-", w1), strings.Repeat("-", w2), strings.Repeat("-", 9))
	held := 0
	for _, r := range rs {
		f := r.faults
		for first := true; first || f != ""; first = false {
			chunk := f
			if len(chunk) > 90 {
				cut := strings.LastIndex(chunk[:90], "; ")
				if cut <= 0 {
					cut = 88
				}
				chunk, f = chunk[:cut+1], strings.TrimSpace(chunk[cut+1:])
			} else {
				f = ""
			}
			if first {
				fmt.Fprintf(b, "%-*s  %-*s  %s\n", w1, r.name, w2, chunk, r.verdict)
			} else {
				fmt.Fprintf(b, "%-*s  %-*s\n", w1, "", w2, chunk)
			}
		}
		if r.verdict == "held" {
			held++
		}
	}
	fmt.Fprintf(b, "%d cases, invariant held in %d\n", len(rs), held)
}

// ---- the real binary, for the SIGKILL cases ----

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// binary builds cmd/slurm-ec2 once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "faults-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "slurm-ec2")
		out, err := exec.Command("go", "build", "-o", buildBin, "github.com/slurm-ec2/slurm-ec2/cmd/slurm-ec2").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building cmd/slurm-ec2: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}
