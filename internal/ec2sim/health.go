package ec2sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// Instance health: scheduled events and status checks, as EC2 reports them through
// DescribeInstanceStatus and the instance metadata service.
//
// What is modelled, and where it comes from:
//   - EC2 API Reference, DescribeInstanceStatus: running instances only unless IncludeAllInstances
//     is true; at most 100 explicit InstanceId; MaxResults 5..1000 and NextToken, MaxResults not
//     together with InstanceId; the filters availability-zone, availability-zone-id, event.code,
//     event.description, event.instance-event-id, event.not-after, event.not-before,
//     event.not-before-deadline, instance-state-code, instance-state-name,
//     instance-status.reachability, instance-status.status, system-status.reachability and
//     system-status.status.
//   - EC2 API Reference, InstanceStatus, InstanceStatusSummary, InstanceStatusDetails and
//     InstanceStatusEvent: the answer's instanceStatusSet items carry eventsSet, instanceState,
//     systemStatus and instanceStatus; a summary's status is ok | impaired | initializing |
//     insufficient-data | not-applicable and its details hold one "reachability" check (passed |
//     failed | initializing | insufficient-data) with impairedSince, "the time when a status check
//     failed"; an event has instanceEventId, code (instance-reboot | system-reboot |
//     system-maintenance | instance-retirement | instance-stop), description, notBefore, notAfter
//     and notBeforeDeadline, and a completed event stays described for up to a week with a
//     description starting "[Completed]".
//   - EC2 User Guide, "Status checks for Amazon EC2 instances": checks run every minute; when all
//     pass the status is ok, when one fails it is impaired.
//   - EC2 User Guide, "Scheduled events for your instances": an instance scheduled for retirement
//     or stop is stopped (or terminated) by EC2 on the event's date. ec2sim has no stopped state:
//     it terminates the instance at NotBefore with state reason Server.ScheduledStop.

// Event codes of scheduled events.
const (
	EventInstanceReboot     = "instance-reboot"
	EventSystemReboot       = "system-reboot"
	EventSystemMaintenance  = "system-maintenance"
	EventInstanceRetirement = "instance-retirement"
	EventInstanceStop       = "instance-stop"
)

var eventDescriptions = map[string]string{
	EventInstanceReboot:     "Scheduled reboot of the instance",
	EventSystemReboot:       "Scheduled reboot of the host",
	EventSystemMaintenance:  "Scheduled maintenance of the host",
	EventInstanceRetirement: "The instance is running on degraded hardware",
	EventInstanceStop:       "The instance will be stopped",
}

// Status values of a status check summary and of its reachability detail.
const (
	StatusOK               = "ok"
	StatusImpaired         = "impaired"
	StatusInitializing     = "initializing"
	StatusInsufficientData = "insufficient-data"
	StatusNotApplicable    = "not-applicable"
)

// ReasonScheduledStop is the state reason of an instance EC2 stopped for a scheduled event.
const ReasonScheduledStop = "Server.ScheduledStop"

func init() {
	reasonMessages[ReasonScheduledStop] = "Server.ScheduledStop: Stopped due to scheduled retirement"
}

// schedEvent is one scheduled event of an instance.
type schedEvent struct {
	id, code, description string
	notBefore, notAfter   time.Time // notAfter may be zero
	deadline              time.Time // notBeforeDeadline, may be zero
}

// completed reports an event whose window is over (its end, or its start when it has no end).
func (e *schedEvent) completed(now time.Time) bool {
	end := e.notAfter
	if end.IsZero() {
		end = e.notBefore
	}
	return !now.Before(end)
}

func (e *schedEvent) describe(now time.Time) string {
	if e.completed(now) {
		return "[Completed] " + e.description
	}
	return e.description
}

// check is one status check; the zero value is a passing check.
type check struct {
	status string    // "" means ok
	since  time.Time // when it started failing (impaired only)
}

func (c check) summary(running bool) string {
	switch {
	case !running:
		return StatusNotApplicable
	case c.status == "":
		return StatusOK
	}
	return c.status
}

// reachability is the detail status that goes with a summary status.
func reachability(summary string) string {
	switch summary {
	case StatusOK:
		return "passed"
	case StatusImpaired:
		return "failed"
	}
	return summary // initializing, insufficient-data
}

// ---- wire shapes (element names from the SDK's deserializers) ----

