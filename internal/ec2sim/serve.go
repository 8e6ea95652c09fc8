package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
)

// call is one API request being served.
type call struct {
	ctx    context.Context
	action string
	p      *query.Node
	region *regionState
	now    time.Time
	reqID  string
	// n is the number of instances involved, for the latency model.
	n int
}

type handler func(s *Sim, c *call) (query.Body, error)

// actions lists the EC2 actions the Sim serves.
var actions = map[string]handler{
	"CreateFleet":                    (*Sim).createFleet,
	"RunInstances":                   (*Sim).runInstances,
	"TerminateInstances":             (*Sim).terminateInstances,
	"CreateTags":                     (*Sim).createTags,
	"DeleteTags":                     (*Sim).deleteTags,
	"DescribeInstances":              (*Sim).describeInstances,
	"DescribeTags":                   (*Sim).describeTags,
	"DescribeInstanceStatus":         (*Sim).describeInstanceStatus,
	"DescribeLaunchTemplates":        (*Sim).describeLaunchTemplates,
	"DescribeLaunchTemplateVersions": (*Sim).describeLaunchTemplateVersions,
	"CreateLaunchTemplate":           (*Sim).createLaunchTemplate,
	"DescribeSubnets":                (*Sim).describeSubnets,
	"DescribeAvailabilityZones":      (*Sim).describeAvailabilityZones,
	"DescribeInstanceTypes":          (*Sim).describeInstanceTypes,
	"DescribeSpotInstanceRequests":   (*Sim).describeSpotInstanceRequests,
	"GetConsoleOutput":               (*Sim).getConsoleOutput,
	"DescribeRegions":                (*Sim).describeRegions,
}

// credentialRE pulls access key and region from a SigV4 Authorization header.
var credentialRE = regexp.MustCompile(`Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request`)

// ServeHTTP serves the EC2 API at "/" and the admin API under "/ec2sim/".
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/ec2sim/") {
		s.serveAdmin(w, r)
		return
	}
	s.mu.Lock()
	reqID := s.uuid()
	s.mu.Unlock()
	w.Header().Set("X-Amzn-Requestid", reqID)
	// EC2's own clock, as a real endpoint's Date header is (clients compare it with theirs).
	w.Header().Set("Date", s.opts.Now().UTC().Format(http.TimeFormat))

	req, body, err := query.ReadRequest(r)
	if err != nil {
		s.fail(w, "", reqID, err)
		return
	}
	action := req.Action
	h, ok := actions[action]
	if !ok {
		s.fail(w, action, reqID, errorf("InvalidAction", "The action %s is not valid for this web service.", action))
		return
	}
	auth := r.Header.Get("Authorization")
	m := credentialRE.FindStringSubmatch(auth)
	if m == nil {
		s.fail(w, action, reqID, errorf("MissingAuthenticationToken", "Request must contain a valid (registered) AWS access key ID and a SigV4 signature."))
		return
	}
	regionName := m[3]
	if len(s.opts.Credentials) > 0 {
		if err := verifySigV4(r, body, m[1], s.opts.Credentials); err != nil {
			s.fail(w, action, reqID, err)
			return
		}
	}

	s.mu.Lock()
	now := s.opts.Now()
	hooks := s.advanceLocked(now)
	ctr := s.countersLocked(action)
	ctr.Total++
	region := s.regions[regionName]
	fault, extra := s.faultLocked(action, now)
	if fault != nil {
		ctr.Faulted++
	}
	s.mu.Unlock()
	runHooks(hooks)

	if region == nil {
		s.fail(w, action, reqID, errorf("AuthFailure", "Credential should be scoped to a valid region, not '%s'. ", regionName))
		return
	}
	if extra > 0 {
		if err := s.opts.Sleep(r.Context(), extra); err != nil {
			return
		}
	}
	if fault != nil {
		s.fail(w, action, reqID, fault)
		return
	}
	if s.opts.Throttle != nil {
		tc := throttle.Call{Action: action, N: resourceCount(action, req.Params), Region: regionName,
			Unfiltered: !req.Params.Has("Filter") && !req.Params.Has("MaxResults") && !req.Params.Has("InstanceId")}
		if !s.opts.Throttle.AllowCall(tc) {
			s.mu.Lock()
			ctr.Throttled++
			s.mu.Unlock()
			s.fail(w, action, reqID, errorf("RequestLimitExceeded", "Request limit exceeded."))
			return
		}
	}
	if dry, err := req.Params.Bool("DryRun"); err != nil || dry {
		if err == nil {
			err = query.ErrDryRun()
		}
		s.fail(w, action, reqID, err)
		return
	}

	c := &call{ctx: r.Context(), action: action, p: req.Params, region: region, reqID: reqID}
	var out []byte
	var herr error
	if tok := req.Params.String("ClientToken"); tok != "" && (action == "RunInstances" || action == "CreateFleet") {
		out, herr = s.idempotent(c, tok, h)
	} else {
		out, herr = s.invoke(c, h)
	}
	if s.opts.Latency != nil {
		if err := s.opts.Sleep(r.Context(), s.opts.Latency.For(action, c.n)); err != nil {
			return
		}
	}
	if herr != nil {
		s.fail(w, action, reqID, herr)
		return
	}
	query.WriteXML(w, http.StatusOK, out)
}

