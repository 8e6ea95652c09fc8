package fleet

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
)

// TagBucket is a request-token bucket: Capacity calls at once, then PerSecond calls a second.
type TagBucket struct{ Capacity, PerSecond float64 }

// CreateTagsBucket is EC2's request-token bucket for CreateTags, one per account and Region:
// 100 tokens, refilled at 10 a second. Source: "Request throttling for the Amazon EC2 API",
// request token bucket sizes and refill rates, uncategorized actions
// (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). ec2sim's model
// (internal/ec2sim/throttle.AWS) has the same numbers; a test checks that they agree.
var CreateTagsBucket = TagBucket{Capacity: 100, PerSecond: 10}

// TagOptions tune a Tagger.
type TagOptions struct {
	// PerSecond replaces the bucket's refill rate (and raises its capacity to match) when > 0;
	// +Inf sends without pacing. 0 means CreateTagsBucket: EC2's documented bucket.
	PerSecond float64
	// Parallel bounds the CreateTags calls in flight. Default 8.
	Parallel int
	Logger   *slog.Logger
}

func (o TagOptions) bucket() TagBucket {
	if o.PerSecond > 0 {
		return TagBucket{Capacity: max(CreateTagsBucket.Capacity, o.PerSecond), PerSecond: o.PerSecond}
	}
	return CreateTagsBucket
}

// TagSet is the tags of one set of instances.
type TagSet struct {
	InstanceIDs []string
	Tags        []types.Tag
}

// Retry limits of a tagging call. A throttled call is sent again once the bucket allows (it
// gives up after maxThrottles answers of RequestLimitExceeded); an instance EC2 does not know
// yet (its CreateFleet just returned: EC2's API is eventually consistent) or a 5xx/network
// failure is retried after a pause, a few times.
const (
	maxThrottles   = 20
	maxOtherTries  = 4
	firstRetryWait = 500 * time.Millisecond
	// minTagRate is the slowest a Tagger goes after repeated throttling: one call a second.
	minTagRate = 1.0
	// rateCut is what a throttled round leaves of the rate.
	rateCut = 0.5
	// tokenMargin is how much more than one token the model must hold before a call is sent
	// once the burst is spent: calls sent on time can still arrive closer together than the
	// refill (network, a loaded head node), and half a token (50 ms at 10 a second, once) costs
	// less than the slow-down a throttled answer starts.
	tokenMargin = 0.5
)

// Tagger sends CreateTags calls for one account and Region at the rate EC2's CreateTags bucket
// allows: a burst of its capacity, then its refill rate. Calls go in node order (the natural
// order of their Name tag: node-2 before node-10), the order Slurm starts the nodes, so the
// first to boot are the first to find their names; sets added later with a lower order are sent
// before earlier ones still waiting. When EC2 throttles anyway (another caller shares the
// account's bucket, or it was not full, or calls sent on time arrived close together), the Tagger
// empties its model of the bucket and halves its rate, then recovers toward the documented rate
// by a tenth of it with each call that passes (a lone throttle costs about a quarter second).
//
// A Tagger retries throttled calls itself (the SDK's retries are off for its calls): the SDK's
// adaptive mode would slow every other call of the client, and its backoff overshoots the
// moment the bucket has a token again.
type Tagger struct {
	api    EC2API
	region string
	bucket TagBucket
	log    *slog.Logger
	wake   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	pending  jobHeap
	delayed  []*tagJob          // waiting for a retry time
	queued   map[string]*tagJob // instance id -> its waiting single-instance job
	sent     map[string]string  // instance id -> the tags sent (or in flight) for it alone
	seq      int                // order of adding, the tie-break
	inflight int                // calls in flight
	closed   bool               // no more sets
	tokens   float64            // the bucket as we believe EC2 holds it
	at       time.Time          // when tokens was computed
	rate     float64            // refill rate we believe we have (lowered when throttled)
	lastCut  time.Time          // when rate was last lowered
	start    time.Time          // first call
	calls    int                // calls sent
	throttle int                // RequestLimitExceeded answers
	failed   []string           // ids whose tagging failed for good
	errs     []error
	tagged   map[string]struct{} // ids tagged
}

type tagJob struct {
	set       TagSet
	key       string // the Name tag, for node order
	seq       int
	index     int // in the heap
	throttles int
	tries     int
	notBefore time.Time
	sentAt    time.Time
}

