package ec2sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// Instances lists instances of a region ("" for every region) in launch order, terminated
// ones included while they are retained.
func (s *Sim) Instances(region string) []InstanceInfo {
	s.mu.Lock()
	now := s.opts.Now()
	hooks := s.advanceLocked(now)
	var out []InstanceInfo
	for _, name := range sortedKeys(s.regions) {
		if region != "" && name != region {
			continue
		}
		for _, in := range s.regions[name].order {
			if !in.removed {
				out = append(out, s.infoLocked(in, now))
			}
		}
	}
	s.mu.Unlock()
	runHooks(hooks)
	return out
}

// Instance returns one instance by id from any region.
func (s *Sim) Instance(id string) (InstanceInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.findLocked(id); in != nil {
		return s.infoLocked(in, s.opts.Now()), true
	}
	return InstanceInfo{}, false
}

// InstanceByPrivateIP returns the live (not terminated) instance holding ip.
func (s *Sim) InstanceByPrivateIP(ip string) (InstanceInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for _, r := range s.regions {
		for _, in := range r.order {
			if in.ip == ip && !in.removed && in.state(now, s.opts.ShutdownDelay) != StateTerminated {
				return s.infoLocked(in, now), true
			}
		}
	}
	return InstanceInfo{}, false
}

func (s *Sim) findLocked(id string) *instance {
	for _, r := range s.regions {
		if in := r.byID[id]; in != nil {
			return in
		}
	}
	return nil
}

// PoolInfo is one capacity pool.
type PoolInfo struct {
	InstanceType     string `json:"InstanceType"`
	AvailabilityZone string `json:"AvailabilityZone"`
	Lifecycle        string `json:"Lifecycle"`
	Capacity         int    `json:"Capacity"`
	Used             int    `json:"Used"`
}

// SetCapacity sets the size of a pool; instances already running above it keep running.
func (s *Sim) SetCapacity(instanceType, az, lifecycle string, capacity int) error {
	if lifecycle != "on-demand" && lifecycle != "spot" {
		return fmt.Errorf("set capacity: lifecycle %q must be on-demand or spot", lifecycle)
	}
	if capacity < 0 {
		return fmt.Errorf("set capacity: capacity %d must not be negative", capacity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.types[instanceType]; !ok {
		return fmt.Errorf("set capacity: instance type %q is not in the world", instanceType)
	}
	found := false
	for _, r := range s.regions {
		_, ok := r.azs[az]
		found = found || ok
	}
	if !found {
		return fmt.Errorf("set capacity: availability zone %q is not in the world", az)
	}
	s.poolLocked(poolKey{instanceType, az, lifecycle}).capacity = capacity
	return nil
}

// Pools lists the pools that were used or configured.
func (s *Sim) Pools() []PoolInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PoolInfo, 0, len(s.pools))
	for k, p := range s.pools {
		out = append(out, PoolInfo{k.InstanceType, k.AZ, k.Lifecycle, p.capacity, p.used})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.InstanceType != b.InstanceType {
			return a.InstanceType < b.InstanceType
		}
		if a.AvailabilityZone != b.AvailabilityZone {
			return a.AvailabilityZone < b.AvailabilityZone
		}
		return a.Lifecycle < b.Lifecycle
	})
	return out
}

// SpotInterrupt gives spot instances an interruption notice: IMDS shows
// spot/instance-action at once and the instances terminate with
// Server.SpotInstanceTermination after notice (0 terminates at once; negative means
// Options.DefaultNotice, 2 minutes as EC2 gives).
func (s *Sim) SpotInterrupt(ids []string, notice time.Duration) error {
	s.mu.Lock()
	now := s.opts.Now()
	if notice < 0 {
		notice = s.opts.DefaultNotice
	}
	var errs []error
	for _, id := range ids {
		in := s.findLocked(id)
		switch {
		case in == nil:
			errs = append(errs, fmt.Errorf("spot interrupt: instance %s does not exist", id))
		case in.lifecycle != "spot":
			errs = append(errs, fmt.Errorf("spot interrupt: instance %s is on-demand, not spot", id))
		case !in.shutdownAt.IsZero():
			errs = append(errs, fmt.Errorf("spot interrupt: instance %s is already terminating", id))
		default:
			in.spotAction = now.Add(notice)
			s.terminateLocked(in, now.Add(notice), ReasonSpot)
		}
	}
	hooks := s.advanceLocked(now)
	s.mu.Unlock()
	runHooks(hooks)
	return errors.Join(errs...)
}

