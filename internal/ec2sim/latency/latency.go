// Package latency models how long EC2 API calls take, so the emulator can answer as slowly as
// EC2 would.
//
// AWS publishes no latency figures for the EC2 API. The AWS model is therefore a model, not a
// measurement: its shapes come from how the operations are documented to behave and from
// commonly reported client-side timings, and they are meant to put the right operation on the
// critical path, not to predict milliseconds:
//   - CreateFleet of type instant is documented as a synchronous one-time request that makes
//     one attempt to launch the capacity and returns the launched instances and the errors, so
//     its answer waits for placement across the requested pools: a few seconds, plus a little
//     per instance. (ParallelCluster's PR "Increase launch instance TPS when using CreateFleet",
//     aws-parallelcluster-node #540, reports launch round trips of about 3 s once their polling
//     overhead was removed.)
//   - RunInstances returns as soon as instances are accepted in the "pending" state: about 1-2 s.
//   - Describe* and CreateTags are metadata operations: tens of milliseconds, growing with the
//     number of instances returned or tagged.
//   - TerminateInstances returns once the instances are "shutting-down": hundreds of ms.
//
// Jitter, when set, multiplies each duration by a uniform factor in [1-j, 1+j] drawn from a
// seeded generator, so a run is reproducible given the seed and the order of calls.
package latency

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Term is one action's latency: Base plus PerInstance for every instance involved.
type Term struct {
	Base        time.Duration
	PerInstance time.Duration
}

// Model gives a latency per action. The zero Model is None. Models are values; copies share the
// jitter generator, so one sequence of draws serves the whole emulator. Safe for concurrent use.
type Model struct {
	terms   map[string]Term
	def     Term // for actions without a term
	scale   float64
	jitter  float64
	seed    uint64
	rng     *lockedRand
	enabled bool
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) float() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// None is the model with no latency at all.
func None() Model { return Model{} }

// maxDuration caps For so that absurd scales cannot overflow.
const maxDuration = 24 * time.Hour

// DefaultSeed is the jitter seed AWS and Parse use unless told otherwise.
const DefaultSeed = 1

// AWS is a model shaped like EC2's (see the package comment for what it is based on): CreateFleet
// instant takes seconds because it waits for the launch, RunInstances about 1-2 s,
// Describe*/CreateTags tens of milliseconds, all growing with the number of instances. Jitter is
// ±20% with DefaultSeed.
func AWS() Model {
	return Model{
		terms: map[string]Term{
			"CreateFleet":             {Base: 2500 * time.Millisecond, PerInstance: 25 * time.Millisecond},
			"RunInstances":            {Base: 1200 * time.Millisecond, PerInstance: 20 * time.Millisecond},
			"TerminateInstances":      {Base: 300 * time.Millisecond, PerInstance: 2 * time.Millisecond},
			"DescribeInstances":       {Base: 60 * time.Millisecond, PerInstance: 500 * time.Microsecond},
			"DescribeInstanceStatus":  {Base: 50 * time.Millisecond, PerInstance: 300 * time.Microsecond},
			"DescribeLaunchTemplates": {Base: 40 * time.Millisecond},
			"DescribeSubnets":         {Base: 40 * time.Millisecond},
			"DescribeInstanceTypes":   {Base: 80 * time.Millisecond},
			"CreateTags":              {Base: 40 * time.Millisecond, PerInstance: 1 * time.Millisecond},
			"DeleteTags":              {Base: 40 * time.Millisecond, PerInstance: 1 * time.Millisecond},
		},
		def:     Term{Base: 50 * time.Millisecond},
		scale:   1,
		jitter:  0.2,
		seed:    DefaultSeed,
		rng:     newRand(DefaultSeed),
		enabled: true,
	}
}

func newRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// WithScale returns m with every duration multiplied by f (f >= 0).
func (m Model) WithScale(f float64) Model {
	m.scale = f
	return m
}

// WithJitter returns m with jitter fraction j in [0, 1): durations vary uniformly by ±j.
func (m Model) WithJitter(j float64) Model {
	m.jitter = j
	return m
}

// WithSeed returns m with a fresh jitter generator seeded with seed.
func (m Model) WithSeed(seed uint64) Model {
	m.seed = seed
	m.rng = newRand(seed)
	return m
}

// For is the latency of action involving n instances (launched, described, terminated, tagged).
func (m Model) For(action string, n int) time.Duration {
	if !m.enabled {
		return 0
	}
	t, ok := m.terms[action]
	if !ok {
		t = m.def
	}
	if n < 0 {
		n = 0
	}
	d := (float64(t.Base) + float64(n)*float64(t.PerInstance)) * m.scale
	if m.jitter > 0 && m.rng != nil {
		d *= 1 + m.jitter*(2*m.rng.float()-1)
	}
	switch {
	case d <= 0 || math.IsNaN(d):
		return 0
	case d >= float64(maxDuration):
		return maxDuration
	}
	return time.Duration(d)
}

