package latency_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/latency"
)

func TestNone(t *testing.T) {
	for _, m := range []latency.Model{latency.None(), {}} {
		for _, a := range []string{"CreateFleet", "DescribeInstances", "Unknown"} {
			if d := m.For(a, 1000); d != 0 {
				t.Errorf("None().For(%s) = %v, want 0", a, d)
			}
		}
	}
}

func TestAWSShape(t *testing.T) {
	m := latency.AWS().WithJitter(0)
	tests := map[string]struct {
		action   string
		n        int
		min, max time.Duration
	}{
		"CreateFleet 4 takes seconds":         {"CreateFleet", 4, 2 * time.Second, 5 * time.Second},
		"RunInstances 1 about 1-2s":           {"RunInstances", 1, time.Second, 2 * time.Second},
		"DescribeInstances tens of ms":        {"DescribeInstances", 10, 10 * time.Millisecond, 100 * time.Millisecond},
		"CreateTags 1 tens of ms":             {"CreateTags", 1, 10 * time.Millisecond, 100 * time.Millisecond},
		"unknown action gets the default":     {"DescribeRegions", 0, 10 * time.Millisecond, 100 * time.Millisecond},
		"negative count treated as zero":      {"CreateTags", -5, 10 * time.Millisecond, 100 * time.Millisecond},
		"CreateFleet 1000 still under a min.": {"CreateFleet", 1000, 5 * time.Second, time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := m.For(tc.action, tc.n)
			if d < tc.min || d > tc.max {
				t.Fatalf("For(%s, %d) = %v, want in [%v, %v]", tc.action, tc.n, d, tc.min, tc.max)
			}
		})
	}
	// Grows with instance count.
	for _, a := range []string{"CreateFleet", "RunInstances", "DescribeInstances", "CreateTags", "TerminateInstances"} {
		if small, big := m.For(a, 1), m.For(a, 500); big <= small {
			t.Errorf("%s: For(500)=%v not above For(1)=%v", a, big, small)
		}
	}
	// The launch is the critical path: CreateFleet slower than RunInstances slower than Describe.
	if !(m.For("CreateFleet", 4) > m.For("RunInstances", 4) && m.For("RunInstances", 4) > m.For("DescribeInstances", 4)) {
		t.Error("AWS model ordering CreateFleet > RunInstances > DescribeInstances broken")
	}
}

func TestJitterDeterministicBySeed(t *testing.T) {
	draw := func(m latency.Model) []time.Duration {
		var out []time.Duration
		for i := 0; i < 20; i++ {
			out = append(out, m.For("CreateFleet", i))
		}
		return out
	}
	a := draw(latency.AWS().WithSeed(7))
	b := draw(latency.AWS().WithSeed(7))
	c := draw(latency.AWS().WithSeed(8))
	same, differ := true, false
	for i := range a {
		same = same && a[i] == b[i]
		differ = differ || a[i] != c[i]
		base := latency.AWS().WithJitter(0).For("CreateFleet", i)
		lo, hi := time.Duration(float64(base)*0.8)-1, time.Duration(float64(base)*1.2)+1
		if a[i] < lo || a[i] > hi {
			t.Errorf("jittered %v outside ±20%% of %v", a[i], base)
		}
	}
	if !same {
		t.Errorf("same seed gave different sequences:\n%v\n%v", a, b)
	}
	if !differ {
		t.Error("different seeds gave identical sequences")
	}
}

