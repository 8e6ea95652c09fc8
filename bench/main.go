// Command bench measures slurm-ec2 resuming, suspending and reconciling up to thousands of nodes
// against ec2sim with EC2's latency and token buckets, and writes BENCHMARKS.md and a plot.
//
//	go run ./bench [-bin bin/slurm-ec2] [-sizes 1,10,100,1000,5000] [-out BENCHMARKS.md] [-svg docs/bench.svg]
//	go run ./bench -report-only   # redraw the report from bench/results.json
//
// See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, out, svg, results, notes string
	sizes                         []int
	overheadRuns                  int
	reconcileNodes                int
	reportOnly, micro             bool
	oneGroup                      []int // node counts for the one-group case
	repeat                        int   // runs of each one-group size
	only                          string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	sizes := fs.String("sizes", "1,10,100,1000,5000", "comma-separated node counts for resume and suspend")
	fs.StringVar(&o.bin, "bin", "bin/slurm-ec2", "the slurm-ec2 binary to measure (make build)")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", "markdown report to write")
	fs.StringVar(&o.svg, "svg", "docs/bench.svg", "plot to write")
	fs.StringVar(&o.results, "results", "bench/results.json", "raw results (read by -report-only)")
	fs.StringVar(&o.notes, "notes", "bench/NOTES.md", "hand-written analysis included in the report")
	fs.IntVar(&o.overheadRuns, "overhead-runs", 15, "repetitions of the one-node run against an instant endpoint")
	fs.IntVar(&o.reconcileNodes, "reconcile-nodes", 10000, "nodes (and instances) for the reconcile run; 0 skips it")
	fs.BoolVar(&o.reportOnly, "report-only", false, "do not run anything: write the report from -results")
	fs.BoolVar(&o.micro, "micro", true, "also run the Go micro-benchmarks (go test -bench)")
	oneGroup := fs.String("one-group", "300,1000", "comma-separated node counts for the one-group case (one node group, one region); empty skips it")
	fs.IntVar(&o.repeat, "repeat", 1, "runs of each one-group size (the report gives the median and every run)")
	fs.StringVar(&o.only, "only", "", "run only this case ("+oneGroupCase+"); the report keeps the other cases' results from -results")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.sizes, err = nodeCounts("-sizes", *sizes, 10000); err != nil {
		return err
	}
	if o.oneGroup, err = nodeCounts("-one-group", *oneGroup, groupSize); err != nil {
		return err
	}
	if o.repeat < 1 {
		return fmt.Errorf("-repeat: %d runs; want at least 1", o.repeat)
	}
	switch o.only {
	case "":
	case oneGroupCase:
		if len(o.oneGroup) == 0 {
			return fmt.Errorf("-only %s with an empty -one-group: nothing to run", oneGroupCase)
		}
	default:
		return fmt.Errorf("-only %q: the one case that runs alone is %q", o.only, oneGroupCase)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var res *results
	if o.reportOnly {
		b, err := os.ReadFile(o.results)
		if err != nil {
			return fmt.Errorf("-report-only needs the results of an earlier run: %w", err)
		}
		res = &results{}
		if err := json.Unmarshal(b, res); err != nil {
			return fmt.Errorf("decoding %s: %w", o.results, err)
		}
	} else {
		var err error
		if res, err = measure(ctx, log, o); err != nil {
			return err
		}
		if o.only != "" {
			// Keep the other cases from the previous full run.
			prev := &results{}
			if b, err := os.ReadFile(o.results); err == nil {
				if err := json.Unmarshal(b, prev); err != nil {
					return fmt.Errorf("decoding %s to keep its other results: %w", o.results, err)
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			prev.OneGroup, prev.OneGroupMachine = res.OneGroup, res.OneGroupMachine
			res = prev
		}
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.results, b, 0o644); err != nil {
			return fmt.Errorf("writing raw results: %w", err)
		}
	}
	notes, err := os.ReadFile(o.notes)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading notes: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(o.svg), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.svg, []byte(plotSVG(res)), 0o644); err != nil {
		return fmt.Errorf("writing the plot: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(o.out), o.svg)
	if err != nil {
		rel = o.svg
	}
	if err := os.WriteFile(o.out, []byte(reportMarkdown(res, filepath.ToSlash(rel), string(notes))), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	log.Info("report written", "markdown", o.out, "plot", o.svg, "raw", o.results)
	return nil
}

// nodeCounts parses a comma-separated list of node counts in 1..most.
func nodeCounts(flagName, list string, most int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > most {
			return nil, fmt.Errorf("%s: %q is not a node count in 1..%d", flagName, f, most)
		}
		out = append(out, n)
	}
	return out, nil
}

// measure runs every scenario (or only o.only).
func measure(ctx context.Context, log *slog.Logger, o options) (*results, error) {
	res := &results{Machine: machineInfo(ctx)}
	if o.only == oneGroupCase {
		e, err := newEnv(ctx, log, o.bin)
		if err != nil {
			return nil, err
		}
		defer e.close()
		if res.OneGroup, err = e.oneGroupRuns(ctx, log, profile{Latency: "aws", Throttle: "aws"}, o.oneGroup, o.repeat); err != nil {
			return nil, err
		}
		res.OneGroupMachine = &res.Machine
		res.Finished = time.Now().UTC()
		return res, nil
	}
	if o.micro {
		mb, err := microBenchmarks(ctx, log)
		if err != nil {
			return nil, err
		}
		res.Micro = mb
	}
	e, err := newEnv(ctx, log, o.bin)
	if err != nil {
		return nil, err
	}
	defer e.close()

	instant := profile{Latency: "none", Throttle: "none"}
	aws := profile{Latency: "aws", Throttle: "aws"}
	if o.overheadRuns > 0 {
		log.Info("own overhead: one node, instant endpoint", "runs", o.overheadRuns)
		ov, err := e.overhead(ctx, instant, o.overheadRuns)
		if err != nil {
			return nil, err
		}
		res.Overhead = ov
	}
	for _, n := range o.sizes {
		log.Info("resume", "nodes", n, "sim", aws)
		r, err := e.resumeRun(ctx, aws, n)
		if err != nil {
			return nil, fmt.Errorf("resume of %d nodes: %w", n, err)
		}
		res.Runs = append(res.Runs, *r)
		log.Info("resume measured", "nodes", n, "addresses_known", r.AddrKnown, "exit", r.Proc.Wall, "bound", r.BoundAddr)
		log.Info("suspend", "nodes", n, "sim", aws)
		s, err := e.suspendRun(ctx, aws, n)
		if err != nil {
			return nil, fmt.Errorf("suspend of %d nodes: %w", n, err)
		}
		res.Runs = append(res.Runs, *s)
		log.Info("suspend measured", "nodes", n, "exit", s.Proc.Wall, "bound", s.BoundExit)
	}
	if len(o.oneGroup) > 0 {
		if res.OneGroup, err = e.oneGroupRuns(ctx, log, aws, o.oneGroup, o.repeat); err != nil {
			return nil, err
		}
		res.OneGroupMachine = &res.Machine
	}
	if o.reconcileNodes > 0 {
		log.Info("reconcile", "nodes", o.reconcileNodes, "sim", aws)
		r, err := e.reconcileRun(ctx, aws, o.reconcileNodes)
		if err != nil {
			return nil, fmt.Errorf("reconcile of %d nodes: %w", o.reconcileNodes, err)
		}
		res.Runs = append(res.Runs, *r)
	}
	res.Finished = time.Now().UTC()
	return res, nil
}

// machineInfo describes where the numbers were taken.
func machineInfo(ctx context.Context) Machine {
	out := func(name string, args ...string) string {
		b, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			return "unknown (" + err.Error() + ")"
		}
		return strings.TrimSpace(string(b))
	}
	m := Machine{Uname: out("uname", "-a"), Commit: out("git", "rev-parse", "HEAD"), Date: time.Now().UTC().Format(time.RFC3339),
		GoVersion: out("go", "version"), CPUs: 0}
	if st := out("git", "status", "--porcelain", "--untracked-files=no"); st != "" && !strings.HasPrefix(st, "unknown") {
		m.Commit += " (with uncommitted changes)"
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				m.CPU = strings.TrimSpace(v)
				m.CPUs++
			}
		}
	}
	return m
}