// invoke runs a handler under the lock and encodes its answer.
func (s *Sim) invoke(c *call, h handler) ([]byte, error) {
	s.mu.Lock()
	c.now = s.opts.Now()
	hooks := s.advanceLocked(c.now)
	body, err := h(s, c)
	hooks = append(hooks, s.advanceLocked(c.now)...) // instances that are running at once
	s.mu.Unlock()
	runHooks(hooks)
	if err != nil {
		return nil, err
	}
	return query.EncodeResponse(c.action, c.reqID, body)
}

// idempotent answers a repeated ClientToken with the first answer (EC2 returns the same
// result and launches nothing more); a token reused with other parameters is
// IdempotentParameterMismatch.
func (s *Sim) idempotent(c *call, token string, h handler) ([]byte, error) {
	key := c.action + "\x00" + token
	fp := fingerprint(c.p)
	s.mu.Lock()
	if e, ok := c.region.tokens[key]; ok {
		s.mu.Unlock()
		if e.fingerprint != fp {
			return nil, errorf("IdempotentParameterMismatch", "The client token you provided is associated with a resource that is already deleted or with different parameters. Use a different client token.")
		}
		return e.body, nil
	}
	c.now = s.opts.Now()
	hooks := s.advanceLocked(c.now)
	body, err := h(s, c)
	hooks = append(hooks, s.advanceLocked(c.now)...)
	var out []byte
	if err == nil {
		out, err = query.EncodeResponse(c.action, c.reqID, body)
		if err == nil {
			c.region.tokens[key] = tokenEntry{fingerprint: fp, body: out}
		}
	}
	s.mu.Unlock()
	runHooks(hooks)
	return out, err
}

func fingerprint(p *query.Node) string {
	var b strings.Builder
	for _, kv := range p.Flatten() {
		if strings.HasPrefix(kv, "DryRun=") {
			continue
		}
		b.WriteString(kv)
		b.WriteByte('\n')
	}
	return b.String()
}

// resourceCount is the number of resource tokens a call takes from EC2's resource buckets.
func resourceCount(action string, p *query.Node) int {
	switch action {
	case "RunInstances":
		n, _, _ := p.Int("MaxCount")
		return n
	case "CreateFleet":
		n, _, _ := p.Int("TargetCapacitySpecification.TotalTargetCapacity")
		return n
	case "TerminateInstances":
		return len(p.List("InstanceId"))
	}
	return 0
}