// TestConcurrentDrawsSameMultiset: concurrent callers share one seeded sequence, so they get the
// same set of durations as one caller, in some order.
func TestConcurrentDrawsSameMultiset(t *testing.T) {
	const n = 400
	seq := latency.AWS().WithSeed(3)
	var want []time.Duration
	for i := 0; i < n; i++ {
		want = append(want, seq.For("DescribeInstances", 10))
	}
	conc := latency.AWS().WithSeed(3)
	var mu sync.Mutex
	var got []time.Duration
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < n/8; i++ {
				d := conc.For("DescribeInstances", 10)
				mu.Lock()
				got = append(got, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatal("concurrent draws differ from the sequential draws of the same seed")
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lat.json")
	if err := os.WriteFile(file, []byte(`{"default":{"base":"5ms"},"actions":{"CreateFleet":{"base":"1s","perInstance":"10ms"}},"jitter":0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"actions":{"CreateFleet":{"base":"soon"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.json")
	if err := os.WriteFile(unknown, []byte(`{"defaults":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	awsFleet := latency.AWS().WithJitter(0).For("CreateFleet", 4)
	tests := map[string]struct {
		spec    string
		fleet4  time.Duration // For("CreateFleet", 4), compared when wantErr == ""
		other   time.Duration // For("DescribeRegions", 0)
		wantErr string
	}{
		"none":             {spec: "none"},
		"empty is none":    {spec: ""},
		"aws no jitter":    {spec: "aws,jitter=0", fleet4: awsFleet, other: 50 * time.Millisecond},
		"aws x10":          {spec: "aws,x10,jitter=0", fleet4: 10 * awsFleet, other: 500 * time.Millisecond},
		"aws x0.5 spaces":  {spec: " aws , x0.5 , jitter=0 ", fleet4: awsFleet / 2, other: 25 * time.Millisecond},
		"json file":        {spec: file, fleet4: 1040 * time.Millisecond, other: 5 * time.Millisecond},
		"json file scaled": {spec: file + ",x2", fleet4: 2080 * time.Millisecond, other: 10 * time.Millisecond},
		"bad word":         {spec: "fast", wantErr: "want none, aws"},
		"none with option": {spec: "none,x10", wantErr: "takes no options"},
		"bad scale":        {spec: "aws,xten", wantErr: "scale"},
		"negative scale":   {spec: "aws,x-1", wantErr: "scale"},
		"bad jitter":       {spec: "aws,jitter=2", wantErr: "jitter"},
		"bad seed":         {spec: "aws,seed=-1", wantErr: "seed"},
		"unknown option":   {spec: "aws,fast", wantErr: "unknown option"},
		"missing file":     {spec: filepath.Join(dir, "nope.json"), wantErr: "reading latency model"},
		"bad duration":     {spec: bad, wantErr: "actions.CreateFleet: base"},
		"unknown field":    {spec: unknown, wantErr: "unknown field"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := latency.Parse(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.spec, err)
			}
			if got := m.For("CreateFleet", 4); got != tc.fleet4 {
				t.Errorf("For(CreateFleet,4) = %v, want %v", got, tc.fleet4)
			}
			if got := m.For("DescribeRegions", 0); got != tc.other {
				t.Errorf("For(DescribeRegions,0) = %v, want %v", got, tc.other)
			}
		})
	}
}

func TestExampleFile(t *testing.T) {
	m, err := latency.Parse(filepath.Join("testdata", "slow_launch.json"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := latency.Parse(filepath.Join("testdata", "slow_launch.json"))
	for n := 0; n < 5; n++ {
		d := m.For("CreateFleet", 4)
		if d < 7200*time.Millisecond || d > 9020*time.Millisecond {
			t.Errorf("CreateFleet(4) = %v, want 8.2s ±10%%", d)
		}
		if d2 := again.For("CreateFleet", 4); d2 != d {
			t.Errorf("seed 7 not reproducible: %v vs %v", d, d2)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"none", "aws", "aws,x10", "aws,x0.1,seed=3,jitter=0.5", "aws,x1e9", "x", ",", "aws,jitter=NaN", "aws,xNaN", "aws,xInf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if strings.ContainsRune(spec, os.PathSeparator) || strings.Contains(spec, ".json") {
			t.Skip("file paths are not fuzzed")
		}
		m, err := latency.Parse(spec)
		if err != nil {
			return
		}
		for _, n := range []int{0, 1, 1000, 1 << 30} {
			if d := m.For("CreateFleet", n); d < 0 || d > 24*time.Hour {
				t.Fatalf("Parse(%q).For(CreateFleet,%d) = %v, want within [0, 24h]", spec, n, d)
			}
		}
	})
}
