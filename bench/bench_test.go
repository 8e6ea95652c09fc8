package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

func TestParseLogfmt(t *testing.T) {
	tests := []struct {
		line string
		want map[string]string
	}{
		{`time=2026-01-02T03:04:05.000Z level=INFO msg="resume done" cluster=bench asked=10 addresses_known_seconds=3.15`,
			map[string]string{"time": "2026-01-02T03:04:05.000Z", "level": "INFO", "msg": "resume done", "cluster": "bench", "asked": "10", "addresses_known_seconds": "3.15"}},
		{`level=WARN msg="a \"quoted\" word" error="x=y z"`,
			map[string]string{"level": "WARN", "msg": `a "quoted" word`, "error": "x=y z"}},
		{`msg=short`, map[string]string{"msg": "short"}},
		{`not a log line`, map[string]string{}},
		{`msg="unterminated`, map[string]string{"msg": "unterminated"}},
		{``, map[string]string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseLogfmt(tt.line)); diff != "" {
			t.Errorf("parseLogfmt(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func FuzzParseLogfmt(f *testing.F) {
	for _, s := range []string{`msg="resume done" a=1`, `k="\"`, `=x`, `a=b c`, `x="\\" y=2`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		kv := parseLogfmt(line)
		for k := range kv {
			if k == "" || strings.ContainsAny(k, " \"=") {
				t.Fatalf("parseLogfmt(%q) gave key %q", line, k)
			}
		}
	})
}

func TestFindSummaryTakesTheLastMatchingLine(t *testing.T) {
	stderr := "level=INFO msg=\"resume done\" asked=1\nlevel=INFO msg=other\nlevel=INFO msg=\"resume done\" asked=2\n"
	if got := findSummary(stderr, "resume done")["asked"]; got != "2" {
		t.Errorf("asked = %q, want 2", got)
	}
	if got := findSummary(stderr, "suspend done"); got != nil {
		t.Errorf("found %v for a message that is not there", got)
	}
}

func TestSpread(t *testing.T) {
	tests := []struct {
		n    int
		want []int
	}{
		{1, []int{1, 0, 0, 0}},
		{10, []int{3, 3, 2, 2}},
		{5000, []int{1250, 1250, 1250, 1250}},
	}
	for _, tt := range tests {
		got := spread(tt.n)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("spread(%d) (-want +got):\n%s", tt.n, diff)
		}
		if names := targetNames(got); len(names) != tt.n {
			t.Errorf("targetNames(spread(%d)) has %d names", tt.n, len(names))
		}
	}
	if got := perRegion(spread(10)); !cmp.Equal(got, map[string][]int{"us-east-1": {3, 3}, "us-west-2": {2, 2}}) {
		t.Errorf("perRegion(spread(10)) = %v", got)
	}
}

func TestChunks(t *testing.T) {
	if diff := cmp.Diff([]int{1000, 1000, 500}, chunks(2500, 1000)); diff != "" {
		t.Error(diff)
	}
	if got := chunks(0, 1000); len(got) != 0 {
		t.Errorf("chunks(0) = %v", got)
	}
}

func secondsOf(d time.Duration) float64 { return d.Seconds() }

func TestBounds(t *testing.T) {
	aws, err := newBoundModel(profile{Latency: "aws", Throttle: "aws"})
	if err != nil {
		t.Fatal(err)
	}
	noThrottle, err := newBoundModel(profile{Latency: "aws", Throttle: "none"})
	if err != nil {
		t.Fatal(err)
	}
	instant, err := newBoundModel(profile{Latency: "none", Throttle: "none"})
	if err != nil {
		t.Fatal(err)
	}
	approx := func(name string, got time.Duration, want float64) {
		t.Helper()
		if d := secondsOf(got) - want; d > 0.001 || d < -0.001 {
			t.Errorf("%s = %.4f s, want %.4f s", name, got.Seconds(), want)
		}
	}
	// One node: Describe 60 ms, CreateFleet 2.5 s + 25 ms, Describe by id 60.5 ms.
	addr, exit := aws.resumeBound("us-east-1", []int{1})
	approx("resume 1 addr", addr, 0.060+2.525+0.0605)
	approx("resume 1 exit", exit, max(0.060+2.525+0.0605, 0.060+2.525+0.041))
	// 2,500 instances in one region, ten fleets of 250 (fleet.SplitLaunch): the RunInstances
	// resource bucket holds 1,000 and refills 2/s, so the last fleet is admitted after
	// (2,500-1,000)/2 = 750 s.
	addr, _ = aws.resumeBound("us-east-1", []int{1250, 1250})
	approx("resume 2500 addr", addr, 0.060+750+(2.5+250*0.025)+(0.060+250*0.0005))
	// Without throttling the slowest fleet (250 instances) decides.
	addr, _ = noThrottle.resumeBound("us-east-1", []int{1250, 1250})
	approx("resume 2500 unthrottled addr", addr, 0.060+(2.5+6.25)+(0.060+0.125))
	// CreateTags: 1,000 tags, 100 at once then 10/s from the first CreateFleet's answer (it
	// holds ids): the last is admitted 90 s after it. 1,000 go out as 4 fleets of 250, 300 as 2
	// of 150.
	_, exit = aws.resumeBound("us-east-1", []int{1000})
	approx("resume 1000 exit", exit, 0.060+(2.5+6.25)+90+0.041)
	_, exit = aws.resumeBound("us-east-1", []int{300})
	approx("resume 300 exit", exit, 0.060+(2.5+3.75)+20+0.041)
	// Suspend 2,500: 3 pages (1,000+1,000+500), then 3 TerminateInstances; the resource bucket
	// admits the last 500 at (2,500-1,000)/20 = 75 s.
	approx("suspend 2500", aws.suspendBound("us-west-2", 2500), (0.560+0.560+0.310)+75+(0.3+500*0.002))
	approx("reconcile 5000", aws.reconcileBound(5000), 5*0.560)
	if a, x := instant.resumeBound("us-east-1", []int{5}); a != 0 || x != 0 {
		t.Errorf("instant bound = %v, %v; want 0", a, x)
	}
	if got := minDescribePages(200); got != 1 {
		t.Errorf("minDescribePages(200) = %d", got)
	}
	if got := minDescribePages(2500); got != 3 {
		t.Errorf("minDescribePages(2500) = %d", got)
	}
}

func TestLastAddressUpdate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := []fakeslurm.Call{
		{Argv: []string{"scontrol", "update", "nodename=a", "nodeaddr=10.0.0.1"}, Time: t0.Add(time.Second)},
		{Argv: []string{"scontrol", "update", "nodename=b", "state=down", "reason=x"}, Time: t0.Add(5 * time.Second)},
		{Argv: []string{"scontrol", "update", "NodeName=c", "NodeAddr=10.0.0.2"}, Time: t0.Add(3 * time.Second)},
		{Argv: []string{"scontrol", "show", "nodes"}, Time: t0.Add(9 * time.Second)},
	}
	if got := lastAddressUpdate(calls); !got.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("lastAddressUpdate = %v, want %v", got, t0.Add(3*time.Second))
	}
}

func TestReportMentionsMissedTargets(t *testing.T) {
	res := &results{Runs: []Run{
		{Kind: "resume", Nodes: 10, AddrKnown: 3 * time.Second, BoundAddr: 2 * time.Second, BoundExit: 2 * time.Second, WantFleets: 4, OK: true},
		{Kind: "resume", Nodes: 5000, AddrKnown: time.Second, BoundAddr: 10 * time.Second, WantFleets: 8},
		{Kind: "suspend", Nodes: 10, BoundExit: time.Second, WantTerminates: 2, WantDescribePages: 2, OK: true},
	}}
	res.Runs[2].Proc.Wall = 1100 * time.Millisecond
	md := reportMarkdown(res, "docs/bench.svg", "## Notes\n")
	for _, want := range []string{"1.50x **missed** by 25.0%", "1.10x met", "0.10x **missed**: not every node", "**incomplete**", "## Notes", "docs/bench.svg"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	svg := plotSVG(res)
	if !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "polyline") {
		t.Errorf("plot is not an SVG with lines:\n%s", svg)
	}
}