// NewTagger starts a Tagger for api, whose calls go to region. Add sets, then Wait.
func NewTagger(ctx context.Context, api EC2API, region string, opts TagOptions) *Tagger {
	t := &Tagger{api: api, region: region, bucket: opts.bucket(), log: opts.Logger,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		queued: map[string]*tagJob{}, sent: map[string]string{}, tagged: map[string]struct{}{}}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	// EC2's bucket is full after a quiet period; if it is not, the first throttle says so.
	t.tokens, t.at, t.rate = t.bucket.Capacity, time.Now(), t.bucket.PerSecond
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	go t.run(ctx, parallel)
	return t
}

// Add queues sets. A single-instance set whose tags are already queued or sent for that
// instance is dropped; one with other tags replaces the queued one (the newer tags win).
func (t *Tagger) Add(sets ...TagSet) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		panic("fleet: Tagger.Add after Wait")
	}
	for _, s := range sets {
		if len(s.InstanceIDs) == 0 {
			continue
		}
		for start := 0; start < len(s.InstanceIDs); start += MaxTagResources {
			part := TagSet{InstanceIDs: s.InstanceIDs[start:min(start+MaxTagResources, len(s.InstanceIDs))], Tags: s.Tags}
			t.addLocked(part)
		}
	}
	t.signal()
}

func (t *Tagger) addLocked(s TagSet) {
	key := nameOf(s.Tags)
	if len(s.InstanceIDs) == 1 {
		id, sig := s.InstanceIDs[0], tagSig(s.Tags)
		if j, ok := t.queued[id]; ok {
			if tagSig(j.set.Tags) != sig {
				j.set.Tags, j.key = s.Tags, key
				if j.index >= 0 {
					heap.Fix(&t.pending, j.index)
				}
			}
			return
		}
		if t.sent[id] == sig {
			return
		}
	}
	t.seq++
	j := &tagJob{set: s, key: key, seq: t.seq}
	if len(s.InstanceIDs) == 1 {
		t.queued[s.InstanceIDs[0]] = j
	}
	heap.Push(&t.pending, j)
}

func (t *Tagger) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// TagResult is what a Tagger did.
type TagResult struct {
	Region    string
	Tagged    int // instances
	Calls     int // CreateTags calls sent, throttled ones included
	Throttled int // RequestLimitExceeded answers
	Duration  time.Duration
	Failed    []string // instance ids whose tagging failed
	Err       error    // the first failures, joined
}

// Wait ends adding and returns once every set is tagged or has failed for good.
func (t *Tagger) Wait() TagResult {
	t.mu.Lock()
	t.closed = true
	t.signal()
	t.mu.Unlock()
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	r := TagResult{Region: t.region, Tagged: len(t.tagged), Calls: t.calls, Throttled: t.throttle, Failed: t.failed, Err: errors.Join(t.errs...)}
	if !t.start.IsZero() {
		r.Duration = time.Since(t.start)
	}
	return r
}