func (s *Sim) fail(w http.ResponseWriter, action, reqID string, err error) {
	var qe *query.Error
	if !errors.As(err, &qe) {
		s.log.Error("ec2sim internal error", "action", action, "err", err)
		qe = errorf("InternalError", "An internal error has occurred")
	}
	if action != "" {
		s.mu.Lock()
		c := s.countersLocked(action)
		if c.Errors == nil {
			c.Errors = map[string]int{}
		}
		c.Errors[qe.Code]++
		s.mu.Unlock()
	}
	s.log.Debug("ec2sim error", "action", action, "code", qe.Code, "message", qe.Message)
	query.WriteError(w, qe, reqID)
}

// ActionCounters count the calls to one action.
type ActionCounters struct {
	Total     int            `json:"Total"`
	Throttled int            `json:"Throttled"`
	Faulted   int            `json:"Faulted"`
	Errors    map[string]int `json:"Errors,omitempty"` // by error code, throttled and faulted included
}

func (s *Sim) countersLocked(action string) *ActionCounters {
	c := s.counters[action]
	if c == nil {
		c = &ActionCounters{}
		s.counters[action] = c
	}
	return c
}

// Fault makes an action fail: each call fails with probability Rate (0..1) with Code
// (InternalError -> 500, Unavailable -> 503), and is delayed by ExtraLatency. Count > 0
// limits the number of calls affected; Duration > 0 limits the time the fault stays.
type Fault struct {
	Action       string        `json:"Action"`
	Rate         float64       `json:"Rate"`
	Code         string        `json:"Code,omitempty"`
	ExtraLatency time.Duration `json:"ExtraLatency,omitempty"`
	Count        int           `json:"Count,omitempty"`
	Duration     time.Duration `json:"Duration,omitempty"`
	until        time.Time
	used         int
}

func (s *Sim) faultLocked(action string, now time.Time) (*query.Error, time.Duration) {
	f := s.faults[action]
	if f == nil {
		f = s.faults["*"]
	}
	if f == nil {
		return nil, 0
	}
	if (!f.until.IsZero() && !now.Before(f.until)) || (f.Count > 0 && f.used >= f.Count) {
		delete(s.faults, f.Action)
		return nil, 0
	}
	f.used++
	if f.Rate > 0 && s.rng.Float64() < f.Rate {
		switch f.Code {
		case "Unavailable":
			return errorf("Unavailable", "The server is overloaded and can't handle the request."), f.ExtraLatency
		case "RequestLimitExceeded":
			return errorf("RequestLimitExceeded", "Request limit exceeded."), f.ExtraLatency
		default:
			return errorf("InternalError", "An internal error has occurred"), f.ExtraLatency
		}
	}
	return nil, f.ExtraLatency
}

// InjectFault installs f for f.Action ("*" for every action), replacing any earlier one.
func (s *Sim) InjectFault(f Fault) error {
	if f.Action == "" {
		return errors.New("fault: Action is required (an EC2 action name or *)")
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("fault: Rate %v must be between 0 and 1", f.Rate)
	}
	switch f.Code {
	case "", "InternalError", "Unavailable", "RequestLimitExceeded":
	default:
		return fmt.Errorf("fault: Code %q must be InternalError, Unavailable or RequestLimitExceeded", f.Code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Duration > 0 {
		f.until = s.opts.Now().Add(f.Duration)
	}
	s.faults[f.Action] = &f
	return nil
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*Fault{}
}

// Counters returns a copy of the per-action counters.
func (s *Sim) Counters() map[string]ActionCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ActionCounters, len(s.counters))
	for k, v := range s.counters {
		c := *v
		c.Errors = make(map[string]int, len(v.Errors))
		for ek, ev := range v.Errors {
			c.Errors[ek] = ev
		}
		out[k] = c
	}
	return out
}

// ResetCounters zeroes the counters.
func (s *Sim) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = map[string]*ActionCounters{}
}