type xStatusDetail struct {
	Name          string `xml:"name"`
	Status        string `xml:"status"`
	ImpairedSince string `xml:"impairedSince,omitempty"`
}

// xDetails and xEvents are pointers in their parents: encoding/xml writes an empty parent element
// for a "parent>item,omitempty" path, where EC2 leaves the element out.
type xDetails struct {
	Items []xStatusDetail `xml:"item"`
}

type xStatusSummary struct {
	Status  string    `xml:"status"`
	Details *xDetails `xml:"details,omitempty"`
}

type xEvents struct {
	Items []xStatusEvent `xml:"item"`
}

type xStatusEvent struct {
	InstanceEventID   string `xml:"instanceEventId"`
	Code              string `xml:"code"`
	Description       string `xml:"description"`
	NotBefore         string `xml:"notBefore"`
	NotAfter          string `xml:"notAfter,omitempty"`
	NotBeforeDeadline string `xml:"notBeforeDeadline,omitempty"`
}

type xInstanceStatus struct {
	InstanceID         string         `xml:"instanceId"`
	AvailabilityZone   string         `xml:"availabilityZone"`
	AvailabilityZoneID string         `xml:"availabilityZoneId,omitempty"`
	Events             *xEvents       `xml:"eventsSet,omitempty"`
	State              xState         `xml:"instanceState"`
	SystemStatus       xStatusSummary `xml:"systemStatus"`
	InstanceStatus     xStatusSummary `xml:"instanceStatus"`
}