// run is the dispatcher: it sends the next set in node order whenever the bucket holds a token.
func (t *Tagger) run(ctx context.Context, parallel int) {
	defer close(t.done)
	var g errgroup.Group
	g.SetLimit(parallel)
	defer func() { _ = g.Wait() }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		if t.closed && t.inflight == 0 && len(t.pending) == 0 && len(t.delayed) == 0 {
			t.mu.Unlock()
			return
		}
		if err := ctx.Err(); err != nil {
			t.abandonLocked(err)
			t.mu.Unlock()
			_ = g.Wait() // calls in flight end with ctx's error and fail
			t.mu.Lock()
			t.abandonLocked(err)
			t.mu.Unlock()
			return
		}
		now := time.Now()
		wait := t.promoteLocked(now)
		var job *tagJob
		if len(t.pending) > 0 {
			t.refillLocked(now)
			if t.tokens >= 1+tokenMargin || math.IsInf(t.rate, 1) {
				job = heap.Pop(&t.pending).(*tagJob)
				t.tokens--
				t.dispatchLocked(job, now)
			} else {
				wait = minWait(wait, time.Duration(math.Ceil((1+tokenMargin-t.tokens)/t.rate*float64(time.Second))))
			}
		}
		t.mu.Unlock()
		if job != nil {
			g.Go(func() error {
				t.send(ctx, job)
				return nil
			})
			continue
		}
		if wait < 0 {
			wait = time.Hour // until woken
		}
		timer.Reset(wait)
		select {
		case <-t.wake:
		case <-timer.C:
		case <-ctx.Done():
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func minWait(a, b time.Duration) time.Duration {
	if a < 0 || b < a {
		return b
	}
	return a
}

// promoteLocked moves delayed jobs that are due into the queue and returns the wait until the
// next one is due (-1 if none).
func (t *Tagger) promoteLocked(now time.Time) time.Duration {
	wait := time.Duration(-1)
	keep := t.delayed[:0]
	for _, j := range t.delayed {
		if !j.notBefore.After(now) {
			heap.Push(&t.pending, j)
			continue
		}
		keep = append(keep, j)
		wait = minWait(wait, j.notBefore.Sub(now))
	}
	clear(t.delayed[len(keep):])
	t.delayed = keep
	return wait
}

func (t *Tagger) refillLocked(now time.Time) {
	if d := now.Sub(t.at).Seconds(); d > 0 {
		t.tokens = math.Min(t.bucket.Capacity, t.tokens+d*t.rate)
		t.at = now
	}
}

func (t *Tagger) dispatchLocked(j *tagJob, now time.Time) {
	if len(j.set.InstanceIDs) == 1 {
		id := j.set.InstanceIDs[0]
		if t.queued[id] == j {
			delete(t.queued, id)
		}
		t.sent[id] = tagSig(j.set.Tags)
	}
	if t.start.IsZero() {
		t.start = now
	}
	j.sentAt = now
	t.inflight++
	t.calls++
}

// send makes one CreateTags call and files its outcome.
func (t *Tagger) send(ctx context.Context, j *tagJob) {
	_, err := t.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: j.set.InstanceIDs, Tags: j.set.Tags}, noSDKRetries)
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.signal()
	t.inflight--
	now := time.Now()
	if err == nil {
		for _, id := range j.set.InstanceIDs {
			t.tagged[id] = struct{}{}
		}
		// Recover toward the documented rate: a tenth of it for each call that passes.
		t.refillLocked(now)
		t.rate = math.Min(t.bucket.PerSecond, t.rate+t.bucket.PerSecond/10)
		return
	}
	code := ErrorCode(err)
	switch {
	case ctx.Err() != nil:
		t.failLocked(j, fmt.Errorf("tagging %d instances: %w", len(j.set.InstanceIDs), ctx.Err()))
	case ClassOf(code) == ClassThrottle:
		t.throttle++
		j.throttles++
		// EC2's bucket is empty for us now. Slow down once per throttled round: calls sent
		// before the last cut were sent at the old rate and say nothing new.
		t.refillLocked(now)
		t.tokens = 0
		if j.sentAt.After(t.lastCut) {
			t.rate = math.Max(math.Min(minTagRate, t.bucket.PerSecond), t.rate*rateCut)
			t.lastCut = now
			t.log.Debug("EC2 throttles CreateTags; slowing down", "region", t.region, "per_second", t.rate)
		}
		if j.throttles >= maxThrottles {
			t.failLocked(j, fmt.Errorf("tagging %d instances: still throttled after %d tries: %w", len(j.set.InstanceIDs), j.throttles, err))
			return
		}
		t.requeueLocked(j, time.Time{})
	case (ClassOf(code) == ClassNotFound || retryable(code)) && j.tries+1 < maxOtherTries:
		j.tries++
		t.requeueLocked(j, now.Add(firstRetryWait<<(j.tries-1)))
	default:
		t.failLocked(j, fmt.Errorf("tagging %d instances: %w", len(j.set.InstanceIDs), err))
	}
}