// TerminateAsUser terminates instances as if someone else called TerminateInstances.
func (s *Sim) TerminateAsUser(ids []string) error {
	s.mu.Lock()
	now := s.opts.Now()
	var errs []error
	for _, id := range ids {
		in := s.findLocked(id)
		if in == nil {
			errs = append(errs, fmt.Errorf("terminate: instance %s does not exist", id))
			continue
		}
		s.terminateLocked(in, now, ReasonUserShutdown)
	}
	hooks := s.advanceLocked(now)
	s.mu.Unlock()
	runHooks(hooks)
	return errors.Join(errs...)
}

// Reset forgets every instance, pool change, counter and fault: back to the world file.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

// ---- JSON admin API ----

// faultJSON is Fault on the wire, with durations as Go duration strings ("250ms").
type faultJSON struct {
	Action       string  `json:"Action"`
	Rate         float64 `json:"Rate"`
	Code         string  `json:"Code,omitempty"`
	ExtraLatency string  `json:"ExtraLatency,omitempty"`
	Count        int     `json:"Count,omitempty"`
	Duration     string  `json:"Duration,omitempty"`
}

type idsJSON struct {
	InstanceIds []string `json:"InstanceIds"`
	Notice      *string  `json:"Notice,omitempty"` // spot-interrupt: Go duration, default 2m
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	reply := func(v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		if v == nil {
			v = map[string]bool{"ok": true}
		}
		_ = json.NewEncoder(w).Encode(v)
	}
	decode := func(v any) error {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("bad JSON body: %w", err)
		}
		return nil
	}
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /ec2sim/instances":
		reply(s.Instances(r.URL.Query().Get("region")), nil)
	case "GET /ec2sim/counters":
		reply(s.Counters(), nil)
	case "POST /ec2sim/counters/reset":
		s.ResetCounters()
		reply(nil, nil)
	case "POST /ec2sim/console":
		var co consoleJSON
		if err := decode(&co); err != nil {
			reply(nil, err)
			return
		}
		reply(nil, s.SetConsoleOutput(co.InstanceID, co.Output))
	case "GET /ec2sim/capacity":
		reply(s.Pools(), nil)
	case "POST /ec2sim/capacity":
		var p PoolInfo
		if err := decode(&p); err != nil {
			reply(nil, err)
			return
		}
		reply(nil, s.SetCapacity(p.InstanceType, p.AvailabilityZone, p.Lifecycle, p.Capacity))
	case "POST /ec2sim/faults":
		var f faultJSON
		if err := decode(&f); err != nil {
			reply(nil, err)
			return
		}
		lat, err1 := parseDur(f.ExtraLatency)
		dur, err2 := parseDur(f.Duration)
		if err := errors.Join(err1, err2); err != nil {
			reply(nil, err)
			return
		}
		reply(nil, s.InjectFault(Fault{Action: f.Action, Rate: f.Rate, Code: f.Code, ExtraLatency: lat, Count: f.Count, Duration: dur}))
	case "DELETE /ec2sim/faults":
		s.ClearFaults()
		reply(nil, nil)
	case "POST /ec2sim/spot-interrupt":
		var b idsJSON
		if err := decode(&b); err != nil {
			reply(nil, err)
			return
		}
		notice := time.Duration(-1)
		if b.Notice != nil {
			d, err := parseDur(*b.Notice)
			if err != nil {
				reply(nil, err)
				return
			}
			notice = d
		}
		reply(nil, s.SpotInterrupt(b.InstanceIds, notice))
	case "POST /ec2sim/terminate":
		var b idsJSON
		if err := decode(&b); err != nil {
			reply(nil, err)
			return
		}
		reply(nil, s.TerminateAsUser(b.InstanceIds))
	case "POST /ec2sim/events":
		var b eventsJSON
		if err := decode(&b); err != nil {
			reply(nil, err)
			return
		}
		reply(s.adminEvents(b))
	case "POST /ec2sim/status":
		var b statusJSON
		if err := decode(&b); err != nil {
			reply(nil, err)
			return
		}
		reply(nil, s.SetStatus(b.InstanceIds, b.InstanceStatus, b.SystemStatus))
	case "POST /ec2sim/reset":
		s.Reset()
		reply(nil, nil)
	default:
		w.WriteHeader(http.StatusNotFound)
		reply(nil, fmt.Errorf("no admin endpoint %s; see package ec2sim docs", route))
	}
}