// Parse reads a latency spec: "none", "aws", "aws" followed by comma-separated options
// ("x10" or "x0.5" to scale, "seed=N", "jitter=F"), or the path of a JSON file:
//
//	{"default": {"base": "50ms"},
//	 "actions": {"CreateFleet": {"base": "3s", "perInstance": "20ms"}},
//	 "scale": 1, "jitter": 0.1, "seed": 7}
//
// A JSON file may also be followed by options ("/path/lat.json,x10").
func Parse(spec string) (Model, error) {
	parts := strings.Split(strings.TrimSpace(spec), ",")
	var m Model
	switch base := strings.TrimSpace(parts[0]); {
	case base == "none" || base == "":
		if len(parts) > 1 {
			return Model{}, fmt.Errorf("latency spec %q: %q takes no options", spec, base)
		}
		return None(), nil
	case base == "aws":
		m = AWS()
	case strings.HasSuffix(base, ".json") || strings.ContainsRune(base, os.PathSeparator):
		var err error
		if m, err = loadFile(base); err != nil {
			return Model{}, err
		}
	default:
		return Model{}, fmt.Errorf("latency spec %q: want none, aws, aws,x10 or a JSON file path", spec)
	}
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		switch {
		case strings.HasPrefix(opt, "x"):
			f, err := strconv.ParseFloat(opt[1:], 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > 1e6 {
				return Model{}, fmt.Errorf("latency spec %q: scale %q: want x followed by a number in [0, 1e6], e.g. x10", spec, opt)
			}
			m = m.WithScale(f)
		case strings.HasPrefix(opt, "seed="):
			s, err := strconv.ParseUint(opt[len("seed="):], 10, 64)
			if err != nil {
				return Model{}, fmt.Errorf("latency spec %q: %q: want seed=<non-negative integer>", spec, opt)
			}
			m = m.WithSeed(s)
		case strings.HasPrefix(opt, "jitter="):
			j, err := strconv.ParseFloat(opt[len("jitter="):], 64)
			if err != nil || j < 0 || j >= 1 {
				return Model{}, fmt.Errorf("latency spec %q: %q: want jitter=<fraction in [0,1)>", spec, opt)
			}
			m = m.WithJitter(j)
		default:
			return Model{}, fmt.Errorf("latency spec %q: unknown option %q (want xN, seed=N or jitter=F)", spec, opt)
		}
	}
	return m, nil
}

type fileTerm struct {
	Base        string `json:"base"`
	PerInstance string `json:"perInstance"`
}

type fileModel struct {
	Default fileTerm            `json:"default"`
	Actions map[string]fileTerm `json:"actions"`
	Scale   *float64            `json:"scale"`
	Jitter  float64             `json:"jitter"`
	Seed    *uint64             `json:"seed"`
}

func loadFile(path string) (Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Model{}, fmt.Errorf("reading latency model: %w", err)
	}
	m, err := parseJSON(b)
	if err != nil {
		return Model{}, fmt.Errorf("latency model %s: %w", path, err)
	}
	return m, nil
}

func parseJSON(b []byte) (Model, error) {
	var f fileModel
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Model{}, fmt.Errorf("decoding JSON: %w", err)
	}
	def, err := f.Default.term()
	if err != nil {
		return Model{}, fmt.Errorf("default: %w", err)
	}
	m := Model{terms: make(map[string]Term, len(f.Actions)), def: def, scale: 1, enabled: true}
	for action, ft := range f.Actions {
		if m.terms[action], err = ft.term(); err != nil {
			return Model{}, fmt.Errorf("actions.%s: %w", action, err)
		}
	}
	if f.Scale != nil {
		if *f.Scale < 0 {
			return Model{}, errors.New("scale: must not be negative")
		}
		m.scale = *f.Scale
	}
	if f.Jitter < 0 || f.Jitter >= 1 {
		return Model{}, fmt.Errorf("jitter %v: want a fraction in [0,1)", f.Jitter)
	}
	m.jitter = f.Jitter
	seed := uint64(DefaultSeed)
	if f.Seed != nil {
		seed = *f.Seed
	}
	return m.WithSeed(seed), nil
}

func (ft fileTerm) term() (Term, error) {
	var t Term
	var err error
	if ft.Base != "" {
		if t.Base, err = time.ParseDuration(ft.Base); err != nil || t.Base < 0 {
			return Term{}, fmt.Errorf("base %q: want a non-negative Go duration such as 150ms", ft.Base)
		}
	}
	if ft.PerInstance != "" {
		if t.PerInstance, err = time.ParseDuration(ft.PerInstance); err != nil || t.PerInstance < 0 {
			return Term{}, fmt.Errorf("perInstance %q: want a non-negative Go duration such as 5ms", ft.PerInstance)
		}
	}
	return t, nil
}
