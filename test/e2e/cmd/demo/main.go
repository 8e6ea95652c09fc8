// Command demo starts the e2e harness cluster (real Slurm: the machine's, or the release in
// $E2E_SLURM_VERSION from a cached root filesystem; ec2sim as EC2), submits a
// few jobs, shows Slurm's and EC2's views every few seconds until every job is done and
// every instance terminated, prints a summary and stops everything (KEEP=1 leaves the
// cluster running). Run it through `make demo`, as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-ec2/slurm-ec2/test/e2e"
)

type job struct {
	id, desc           string
	submit, start, end time.Time
	nodes, state       string
}

func main() {
	interval := flag.Duration("every", 3*time.Second, "how often to print progress")
	stop := flag.Bool("stop", false, "stop a cluster left running by KEEP=1 and exit")
	flag.Parse()
	if err := run(*interval, *stop); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(every time.Duration, stopOnly bool) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cfg := e2e.DefaultConfig()
	if stopOnly {
		return e2e.Cleanup(context.Background(), cfg.Root, os.Stdout)
	}
	_, file, _, _ := runtime.Caller(0)
	cfg.RepoDir = filepath.Clean(filepath.Join(filepath.Dir(file), "../../../.."))
	cfg.ReconcileEvery = 10 * time.Second
	cfg.Log = os.Stdout
	step := func(format string, args ...any) {
		fmt.Printf("\n==> "+format+"\n", args...)
	}

	step("starting the cluster: bridge %s, ec2sim (EC2 + IMDS), slurmctld; slurm-ec2 is ResumeProgram/SuspendProgram/ResumeFailProgram, reconcile every %s", cfg.Bridge, cfg.ReconcileEvery)
	c, err := e2e.Start(ctx, cfg)
	if err != nil {
		return err
	}
	keep := os.Getenv("KEEP") == "1"
	defer func() {
		if keep && ctx.Err() == nil {
			fmt.Printf("\nKEEP=1: the cluster keeps running. Try:\n  export SLURM_CONF=%s\n  sinfo; sbatch -N2 --wrap 'srun hostname'; squeue\n  %s/slurm-ec2 status   (with SLURM_EC2_CONFIG_DIR=%s AWS_ENDPOINT_URL_EC2=%s and dummy AWS keys)\nStop it with: go run ./test/e2e/cmd/demo -stop\n", c.SlurmConf, c.Bin, c.Etc, c.EC2URL)
			return
		}
		step("stopping everything the demo started")
		c.Stop(context.Background())
	}()

	fmt.Printf("slurm.conf: %s (base settings + `slurm-ec2 generate-conf` snippet)\n", c.SlurmConf)
	if b, err := os.ReadFile(filepath.Join(c.Etc, "slurm.conf.aws")); err == nil {
		fmt.Printf("--- generated snippet ---\n%s-------------------------\n", b)
	}

	out := "--output=" + filepath.Join(c.Root, "jobs", "%j.out")
	specs := []struct {
		desc, script string
		args         []string
	}{
		{"3 nodes, srun hostname", "srun hostname", []string{"-N3"}},
		{"2 nodes, 10 s of work", "srun sh -c 'sleep 10; hostname'", []string{"-N2"}},
		{"1 spot node only", "hostname", []string{"-N1", "-x", "aws-ondemand-[0-9]"}},
	}
	var jobs []*job
	step("submitting %d jobs to partition aws (on-demand group Weight=1, spot group Weight=2)", len(specs))
	for _, s := range specs {
		args := append([]string{"-p", "aws", out}, s.args...)
		id, err := c.Sbatch(ctx, s.script, args...)
		if err != nil {
			return err
		}
		fmt.Printf("sbatch %s --wrap %q  -> job %s (%s)\n", strings.Join(s.args, " "), s.script, id, s.desc)
		jobs = append(jobs, &job{id: id, desc: s.desc, submit: time.Now()})
	}

	step("progress every %s (Slurm: sinfo; EC2: ec2sim's instance list)", every)
	start := time.Now()
	allDoneAt := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
		done := 0
		for _, j := range jobs {
			if jj, err := c.Job(ctx, j.id); err == nil {
				if j.start.IsZero() && (jj.State == "RUNNING" || jj.State == "COMPLETED") {
					j.start = time.Now()
				}
				if jj.State == "COMPLETED" || jj.State == "FAILED" || jj.State == "CANCELLED" {
					if j.end.IsZero() {
						j.end = time.Now()
					}
					done++
				}
				j.state = jj.State
				if jj.NodeList != "" && jj.NodeList != "(null)" {
					j.nodes = jj.NodeList
				}
			}
		}
		ins, _ := c.Instances(ctx)
		live := 0
		for _, i := range ins {
			if i.State != "terminated" {
				live++
			}
		}
		printProgress(ctx, c, time.Since(start), jobs, ins)
		if done == len(jobs) && allDoneAt.IsZero() {
			allDoneAt = time.Now()
			fmt.Println("    all jobs done; idle nodes are suspended after SuspendTime and their instances terminated")
		}
		if done == len(jobs) && live == 0 && allNodesDown(ctx, c) {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("the demo did not finish within 5 minutes; logs in %s/log", c.Root)
		}
	}

	step("summary")
	fmt.Printf("%-4s %-26s %-22s %8s %8s %10s  %s\n", "job", "what", "nodes", "start", "done", "state", "output")
	for _, j := range jobs {
		b, _ := os.ReadFile(filepath.Join(c.Root, "jobs", j.id+".out"))
		o := strings.Fields(string(b))
		sort.Strings(o)
		fmt.Printf("%-4s %-26s %-22s %7.1fs %7.1fs %10s  %s\n", j.id, j.desc, j.nodes, j.start.Sub(j.submit).Seconds(), j.end.Sub(j.submit).Seconds(), j.state, strings.Join(o, " "))
	}
	ins, _ := c.Instances(ctx)
	byGroup := map[string]int{}
	for _, i := range ins {
		byGroup[i.Tags["slurm-ec2:node-group"]+" ("+i.Lifecycle+")"]++
	}
	var groups []string
	for g, n := range byGroup {
		groups = append(groups, fmt.Sprintf("%s: %d", g, n))
	}
	slices.Sort(groups)
	fmt.Printf("instances launched: %d [%s]; all terminated and nodes powered down %.1fs after the first sbatch\n", len(ins), strings.Join(groups, ", "), time.Since(jobs[0].submit).Seconds())
	if counters, err := c.Counters(ctx); err == nil {
		var parts []string
		for _, a := range []string{"CreateFleet", "CreateTags", "DescribeInstances", "TerminateInstances"} {
			parts = append(parts, fmt.Sprintf("%s=%v", a, counters[a]["Total"]))
		}
		fmt.Printf("EC2 API calls: %s\n", strings.Join(parts, " "))
	}
	okRuns := 0
	for _, r := range c.Reconciles {
		if r.ExitCode == 0 {
			okRuns++
		}
	}
	fmt.Printf("reconcile runs: %d (%d exit 0)\nlogs: %s/log (slurmctld.log, slurm-ec2.log, instances/*.log)\n", len(c.Reconciles), okRuns, c.Root)
	return nil
}

