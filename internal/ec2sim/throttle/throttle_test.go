package throttle_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
)

// clock is a manual clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// drain calls Allow until it fails and returns how many passed (bounded to catch runaways).
func drain(l *throttle.Limiter, c throttle.Call) int {
	n := 0
	for ; n < 100000; n++ {
		if !l.AllowCall(c) {
			return n
		}
	}
	return n
}

func TestAWSRequestBuckets(t *testing.T) {
	tests := map[string]struct {
		call       throttle.Call
		capacity   int
		refillPerS float64
	}{
		"DescribeInstances filtered is non-mutating":  {throttle.Call{Action: "DescribeInstances"}, 100, 20},
		"DescribeInstances unfiltered, smaller":       {throttle.Call{Action: "DescribeInstances", Unfiltered: true}, 50, 10},
		"DescribeSubnets unfiltered stays at 100":     {throttle.Call{Action: "DescribeSubnets", Unfiltered: true}, 100, 20},
		"DescribeLaunchTemplates non-mutating":        {throttle.Call{Action: "DescribeLaunchTemplates"}, 100, 20},
		"CreateFleet is mutating":                     {throttle.Call{Action: "CreateFleet"}, 50, 5},
		"CreateTags has its own bucket":               {throttle.Call{Action: "CreateTags"}, 100, 10},
		"RunInstances uncategorized":                  {throttle.Call{Action: "RunInstances"}, 5, 2},
		"TerminateInstances uncategorized":            {throttle.Call{Action: "TerminateInstances"}, 100, 5},
		"RequestSpotInstances is resource-intensive":  {throttle.Call{Action: "RequestSpotInstances"}, 50, 5},
		"ModifyInstanceAttribute mutating by default": {throttle.Call{Action: "ModifyInstanceAttribute"}, 50, 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			l := throttle.New(throttle.AWS(), clk.Now)
			if got := drain(l, tc.call); got != tc.capacity {
				t.Fatalf("burst: %d calls passed, want %d", got, tc.capacity)
			}
			if l.AllowCall(tc.call) {
				t.Fatal("call passed on an empty bucket; want RequestLimitExceeded")
			}
			// One second refills RefillPerSecond tokens (floor: whole calls only).
			clk.Advance(time.Second)
			if got, want := drain(l, tc.call), int(tc.refillPerS); got != want {
				t.Fatalf("after 1s: %d calls passed, want %d", got, want)
			}
			// A long idle time refills only up to capacity.
			clk.Advance(time.Hour)
			if got := drain(l, tc.call); got != tc.capacity {
				t.Fatalf("after 1h: %d calls passed, want capacity %d", got, tc.capacity)
			}
		})
	}
}

func TestBucketsArePerAction(t *testing.T) {
	clk := newClock()
	l := throttle.New(throttle.AWS(), clk.Now)
	if got := drain(l, throttle.Call{Action: "DescribeInstances"}); got != 100 {
		t.Fatalf("DescribeInstances burst = %d, want 100", got)
	}
	// Same category, other action: its own full bucket (EC2 evaluates each API individually).
	if !l.Allow("DescribeSubnets", 0) {
		t.Fatal("DescribeSubnets throttled by DescribeInstances' bucket")
	}
	// Unfiltered DescribeInstances uses a bucket separate from the filtered one.
	if !l.AllowCall(throttle.Call{Action: "DescribeInstances", Unfiltered: true}) {
		t.Fatal("unfiltered DescribeInstances throttled by the filtered bucket")
	}
	// Another Region has its own buckets.
	if !l.AllowCall(throttle.Call{Action: "DescribeInstances", Region: "eu-west-1"}) {
		t.Fatal("eu-west-1 throttled by us-east-1's bucket")
	}
}

func TestResourceBucketLimitsLaunch(t *testing.T) {
	clk := newClock()
	l := throttle.New(throttle.AWS(), clk.Now)
	// 1,000 instances in one CreateFleet call: the whole resource bucket.
	if !l.Allow("CreateFleet", 1000) {
		t.Fatal("first 1000-instance launch refused; the bucket holds 1000")
	}
	// The request bucket still has tokens, but the launch bucket (shared with RunInstances) is empty.
	if l.Allow("CreateFleet", 1) {
		t.Fatal("launch of 1 passed right after 1000; want RequestLimitExceeded")
	}
	if l.Allow("RunInstances", 1) {
		t.Fatal("RunInstances passed; it shares the instances-launched bucket with CreateFleet")
	}
	// Refused calls take nothing: CreateFleet's request bucket (50) lost only the call that passed.
	for i := 0; i < 10; i++ {
		l.Allow("CreateFleet", 1)
	}
	if got := drain(l, throttle.Call{Action: "CreateFleet"}); got != 49 {
		t.Fatalf("CreateFleet request tokens left = %d, want 49 (refused calls must take nothing)", got)
	}
	// Two instances per second refill.
	clk.Advance(time.Second)
	if l.Allow("RunInstances", 3) {
		t.Fatal("3 instances passed after 1s; refill is 2/s")
	}
	if !l.Allow("RunInstances", 2) {
		t.Fatal("2 instances refused after 1s; refill is 2/s")
	}
	// Terminations have their own bucket: 1000, refill 20/s.
	if !l.Allow("TerminateInstances", 1000) || l.Allow("TerminateInstances", 1) {
		t.Fatal("terminate bucket: want 1000 then refusal")
	}
	clk.Advance(time.Second)
	if !l.Allow("TerminateInstances", 20) {
		t.Fatal("20 terminations refused after 1s; refill is 20/s")
	}
	// More than the bucket can ever hold: always refused.
	if l.Allow("RunInstances", 1001) {
		t.Fatal("1001 instances passed; the bucket holds 1000")
	}
}

