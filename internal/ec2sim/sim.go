// Package ec2sim is an EC2 emulator that speaks the EC2 Query protocol as the AWS SDKs do:
// CreateFleet (instant), RunInstances, TerminateInstances, tags, the Describe calls our
// plugin uses, finite capacity pools, spot interruptions, injected faults, throttling and
// latency. It is an http.Handler: the EC2 API at "/", a JSON admin API under "/ec2sim/".
package ec2sim

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
)

// LatencyModel gives the time an action takes; latency.Model satisfies it.
type LatencyModel interface {
	For(action string, n int) time.Duration
}

// Throttler decides whether a call passes EC2's token buckets; *throttle.Limiter satisfies it.
type Throttler interface {
	AllowCall(c throttle.Call) bool
}

// Options configure a Sim. The zero value is usable: default world, real clock, no
// latency, no throttling, instances running at once and terminated at once.
type Options struct {
	World *World           // nil: DefaultWorld()
	Now   func() time.Time // nil: time.Now
	// Sleep applies latency (model and injected faults). nil: a real timer that ends early
	// when the request's context is cancelled. Tests with an injected clock pass their own.
	Sleep func(ctx context.Context, d time.Duration) error

	BootDelay           time.Duration // pending -> running
	ShutdownDelay       time.Duration // shutting-down -> terminated
	TerminatedRetention time.Duration // terminated instances stay visible this long; 0 means 1h
	DefaultNotice       time.Duration // spot interruption notice when the admin call gives none; 0 means 2m

	Latency  LatencyModel // nil: no latency
	Throttle Throttler    // nil: no throttling; one limiter serves all regions (Call.Region tells them apart)

	// Credentials, when non-empty, makes the Sim verify SigV4 signatures (access key -> secret).
	Credentials map[string]string

	// OnLaunch and OnTerminate are called, each in its own goroutine, when an instance
	// becomes running and when it becomes terminated.
	OnLaunch    func(InstanceInfo)
	OnTerminate func(InstanceInfo)

	Logger    *slog.Logger
	Seed      uint64 // seeds ids and fault draws; 0 picks one from the clock
	AccountID string // ownerId in responses; default 123456789012
}

// Sim is the emulator. Safe for concurrent use.
type Sim struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	rng      *rand.Rand
	world    *World
	regions  map[string]*regionState
	types    map[string]InstanceTypeSpec
	typeList []InstanceTypeSpec // catalogTypes(world): DescribeInstanceTypes order
	pools    map[poolKey]*pool
	events   eventHeap
	seq      uint64
	counters map[string]*ActionCounters
	faults   map[string]*Fault
}

type poolKey struct{ InstanceType, AZ, Lifecycle string }

type pool struct{ capacity, used int }

// New builds a Sim from options.
func New(opts Options) *Sim {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = realSleep
	}
	if opts.TerminatedRetention == 0 {
		opts.TerminatedRetention = time.Hour
	}
	if opts.DefaultNotice == 0 {
		opts.DefaultNotice = 2 * time.Minute
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.World == nil {
		opts.World = DefaultWorld()
	}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(opts.Now().UnixNano())
	}
	s := &Sim{opts: opts, log: opts.Logger, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s.resetLocked()
	return s
}

func realSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resetLocked rebuilds every region from the world and forgets instances, counters and faults.
func (s *Sim) resetLocked() {
	w := s.opts.World
	s.world = w
	s.typeList = catalogTypes(w.InstanceTypes)
	s.types = make(map[string]InstanceTypeSpec, len(s.typeList))
	for _, t := range s.typeList {
		s.types[t.Name] = t
	}
	s.pools = make(map[poolKey]*pool)
	for _, p := range w.Capacity {
		s.pools[poolKey{p.InstanceType, p.AvailabilityZone, p.Lifecycle}] = &pool{capacity: p.Capacity}
	}
	s.regions = make(map[string]*regionState, len(w.Regions))
	for name, spec := range w.Regions {
		s.regions[name] = newRegionState(name, spec)
	}
	s.events = nil
	s.counters = make(map[string]*ActionCounters)
	s.faults = make(map[string]*Fault)
}

func (s *Sim) poolLocked(k poolKey) *pool {
	p := s.pools[k]
	if p == nil {
		p = &pool{capacity: s.world.DefaultCapacity}
		s.pools[k] = p
	}
	return p
}

// hexID makes "prefix" + n lowercase hex digits.
func (s *Sim) hexID(prefix string, n int) string {
	const hexdigits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = hexdigits[s.rng.IntN(16)]
	}
	return prefix + string(b)
}