// noSDKRetries turns the SDK's retries off for one call: the Tagger retries itself.
func noSDKRetries(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

// retryable says whether a failure may pass when sent again: EC2's 5xx codes and failures
// without an EC2 answer (network).
func retryable(code string) bool {
	switch code {
	case "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "RequestFailed", "Timeout":
		return true
	}
	return false
}

func (t *Tagger) requeueLocked(j *tagJob, at time.Time) {
	if len(j.set.InstanceIDs) == 1 {
		id := j.set.InstanceIDs[0]
		if q, ok := t.queued[id]; ok && q != j {
			return // newer tags for this instance are queued; they replace these
		}
		delete(t.sent, id)
		t.queued[id] = j
	}
	j.index = -1
	if at.IsZero() {
		heap.Push(&t.pending, j)
		return
	}
	j.notBefore = at
	t.delayed = append(t.delayed, j)
}

func (t *Tagger) failLocked(j *tagJob, err error) {
	t.failed = append(t.failed, j.set.InstanceIDs...)
	if len(t.errs) < 3 {
		t.errs = append(t.errs, err)
	}
	if len(j.set.InstanceIDs) == 1 {
		delete(t.sent, j.set.InstanceIDs[0])
	}
}

// abandonLocked fails every set not yet sent.
func (t *Tagger) abandonLocked(err error) {
	for _, j := range append(slices.Clone([]*tagJob(t.pending)), t.delayed...) {
		t.failLocked(j, fmt.Errorf("tagging %d instances: %w", len(j.set.InstanceIDs), err))
		if len(j.set.InstanceIDs) == 1 {
			delete(t.queued, j.set.InstanceIDs[0])
		}
	}
	t.pending, t.delayed = nil, nil
}

// Taggers holds one Tagger per (region, profile), each started when its first set comes.
type Taggers struct {
	ctx  context.Context
	opts TagOptions

	mu    sync.Mutex
	m     map[[2]string]*Tagger
	order [][2]string
}

// NewTaggers returns an empty set of Taggers; ctx bounds all their calls.
func NewTaggers(ctx context.Context, opts TagOptions) *Taggers {
	return &Taggers{ctx: ctx, opts: opts, m: map[[2]string]*Tagger{}}
}

// For returns the Tagger of (region, profile), starting it with api if it has none yet.
func (ts *Taggers) For(api EC2API, region, profile string) *Tagger {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	k := [2]string{region, profile}
	if t, ok := ts.m[k]; ok {
		return t
	}
	t := NewTagger(ts.ctx, api, region, ts.opts)
	ts.m[k] = t
	ts.order = append(ts.order, k)
	return t
}

// Wait waits for every Tagger, logs what each did (a warning for failures: the nodes work
// without their Name tag, suspend and reconcile also match NodeAddr) and returns the results.
func (ts *Taggers) Wait() []TagResult {
	ts.mu.Lock()
	order := slices.Clone(ts.order)
	ts.mu.Unlock()
	log := ts.opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var out []TagResult
	for _, k := range order {
		r := ts.m[k].Wait()
		log.Info("instances tagged", "region", r.Region, "instances", r.Tagged, "calls", r.Calls, "throttled", r.Throttled,
			"seconds", fmt.Sprintf("%.2f", r.Duration.Seconds()))
		if r.Err != nil {
			log.Warn("could not tag some instances with their node names", "region", r.Region, "instances", len(r.Failed), "err", r.Err)
		}
		out = append(out, r)
	}
	return out
}

// NameSets pairs the instances one CreateFleet launched with the nodes it was for, as resume
// does once it has their addresses (ids in sorted order, nodes in the order given), and returns
// each instance's Name tag, so names can be sent as soon as CreateFleet answers.
func NameSets(nodes, ids []string) []TagSet {
	ids = slices.Sorted(slices.Values(ids))
	n := min(len(nodes), len(ids))
	out := make([]TagSet, n)
	for i := range n {
		out[i] = TagSet{InstanceIDs: []string{ids[i]}, Tags: []types.Tag{T(TagName, nodes[i])}}
	}
	return out
}

// NewTagLimiter is the pacing ApplyTags takes: EC2's CreateTags bucket (perSecond 0), or a
// refill of perSecond calls a second (tests). (Before the Tagger it returned a rate.Limiter
// paced below the bucket; callers read the same.)
func NewTagLimiter(perSecond float64) TagOptions { return TagOptions{PerSecond: perSecond} }

// ApplyTags tags every set with one Tagger and waits: the ids whose tagging failed, with the
// first errors.
func ApplyTags(ctx context.Context, api EC2API, sets []TagSet, opts TagOptions) (failed []string, err error) {
	t := NewTagger(ctx, api, "", opts)
	t.Add(sets...)
	r := t.Wait()
	return r.Failed, r.Err
}

// T builds an SDK tag.
func T(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func nameOf(tags []types.Tag) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == TagName {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// tagSig is a set of tags as one comparable string.
func tagSig(tags []types.Tag) string {
	var b strings.Builder
	for _, t := range tags {
		b.WriteString(aws.ToString(t.Key))
		b.WriteByte(0)
		b.WriteString(aws.ToString(t.Value))
		b.WriteByte(0)
	}
	return b.String()
}

// jobHeap orders jobs by node order, then by when they were added.
type jobHeap []*tagJob

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if c := NaturalCompare(h[i].key, h[j].key); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *jobHeap) Push(x any) {
	j := x.(*tagJob)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.index = -1
	return j
}

// NaturalCompare compares node names as Slurm orders a hostlist: runs of digits by their
// number (node-2 before node-10), the rest byte by byte.
func NaturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if c := cmpInt(len(ta), len(tb)); c != 0 {
				return c
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			if c := cmpInt(len(na), len(nb)); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return cmpInt(int(a[0]), int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	return cmpInt(len(a), len(b))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
