// Package throttle emulates EC2's API throttling: token buckets for request rates (one bucket
// per API action, sized by the action's category) and for resource rates (instances launched,
// instances terminated, ...). See AWS for the documented values.
package throttle

import (
	"math"
	"sync"
	"time"
)

// Bucket is a token bucket: it holds at most Capacity tokens, starts full and gains
// RefillPerSecond tokens per second, continuously.
type Bucket struct{ Capacity, RefillPerSecond float64 }

// Config says which buckets an action draws from.
type Config struct {
	// Request holds request-bucket sizes per class, as returned by Classify. Every action gets
	// its own bucket of its class's size (EC2 evaluates each API individually). An action whose
	// class has no entry is not request-limited.
	Request map[string]Bucket
	// Classify maps an action to its class; nil means the class is the action name itself.
	Classify func(action string) string
	// Resource holds resource-bucket sizes keyed by action (after ResourceKey). A call with N
	// resources takes N tokens. An action without an entry is not resource-limited.
	Resource map[string]Bucket
	// ResourceKey maps an action to the resource bucket it draws from, so actions can share one
	// (CreateFleet and RunInstances both launch instances). nil means the action name.
	ResourceKey func(action string) string
	// Unfiltered lists the non-mutating actions that use the ClassUnfilteredNonMutating bucket
	// size (and a bucket separate from their filtered calls) when called with Call.Unfiltered.
	Unfiltered map[string]bool
}

// Call is one API request: its action, the resources it involves (instances launched for
// RunInstances/CreateFleet, terminated for TerminateInstances; 0 otherwise), whether it was made
// without a filter and without pagination, and the Region (EC2 throttles per account and Region;
// "" is fine when a Limiter serves one Region).
type Call struct {
	Action     string
	N          int
	Unfiltered bool
	Region     string
}

// Never is what MinDuration returns when a call can never pass (it needs more resource tokens
// than its bucket holds, or a bucket that does not refill is empty).
const Never = time.Duration(math.MaxInt64)

// epsilon absorbs float rounding in refill arithmetic so that a call due at t passes at t.
const epsilon = 1e-9

// Limiter applies a Config. It is safe for concurrent use.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	buckets map[bucketKey]*level
}

type bucketKey struct {
	region, name string
	resource     bool
}

// level is a bucket's fill at a moment.
type level struct {
	tokens float64
	at     time.Time
}

// New returns a Limiter with full buckets. now is the clock; nil means time.Now.
func New(cfg Config, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{cfg: cfg, now: now, buckets: make(map[bucketKey]*level)}
}

// Allow takes one request token for action and n resource tokens (instances launched for
// RunInstances/CreateFleet, terminated for TerminateInstances; 0 otherwise). ok=false means
// answer RequestLimitExceeded; nothing is taken then.
func (l *Limiter) Allow(action string, n int) (ok bool) {
	return l.AllowCall(Call{Action: action, N: n})
}

// AllowCall is Allow with the call's filter/pagination flag and Region.
func (l *Limiter) AllowCall(c Call) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var take [2]struct {
		lv   *level
		need float64
	}
	k := 0
	for _, r := range l.cfg.routes(c) {
		lv := l.buckets[r.key]
		if lv == nil {
			lv = &level{tokens: r.bucket.Capacity, at: now}
			l.buckets[r.key] = lv
		}
		lv.refill(r.bucket, now)
		if lv.tokens+epsilon < r.need {
			return false
		}
		take[k].lv, take[k].need = lv, r.need
		k++
	}
	for _, t := range take[:k] {
		t.lv.tokens = math.Max(0, t.lv.tokens-t.need)
	}
	return true
}

func (lv *level) refill(b Bucket, now time.Time) {
	if d := now.Sub(lv.at).Seconds(); d > 0 {
		lv.tokens = math.Min(b.Capacity, lv.tokens+d*b.RefillPerSecond)
		lv.at = now
	}
}

// route is one bucket a call draws from and how many tokens it needs there.
type route struct {
	key    bucketKey
	bucket Bucket
	need   float64
}

// routes returns the (at most two) buckets c draws from: its request bucket and, when it
// involves resources, its resource bucket.
func (cfg Config) routes(c Call) []route {
	out := make([]route, 0, 2)
	class := c.Action
	if cfg.Classify != nil {
		class = cfg.Classify(c.Action)
	}
	name := c.Action
	if c.Unfiltered && cfg.Unfiltered[c.Action] {
		class = ClassUnfilteredNonMutating
		name = c.Action + " (unfiltered)"
	}
	if b, ok := cfg.Request[class]; ok {
		out = append(out, route{key: bucketKey{region: c.Region, name: name}, bucket: b, need: 1})
	}
	if c.N > 0 {
		rk := c.Action
		if cfg.ResourceKey != nil {
			rk = cfg.ResourceKey(c.Action)
		}
		if b, ok := cfg.Resource[rk]; ok {
			out = append(out, route{key: bucketKey{region: c.Region, name: rk, resource: true}, bucket: b, need: float64(c.N)})
		}
	}
	return out
}

// MinDuration is the lower bound the buckets allow for a sequence of calls: given calls in
// order, each made as soon as the previous one passed and its buckets allow, starting with full
// buckets at time 0, the earliest time the last can pass. It returns Never if some call can never
// pass.
func (cfg Config) MinDuration(calls []Call) time.Duration {
	type state struct{ tokens, at float64 }
	buckets := make(map[bucketKey]*state)
	t := 0.0 // seconds
	for _, c := range calls {
		rs := cfg.routes(c)
		// When can every bucket serve this call?
		for _, r := range rs {
			st := buckets[r.key]
			if st == nil {
				st = &state{tokens: r.bucket.Capacity, at: 0}
				buckets[r.key] = st
			}
			if r.need > r.bucket.Capacity+epsilon {
				return Never
			}
			have := math.Min(r.bucket.Capacity, st.tokens+(t-st.at)*r.bucket.RefillPerSecond)
			if have+epsilon < r.need {
				if r.bucket.RefillPerSecond <= 0 {
					return Never
				}
				// Refill is linear up to capacity; need <= capacity, so this is exact.
				t = math.Max(t, st.at+(r.need-st.tokens)/r.bucket.RefillPerSecond)
			}
		}
		for _, r := range rs {
			st := buckets[r.key]
			st.tokens = math.Max(0, math.Min(r.bucket.Capacity, st.tokens+(t-st.at)*r.bucket.RefillPerSecond)-r.need)
			st.at = t
		}
	}
	d := math.Ceil(t * 1e9)
	if d >= math.MaxInt64 {
		return Never
	}
	return time.Duration(d)
}