func (s *Sim) uuid() string {
	h := s.hexID("", 32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// ---- regions, subnets, templates ----

type regionState struct {
	name      string
	spec      *RegionSpec
	azs       map[string]AZSpec
	subnets   map[string]*subnet
	subnetIDs []string
	templates []*launchTemplate
	byID      map[string]*instance
	order     []*instance // by seq; removed instances are compacted away
	tokens    map[string]tokenEntry
}

type subnet struct {
	spec   SubnetSpec
	first  uint32 // first assignable address (network + 4: AWS reserves the first four)
	last   uint32 // last assignable (broadcast - 1: AWS reserves the last)
	next   uint32
	used   map[uint32]bool
	prefix netip.Prefix
}

type launchTemplate struct {
	id, name       string
	defaultVersion int
	versions       []TemplateVersion
	created        time.Time
}

type tokenEntry struct {
	fingerprint string
	body        []byte
}

func newRegionState(name string, spec *RegionSpec) *regionState {
	r := &regionState{name: name, spec: spec, azs: map[string]AZSpec{}, subnets: map[string]*subnet{},
		byID: map[string]*instance{}, tokens: map[string]tokenEntry{}}
	for _, az := range spec.AvailabilityZones {
		r.azs[az.Name] = az
	}
	for _, sp := range spec.Subnets {
		p, err := netip.ParsePrefix(sp.CIDR)
		if err != nil {
			continue // Validate reports it
		}
		p = p.Masked()
		base := ip4u(p.Addr())
		size := uint32(1) << (32 - p.Bits())
		r.subnets[sp.ID] = &subnet{spec: sp, prefix: p, first: base + 4, last: base + size - 2, next: base + 4, used: map[uint32]bool{}}
		r.subnetIDs = append(r.subnetIDs, sp.ID)
	}
	for _, lt := range spec.LaunchTemplates {
		dv := lt.DefaultVersion
		if dv == 0 {
			dv = 1
		}
		r.templates = append(r.templates, &launchTemplate{id: lt.ID, name: lt.Name, defaultVersion: dv, versions: append([]TemplateVersion(nil), lt.Versions...)})
	}
	return r
}

func ip4u(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u2ip(u uint32) string {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}).String()
}

func (sn *subnet) free() int { return int(sn.last-sn.first+1) - len(sn.used) }

// allocate returns the next free address, cycling through the subnet so that a released
// address is reused as late as possible.
func (sn *subnet) allocate() (string, bool) {
	if sn.free() <= 0 {
		return "", false
	}
	for {
		u := sn.next
		sn.next++
		if sn.next > sn.last {
			sn.next = sn.first
		}
		if !sn.used[u] {
			sn.used[u] = true
			return u2ip(u), true
		}
	}
}

func (sn *subnet) release(ip string) {
	if a, err := netip.ParseAddr(ip); err == nil {
		delete(sn.used, ip4u(a))
	}
}

func privateDNS(region, ip string) string {
	host := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + region + ".compute.internal"
}

// ---- instances and their lifecycle ----

// Instance states with EC2's codes.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

var stateCodes = map[string]int{StatePending: 0, StateRunning: 16, StateShuttingDown: 32, StateTerminated: 48}

// State reasons as EC2 reports them (StateReason code and message).
const (
	ReasonUserShutdown = "Client.UserInitiatedShutdown"
	ReasonSpot         = "Server.SpotInstanceTermination"
)

var reasonMessages = map[string]string{
	ReasonUserShutdown: "Client.UserInitiatedShutdown: User initiated shutdown",
	ReasonSpot:         "Server.SpotInstanceTermination: Spot instance termination",
}

type instance struct {
	seq                          uint64
	id, region, itype, image     string
	az, subnet, ip, dns          string
	lifecycle, reservation       string
	clientToken, spotRequestID   string
	ltID, ltName, ltVersion      string
	metadataTags                 bool
	httpTokens                   string
	launch, runningAt            time.Time
	shutdownAt                   time.Time // zero: not terminating
	reasonCode, transitionReason string
	spotAction                   time.Time // zero: no interruption notice
	tags                         map[string]string
	ranOnLaunch, done, removed   bool
	events                       []*schedEvent // scheduled events (health.go)
	instCheck, sysCheck          check         // status checks (health.go)
	console                      []byte        // console output set through SetConsoleOutput (console.go)
	consoleAt                    time.Time     // when it was set
}

func (in *instance) terminatedAt(shutdownDelay time.Duration) time.Time {
	return in.shutdownAt.Add(shutdownDelay)
}

func (in *instance) state(now time.Time, shutdownDelay time.Duration) string {
	switch {
	case !in.shutdownAt.IsZero() && !now.Before(in.terminatedAt(shutdownDelay)):
		return StateTerminated
	case !in.shutdownAt.IsZero() && !now.Before(in.shutdownAt):
		return StateShuttingDown
	case !now.Before(in.runningAt):
		return StateRunning
	}
	return StatePending
}

// InstanceInfo is an instance as the admin API and hooks see it.
type InstanceInfo struct {
	Region           string            `json:"Region"`
	InstanceID       string            `json:"InstanceId"`
	InstanceType     string            `json:"InstanceType"`
	ImageID          string            `json:"ImageId"`
	AvailabilityZone string            `json:"AvailabilityZone"`
	SubnetID         string            `json:"SubnetId"`
	PrivateIP        string            `json:"PrivateIpAddress"`
	PrivateDNSName   string            `json:"PrivateDnsName"`
	Lifecycle        string            `json:"Lifecycle"` // on-demand or spot
	State            string            `json:"State"`
	StateReason      string            `json:"StateReason,omitempty"`
	LaunchTime       time.Time         `json:"LaunchTime"`
	LaunchTemplateID string            `json:"LaunchTemplateId,omitempty"`
	MetadataTags     bool              `json:"InstanceMetadataTags"`
	SpotActionTime   *time.Time        `json:"SpotActionTime,omitempty"`
	Tags             map[string]string `json:"Tags"`
	Events           []EventInfo       `json:"Events,omitempty"`
	InstanceStatus   string            `json:"InstanceStatus"` // status checks, as DescribeInstanceStatus says
	SystemStatus     string            `json:"SystemStatus"`
}

func (s *Sim) infoLocked(in *instance, now time.Time) InstanceInfo {
	tags := make(map[string]string, len(in.tags))
	for k, v := range in.tags {
		tags[k] = v
	}
	info := InstanceInfo{Region: in.region, InstanceID: in.id, InstanceType: in.itype, ImageID: in.image,
		AvailabilityZone: in.az, SubnetID: in.subnet, PrivateIP: in.ip, PrivateDNSName: in.dns,
		Lifecycle: in.lifecycle, State: in.state(now, s.opts.ShutdownDelay), LaunchTime: in.launch,
		LaunchTemplateID: in.ltID, MetadataTags: in.metadataTags, Tags: tags}
	if !in.shutdownAt.IsZero() && !now.Before(in.shutdownAt) {
		info.StateReason = in.reasonCode
	}
	if !in.spotAction.IsZero() {
		t := in.spotAction
		info.SpotActionTime = &t
	}
	info.Events = s.eventInfosLocked(in, now)
	running := info.State == StateRunning
	info.InstanceStatus, info.SystemStatus = in.instCheck.summary(running), in.sysCheck.summary(running)
	return info
}

// ---- timed events: running/terminated hooks, capacity and IP release, retention ----

type eventKind int

const (
	evRunning eventKind = iota
	evTerminated
	evRemove
	evScheduledStop // a retirement or stop event's date (health.go)
)

type event struct {
	at   time.Time
	seq  uint64
	kind eventKind
	in   *instance
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (s *Sim) schedule(at time.Time, kind eventKind, in *instance) {
	s.seq++
	heap.Push(&s.events, event{at: at, seq: s.seq, kind: kind, in: in})
}

// hookCall is a hook to run after the lock is released.
type hookCall struct {
	fn   func(InstanceInfo)
	info InstanceInfo
}

// advanceLocked applies every event due by now and returns the hooks to run.
func (s *Sim) advanceLocked(now time.Time) []hookCall {
	var calls []hookCall
	for len(s.events) > 0 && !s.events[0].at.After(now) {
		e := heap.Pop(&s.events).(event)
		in := e.in
		switch e.kind {
		case evRunning:
			if in.ranOnLaunch || in.done || in.state(now, s.opts.ShutdownDelay) == StatePending {
				continue
			}
			in.ranOnLaunch = true
			if !in.shutdownAt.IsZero() && !now.Before(in.shutdownAt) {
				continue // terminated before it ever ran
			}
			if s.opts.OnLaunch != nil {
				calls = append(calls, hookCall{s.opts.OnLaunch, s.infoLocked(in, now)})
			}
		case evTerminated:
			if in.done || in.shutdownAt.IsZero() || now.Before(in.terminatedAt(s.opts.ShutdownDelay)) {
				continue
			}
			in.done = true
			s.poolLocked(poolKey{in.itype, in.az, in.lifecycle}).used--
			r := s.regions[in.region]
			if sn := r.subnets[in.subnet]; sn != nil {
				sn.release(in.ip)
			}
			if s.opts.OnTerminate != nil {
				calls = append(calls, hookCall{s.opts.OnTerminate, s.infoLocked(in, now)})
			}
			s.schedule(in.terminatedAt(s.opts.ShutdownDelay).Add(s.opts.TerminatedRetention), evRemove, in)
		case evScheduledStop:
			s.scheduledStopLocked(in, e.at)
		case evRemove:
			if in.removed {
				continue
			}
			in.removed = true
			r := s.regions[in.region]
			delete(r.byID, in.id)
			r.compact()
		}
	}
	return calls
}

// compact drops removed instances from the ordered list once they are a good share of it.
func (r *regionState) compact() {
	removed := 0
	for _, in := range r.order {
		if in.removed {
			removed++
		}
	}
	if removed*4 < len(r.order) && removed < 1024 {
		return
	}
	kept := r.order[:0]
	for _, in := range r.order {
		if !in.removed {
			kept = append(kept, in)
		}
	}
	clear(r.order[len(kept):])
	r.order = kept
}

func runHooks(calls []hookCall) {
	for _, c := range calls {
		go c.fn(c.info)
	}
}

// Advance applies every state change due by the Sim's clock (hooks, capacity and address
// release, retention). Requests do this themselves; call it when the clock moved without
// requests (tests), or let Run do it periodically.
func (s *Sim) Advance() {
	s.mu.Lock()
	calls := s.advanceLocked(s.opts.Now())
	s.mu.Unlock()
	runHooks(calls)
}

// Run calls Advance every interval until ctx ends.
func (s *Sim) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Advance()
		}
	}
}

