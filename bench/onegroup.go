package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// The one-group case: N nodes of a single on-demand node group (groups[0], aws-east1: two
// instance types and two subnets, us-east-1) in one resume. The four-group spread of the main
// resume runs hides what one group costs: its CreateFleet and its Name tags, which the CreateTags
// bucket of one region paces.

// pythonReference is what the Python "AWS plugin for Slurm" v2 measured in this same case
// (ec2sim -latency aws -throttle aws, a fresh emulator, the recording scontrol), side by side
// with slurm-ec2 on a 2-core machine like this one, as issue 18 records it. The bench cannot run
// the Python plugin (it is not in this repository): these are reference figures, not this run's.
var pythonReference = map[int]struct{ Addresses, NameTags time.Duration }{
	300:  {30000 * time.Millisecond, 30200 * time.Millisecond},
	1000: {115900 * time.Millisecond, 116000 * time.Millisecond},
}

// oneGroupCase is the -only value that runs just this case.
const oneGroupCase = "one-group"

// oneGroupRuns resumes n nodes of one group, repeat times for each n.
func (e *env) oneGroupRuns(ctx context.Context, log *slog.Logger, p profile, sizes []int, repeat int) ([]Run, error) {
	var out []Run
	for _, n := range sizes {
		if n > groupSize {
			return nil, fmt.Errorf("-one-group: %d nodes do not fit one group of %d", n, groupSize)
		}
		for i := range repeat {
			log.Info("resume, one node group", "nodes", n, "run", i+1, "of", repeat, "sim", p)
			per := make([]int, len(groups))
			per[0] = n
			r, err := e.resumeRunPer(ctx, p, per)
			if err != nil {
				return nil, fmt.Errorf("resume of %d nodes of one group: %w", n, err)
			}
			r.Kind = "resume-one-group"
			log.Info("resume, one node group, measured", "nodes", n, "addresses_known", r.AddrKnown,
				"name_tags_done", r.Proc.Wall, "bound", r.BoundExit, "create_tags_throttled", r.API["CreateTags"].Throttled)
			out = append(out, *r)
		}
	}
	return out, nil
}

// oneGroupRow is the runs of one N, summarised.
type oneGroupRow struct {
	N                               int
	Runs                            []Run
	Addr, Exit                      time.Duration // medians
	BoundAddr, BoundExit            time.Duration
	AllOK                           bool
	CreateTags, CreateTagsThrottled []int
}

func oneGroupRows(runs []Run) []oneGroupRow {
	by := map[int][]Run{}
	var ns []int
	for _, r := range runs {
		if _, ok := by[r.Nodes]; !ok {
			ns = append(ns, r.Nodes)
		}
		by[r.Nodes] = append(by[r.Nodes], r)
	}
	slices.Sort(ns)
	var rows []oneGroupRow
	for _, n := range ns {
		rs := by[n]
		row := oneGroupRow{N: n, Runs: rs, AllOK: true, BoundAddr: rs[0].BoundAddr, BoundExit: rs[0].BoundExit}
		var addrs, exits []time.Duration
		for _, r := range rs {
			addrs, exits = append(addrs, r.AddrKnown), append(exits, r.Proc.Wall)
			row.AllOK = row.AllOK && r.OK
			row.CreateTags = append(row.CreateTags, r.API["CreateTags"].Total)
			row.CreateTagsThrottled = append(row.CreateTagsThrottled, r.API["CreateTags"].Throttled)
		}
		row.Addr, row.Exit = median(addrs), median(exits)
		rows = append(rows, row)
	}
	return rows
}

// oneGroupMarkdown is the report's section for the one-group case.
func oneGroupMarkdown(res *results) string {
	if len(res.OneGroup) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("\n## Resume, one node group: Name tags at EC2's CreateTags rate\n\n")
	if m := res.OneGroupMachine; m != nil {
		w("Measured %s at commit `%s` (%d logical CPUs, shared with other work).\n", m.Date, m.Commit, m.CPUs)
	}
	w("N nodes of one on-demand node group (`aws-east1`: two instance types, two subnets, us-east-1),\n")
	w("one resume, `-latency aws -throttle aws`, the same 10,000-node Slurm table. Run alone with\n")
	w("`make bench BENCH_FLAGS='-only one-group'`. Each N was run %s; the table gives the median\n", timesString(res.OneGroup))
	w("and every run. \"Name tags done\" is the exit: resume exits when every instance has its Name tag.\n")
	w("Its bound is CreateFleet's time plus what the CreateTags bucket allows (100 at once, then 10 a\n")
	w("second, from CreateFleet's answer). The Python plugin v2 figures are references measured side by\n")
	w("side in this case (issue 18), not by this run: the bench cannot run the Python plugin.\n\n")
	w("| N | addresses known s, median (runs) | addresses bound s | Name tags done s, median (runs) | Name tags bound s | ratio (target ≤ 1.1x) | Python plugin v2: addresses / Name tags s | CreateTags calls (throttled) | outcome |\n")
	w("|---:|---|---:|---|---:|---|---|---|---|\n")
	for _, row := range oneGroupRows(res.OneGroup) {
		rr := row.Exit.Seconds() / max(row.BoundExit.Seconds(), 1e-9)
		py := "n/a"
		if ref, ok := pythonReference[row.N]; ok {
			py = fmt.Sprintf("%s / %s; ours below both: %s", secs(ref.Addresses), secs(ref.NameTags),
				verdict(row.Exit < ref.NameTags && row.Addr < ref.Addresses, "Name tags done not below"))
		}
		var addrs, exits, tags []string
		for i, r := range row.Runs {
			addrs, exits = append(addrs, secs(r.AddrKnown)), append(exits, secs(r.Proc.Wall))
			tags = append(tags, fmt.Sprintf("%d (%d)", row.CreateTags[i], row.CreateTagsThrottled[i]))
		}
		outcome := okString(row.Runs[len(row.Runs)-1])
		if !row.AllOK {
			outcome = "**incomplete** in some run: " + row.Runs[len(row.Runs)-1].Check
		}
		w("| %d | %s (%s) | %s | %s (%s) | %s | %s | %s | %s | %s |\n", row.N, secs(row.Addr), strings.Join(addrs, ", "),
			secs(row.BoundAddr), secs(row.Exit), strings.Join(exits, ", "), secs(row.BoundExit), verdictRatio(rr, 1.1, row.AllOK),
			py, strings.Join(tags, ", "), outcome)
	}
	return b.String()
}

// timesString says how many runs each N had ("once", "3 times", "2-3 times").
func timesString(runs []Run) string {
	counts := map[int]int{}
	for _, r := range runs {
		counts[r.Nodes]++
	}
	lo, hi := -1, 0
	for _, c := range counts {
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	switch {
	case lo == hi && hi == 1:
		return "once"
	case lo == hi:
		return fmt.Sprintf("%d times", hi)
	}
	return fmt.Sprintf("%d-%d times", lo, hi)
}