func allNodesDown(ctx context.Context, c *e2e.Cluster) bool {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return false
	}
	for _, n := range nodes {
		if !n.Has("POWERED_DOWN") || n.Has("POWERING_DOWN") {
			return false
		}
	}
	return true
}

func printProgress(ctx context.Context, c *e2e.Cluster, el time.Duration, jobs []*job, ins []e2e.Instance) {
	var js []string
	for _, j := range jobs {
		js = append(js, fmt.Sprintf("%s:%s", j.id, j.state))
	}
	fmt.Printf("[+%5.1fs] jobs %s\n", el.Seconds(), strings.Join(js, " "))
	// sinfo without the powered-down crowd: the nodes that are doing something.
	if out, err := c.Slurm(ctx, "sinfo", "-h", "-N", "-o", "%N %T"); err == nil {
		states := map[string][]string{}
		idle := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			if f[1] == "idle~" {
				idle++
				continue
			}
			states[f[1]] = append(states[f[1]], f[0])
		}
		var parts []string
		for st, ns := range states {
			slices.Sort(ns)
			ns = slices.Compact(ns)
			parts = append(parts, st+"="+strings.Join(ns, ","))
		}
		slices.Sort(parts)
		fmt.Printf("          slurm: %s (+%d idle~)\n", strings.Join(parts, " "), idle)
	}
	for _, i := range ins {
		if i.State == "terminated" {
			continue
		}
		fmt.Printf("          ec2:   %s %-13s %-9s %-11s %s Name=%s\n", i.InstanceID, i.State, i.Lifecycle, i.AvailabilityZone, i.PrivateIP, i.Tags["Name"])
	}
}