// terminateLocked starts shutting an instance down at `at` with reason; no-op if it is already
// shutting down no later than that.
func (s *Sim) terminateLocked(in *instance, at time.Time, reason string) {
	if !in.shutdownAt.IsZero() && !in.shutdownAt.After(at) {
		return
	}
	in.shutdownAt = at
	in.reasonCode = reason
	if reason == ReasonUserShutdown {
		in.transitionReason = fmt.Sprintf("User initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
	} else {
		in.transitionReason = "Service initiated (" + at.UTC().Format("2006-01-02 15:04:05 MST") + ")"
	}
	s.schedule(in.terminatedAt(s.opts.ShutdownDelay), evTerminated, in)
}

// launchSpec is one group of identical instances to launch.
type launchSpec struct {
	region       *regionState
	itype, image string
	subnet       *subnet
	lifecycle    string
	tmpl         *launchTemplate
	tmplVersion  string
	version      TemplateVersion
	tags         map[string]string
	clientToken  string
	reservation  string
}

// launchLocked creates n instances (capacity and addresses must have been checked).
func (s *Sim) launchLocked(now time.Time, ls launchSpec, n int) []*instance {
	out := make([]*instance, 0, n)
	r := ls.region
	for range n {
		ip, ok := ls.subnet.allocate()
		if !ok {
			break
		}
		s.seq++
		in := &instance{seq: s.seq, id: s.hexID("i-", 17), region: r.name, itype: ls.itype, image: ls.image,
			az: ls.subnet.spec.AvailabilityZone, subnet: ls.subnet.spec.ID, ip: ip, dns: privateDNS(r.name, ip),
			lifecycle: ls.lifecycle, reservation: ls.reservation, clientToken: ls.clientToken,
			launch: now, runningAt: now.Add(s.opts.BootDelay), tags: map[string]string{},
			metadataTags: ls.version.InstanceMetadataTags == "enabled", httpTokens: ls.version.HTTPTokens}
		if in.httpTokens == "" {
			in.httpTokens = "optional"
		}
		if ls.tmpl != nil {
			in.ltID, in.ltName, in.ltVersion = ls.tmpl.id, ls.tmpl.name, ls.tmplVersion
			in.tags["aws:ec2launchtemplate:id"] = ls.tmpl.id
			in.tags["aws:ec2launchtemplate:version"] = ls.tmplVersion
		}
		if ls.lifecycle == "spot" {
			in.spotRequestID = s.hexID("sir-", 8)
		}
		for k, v := range ls.tags {
			in.tags[k] = v
		}
		if _, dup := r.byID[in.id]; dup {
			continue
		}
		r.byID[in.id] = in
		r.order = append(r.order, in)
		s.poolLocked(poolKey{in.itype, in.az, in.lifecycle}).used++
		s.schedule(in.runningAt, evRunning, in)
		out = append(out, in)
	}
	return out
}

// available is what a pool can still launch, also bounded by free addresses in the subnet.
func (s *Sim) availableLocked(itype, lifecycle string, sn *subnet) int {
	p := s.poolLocked(poolKey{itype, sn.spec.AvailabilityZone, lifecycle})
	return max(0, min(p.capacity-p.used, sn.free()))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// errorf makes a query error with EC2's status for the code.
func errorf(code, format string, args ...any) *query.Error {
	return query.NewError(code, fmt.Sprintf(format, args...))
}

var _ http.Handler = (*Sim)(nil)