func TestUnlimitedWhenNotConfigured(t *testing.T) {
	l := throttle.New(throttle.Config{}, newClock().Now)
	for i := 0; i < 10000; i++ {
		if !l.Allow("Anything", 5000) {
			t.Fatal("empty Config throttled a call")
		}
	}
}

func TestMinDurationExamples(t *testing.T) {
	aws := throttle.AWS()
	rep := func(c throttle.Call, n int) []throttle.Call {
		out := make([]throttle.Call, n)
		for i := range out {
			out[i] = c
		}
		return out
	}
	tests := map[string]struct {
		calls []throttle.Call
		want  time.Duration
	}{
		"empty":                         {nil, 0},
		"within burst":                  {rep(throttle.Call{Action: "CreateTags"}, 100), 0},
		"CreateTags 110 = 1s of refill": {rep(throttle.Call{Action: "CreateTags"}, 110), time.Second},
		"two 1000-instance launches":    {rep(throttle.Call{Action: "CreateFleet", N: 1000}, 2), 500 * time.Second},
		"RunInstances 7 calls":          {rep(throttle.Call{Action: "RunInstances", N: 1}, 7), time.Second},
		"impossible launch":             {[]throttle.Call{{Action: "RunInstances", N: 1001}}, throttle.Never},
		"fractional refill 4/0.3 x5":    {rep(throttle.Call{Action: "CreateVpcEndpoint"}, 5), 3333333334 * time.Nanosecond},
		"launch then terminate 1000":    {[]throttle.Call{{Action: "CreateFleet", N: 1000}, {Action: "TerminateInstances", N: 1000}, {Action: "RunInstances", N: 10}}, 5 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := aws.MinDuration(tc.calls); got != tc.want {
				t.Fatalf("MinDuration = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMinDurationMatchesSimulation drives a Limiter with a stepped clock, retrying each call
// until it passes, and checks the time the last one passed against MinDuration.
func TestMinDurationMatchesSimulation(t *testing.T) {
	actions := []throttle.Call{
		{Action: "CreateFleet", N: 40},
		{Action: "CreateFleet", N: 100},
		{Action: "RunInstances", N: 3},
		{Action: "CreateTags"},
		{Action: "DescribeInstances"},
		{Action: "DescribeInstances", Unfiltered: true},
		{Action: "TerminateInstances", N: 120},
	}
	const step = 25 * time.Millisecond
	for seed := uint64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewPCG(seed, 42))
		calls := make([]throttle.Call, 300)
		for i := range calls {
			calls[i] = actions[r.IntN(len(actions))]
		}
		cfg := throttle.AWS()
		want := cfg.MinDuration(calls)

		clk := newClock()
		start := clk.Now()
		l := throttle.New(cfg, clk.Now)
		for i, c := range calls {
			for tries := 0; !l.AllowCall(c); tries++ {
				if tries > 1e6 {
					t.Fatalf("seed %d: call %d (%+v) never passed", seed, i, c)
				}
				clk.Advance(step)
			}
		}
		got := clk.Now().Sub(start)
		t.Logf("seed %d: MinDuration %v, simulation %v", seed, want, got)
		// The stepped simulation can only be late, and only by less than a step or so: a call that
		// passes late leaves its bucket fuller for the next, so lateness does not compound.
		if got < want || got-want >= 5*step {
			t.Errorf("seed %d: simulation finished at %v, MinDuration = %v", seed, got, want)
		}
	}
}

func TestAllowConcurrent(t *testing.T) {
	l := throttle.New(throttle.AWS(), newClock().Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for j := 0; j < 50; j++ {
				if l.Allow("CreateTags", 0) {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if passed != 100 {
		t.Fatalf("%d concurrent CreateTags passed with a frozen clock, want exactly 100", passed)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := throttle.New(throttle.AWS(), nil)
	for b.Loop() {
		l.Allow("DescribeInstances", 0)
	}
}