type describeInstanceStatusResp struct {
	query.ResponseMeta
	Statuses  []xInstanceStatus `xml:"instanceStatusSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

func xmlSummary(c check, running bool) xStatusSummary {
	st := c.summary(running)
	if st == StatusNotApplicable {
		return xStatusSummary{Status: st}
	}
	d := xStatusDetail{Name: "reachability", Status: reachability(st)}
	if st == StatusImpaired {
		d.ImpairedSince = fmtTime(c.since)
	}
	return xStatusSummary{Status: st, Details: &xDetails{Items: []xStatusDetail{d}}}
}

func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

var instanceStatusFilters = []string{"availability-zone", "availability-zone-id", "event.code", "event.description",
	"event.instance-event-id", "event.not-after", "event.not-before", "event.not-before-deadline",
	"instance-state-code", "instance-state-name", "instance-status.reachability", "instance-status.status",
	"system-status.reachability", "system-status.status"}

func (s *Sim) describeInstanceStatus(c *call) (query.Body, error) {
	r, p := c.region, c.p
	ids := p.Strings("InstanceId")
	if len(ids) > MaxInstanceStatusIDs {
		return nil, errorf("InvalidParameterValue", "The request contains %d instance IDs; at most %d are allowed.", len(ids), MaxInstanceStatusIDs)
	}
	limit, err := maxResults(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ids) > 0 {
		return nil, errorf("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	all, err := p.Bool("IncludeAllInstances")
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, instanceStatusFilters...)
	if err != nil {
		return nil, err
	}
	var cands []*instance
	if len(ids) > 0 {
		if cands, err = r.lookupInstances(ids); err != nil {
			return nil, err
		}
	} else {
		start, err := r.pageFrom(p)
		if err != nil {
			return nil, err
		}
		cands = r.order[start:]
	}
	resp := &describeInstanceStatusResp{}
	for _, in := range cands {
		if in.removed {
			continue
		}
		st := in.state(c.now, s.opts.ShutdownDelay)
		running := st == StateRunning
		if !running && !all {
			continue
		}
		x := s.xmlStatus(in, st, c.now, r)
		if !statusMatch(fs, &x, r) {
			continue
		}
		if limit > 0 && len(resp.Statuses) == limit {
			resp.NextToken = encodeToken(strconv.FormatUint(in.seq, 10))
			break
		}
		resp.Statuses = append(resp.Statuses, x)
	}
	c.n = len(resp.Statuses)
	return resp, nil
}

func (s *Sim) xmlStatus(in *instance, st string, now time.Time, r *regionState) xInstanceStatus {
	running := st == StateRunning
	x := xInstanceStatus{InstanceID: in.id, AvailabilityZone: in.az, AvailabilityZoneID: r.azs[in.az].ZoneID,
		State: xState{stateCodes[st], st}, SystemStatus: xmlSummary(in.sysCheck, running),
		InstanceStatus: xmlSummary(in.instCheck, running)}
	for _, e := range in.events {
		if x.Events == nil {
			x.Events = &xEvents{}
		}
		x.Events.Items = append(x.Events.Items, xStatusEvent{InstanceEventID: e.id, Code: e.code, Description: e.describe(now),
			NotBefore: fmtTime(e.notBefore), NotAfter: optTime(e.notAfter), NotBeforeDeadline: optTime(e.deadline)})
	}
	return x
}

// statusMatch applies DescribeInstanceStatus filters to one answer item: filters are AND-ed,
// values OR-ed, and an event filter matches when any of the instance's events does.
func statusMatch(fs []filter, x *xInstanceStatus, r *regionState) bool {
	detail := func(sum xStatusSummary) string {
		if sum.Details == nil || len(sum.Details.Items) == 0 {
			return ""
		}
		return sum.Details.Items[0].Status
	}
	anyEvent := func(f filter, field func(xStatusEvent) string) bool {
		if x.Events == nil {
			return false
		}
		for _, e := range x.Events.Items {
			if f.any(field(e)) {
				return true
			}
		}
		return false
	}
	for _, f := range fs {
		var ok bool
		switch f.name {
		case "availability-zone":
			ok = f.any(x.AvailabilityZone)
		case "availability-zone-id":
			ok = f.any(r.azs[x.AvailabilityZone].ZoneID)
		case "instance-state-name":
			ok = f.any(x.State.Name)
		case "instance-state-code":
			ok = f.any(strconv.Itoa(x.State.Code))
		case "instance-status.status":
			ok = f.any(x.InstanceStatus.Status)
		case "system-status.status":
			ok = f.any(x.SystemStatus.Status)
		case "instance-status.reachability":
			ok = f.any(detail(x.InstanceStatus))
		case "system-status.reachability":
			ok = f.any(detail(x.SystemStatus))
		case "event.code":
			ok = anyEvent(f, func(e xStatusEvent) string { return e.Code })
		case "event.description":
			ok = anyEvent(f, func(e xStatusEvent) string { return e.Description })
		case "event.instance-event-id":
			ok = anyEvent(f, func(e xStatusEvent) string { return e.InstanceEventID })
		case "event.not-before":
			ok = anyEvent(f, func(e xStatusEvent) string { return e.NotBefore })
		case "event.not-after":
			ok = anyEvent(f, func(e xStatusEvent) string { return e.NotAfter })
		case "event.not-before-deadline":
			ok = anyEvent(f, func(e xStatusEvent) string { return e.NotBeforeDeadline })
		}
		if !ok {
			return false
		}
	}
	return true
}

// ---- admin side ----

// EventSpec is a scheduled event to give instances. NotAfter and Description are optional.
type EventSpec struct {
	Code        string
	Description string
	NotBefore   time.Time
	NotAfter    time.Time
}

// EventInfo is a scheduled event as the admin API shows it.
type EventInfo struct {
	InstanceEventID string     `json:"InstanceEventId"`
	Code            string     `json:"Code"`
	Description     string     `json:"Description"`
	NotBefore       time.Time  `json:"NotBefore"`
	NotAfter        *time.Time `json:"NotAfter,omitempty"`
	Completed       bool       `json:"Completed,omitempty"`
}

// ScheduleEvent gives each instance a scheduled event and returns the new event ids, one per
// instance in order. An instance-retirement or instance-stop event ends its instance at NotBefore
// (terminated, state reason Server.ScheduledStop).
func (s *Sim) ScheduleEvent(ids []string, ev EventSpec) ([]string, error) {
	if _, ok := eventDescriptions[ev.Code]; !ok {
		return nil, fmt.Errorf("schedule event: code %q must be one of instance-reboot, system-reboot, system-maintenance, instance-retirement, instance-stop", ev.Code)
	}
	if ev.NotBefore.IsZero() {
		return nil, errors.New("schedule event: NotBefore is required (RFC 3339, or an offset from now such as +72h)")
	}
	if !ev.NotAfter.IsZero() && ev.NotAfter.Before(ev.NotBefore) {
		return nil, errors.New("schedule event: NotAfter is before NotBefore")
	}
	if ev.Description == "" {
		ev.Description = eventDescriptions[ev.Code]
	}
	if len(ids) == 0 {
		return nil, errors.New("schedule event: InstanceIds is empty")
	}
	s.mu.Lock()
	now := s.opts.Now()
	var errs []error
	var out []string
	for _, id := range ids {
		in := s.findLocked(id)
		if in == nil || in.removed {
			errs = append(errs, fmt.Errorf("schedule event: instance %s does not exist", id))
			continue
		}
		e := &schedEvent{id: s.hexID("instance-event-", 17), code: ev.Code, description: ev.Description,
			notBefore: ev.NotBefore.UTC(), notAfter: ev.NotAfter.UTC()}
		in.events = append(in.events, e)
		out = append(out, e.id)
		if ev.Code == EventInstanceRetirement || ev.Code == EventInstanceStop {
			s.schedule(e.notBefore, evScheduledStop, in)
		}
	}
	hooks := s.advanceLocked(now)
	s.mu.Unlock()
	runHooks(hooks)
	return out, errors.Join(errs...)
}

// SetStatus sets the instance and system status checks of instances: "ok", "impaired",
// "initializing" or "insufficient-data"; "" leaves a check as it is. A check that becomes impaired
// records the time as its impairedSince; one already impaired keeps its time.
func (s *Sim) SetStatus(ids []string, instanceStatus, systemStatus string) error {
	for _, v := range []string{instanceStatus, systemStatus} {
		switch v {
		case "", StatusOK, StatusImpaired, StatusInitializing, StatusInsufficientData:
		default:
			return fmt.Errorf("set status: %q must be ok, impaired, initializing or insufficient-data", v)
		}
	}
	if len(ids) == 0 {
		return errors.New("set status: InstanceIds is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	set := func(c *check, v string) {
		switch {
		case v == "":
		case v == StatusImpaired && c.status == StatusImpaired:
		case v == StatusOK:
			*c = check{}
		default:
			*c = check{status: v, since: now}
		}
	}
	var errs []error
	for _, id := range ids {
		in := s.findLocked(id)
		if in == nil || in.removed {
			errs = append(errs, fmt.Errorf("set status: instance %s does not exist", id))
			continue
		}
		set(&in.instCheck, instanceStatus)
		set(&in.sysCheck, systemStatus)
	}
	return errors.Join(errs...)
}

// scheduledStopLocked ends an instance whose retirement or stop event has come.
func (s *Sim) scheduledStopLocked(in *instance, at time.Time) {
	if in.done || !in.shutdownAt.IsZero() {
		return
	}
	s.terminateLocked(in, at, ReasonScheduledStop)
}

func (s *Sim) eventInfosLocked(in *instance, now time.Time) []EventInfo {
	var out []EventInfo
	for _, e := range in.events {
		ei := EventInfo{InstanceEventID: e.id, Code: e.code, Description: e.describe(now), NotBefore: e.notBefore, Completed: e.completed(now)}
		if !e.notAfter.IsZero() {
			t := e.notAfter
			ei.NotAfter = &t
		}
		out = append(out, ei)
	}
	return out
}

// parseWhen reads an admin time: RFC 3339, or an offset from now ("+72h", "-30m").
func parseWhen(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if strings.HasPrefix(v, "+") || strings.HasPrefix(v, "-") {
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor an offset such as +72h: %w", v, err)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor an offset such as +72h: %w", v, err)
	}
	return t, nil
}

// eventsJSON is the body of POST /ec2sim/events.
type eventsJSON struct {
	InstanceIds []string `json:"InstanceIds"`
	Code        string   `json:"Code"`
	NotBefore   string   `json:"NotBefore"`
	NotAfter    string   `json:"NotAfter,omitempty"`
	Description string   `json:"Description,omitempty"`
}

// statusJSON is the body of POST /ec2sim/status.
type statusJSON struct {
	InstanceIds    []string `json:"InstanceIds"`
	InstanceStatus string   `json:"InstanceStatus,omitempty"`
	SystemStatus   string   `json:"SystemStatus,omitempty"`
}

func (s *Sim) adminEvents(b eventsJSON) (any, error) {
	now := s.opts.Now()
	nb, err := parseWhen(b.NotBefore, now)
	if err != nil {
		return nil, fmt.Errorf("NotBefore: %w", err)
	}
	na, err := parseWhen(b.NotAfter, now)
	if err != nil {
		return nil, fmt.Errorf("NotAfter: %w", err)
	}
	ids, err := s.ScheduleEvent(b.InstanceIds, EventSpec{Code: b.Code, Description: b.Description, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	return map[string][]string{"InstanceEventIds": ids}, nil
}
