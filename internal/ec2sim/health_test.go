package ec2sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func statusIDs(out []types.InstanceStatus) []string {
	var ids []string
	for _, s := range out {
		ids = append(ids, aws.ToString(s.InstanceId))
	}
	slices.Sort(ids)
	return ids
}

func describeStatus(t *testing.T, cl *ec2.Client, in *ec2.DescribeInstanceStatusInput) []types.InstanceStatus {
	t.Helper()
	var all []types.InstanceStatus
	p := ec2.NewDescribeInstanceStatusPaginator(cl, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("DescribeInstanceStatus: %v", err)
		}
		all = append(all, page.InstanceStatuses...)
	}
	return all
}

func sdkFilter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// TestInstanceHealthOverSDK sets events and status checks through the Go admin methods and
// reads them with the SDK's DescribeInstanceStatus: filters, pagination, IncludeAllInstances,
// details with impairedSince, and the retirement date ending the instance.
func TestInstanceHealthOverSDK(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	out, err := cl.CreateFleet(ctx, fleetInput(12, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"}))
	if err != nil {
		t.Fatal(err)
	}
	ids := fleetIDs(out)
	retiring, impaired, sysImpaired := ids[0], ids[1], ids[2]
	t0 := e.clock.Now()
	evIDs, err := e.sim.ScheduleEvent([]string{retiring}, EventSpec{Code: EventInstanceRetirement, NotBefore: t0.Add(72 * time.Hour)})
	if err != nil || len(evIDs) != 1 || !strings.HasPrefix(evIDs[0], "instance-event-") {
		t.Fatalf("ScheduleEvent = %v, %v", evIDs, err)
	}
	if err := e.sim.SetStatus([]string{impaired}, StatusImpaired, StatusOK); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if err := e.sim.SetStatus([]string{sysImpaired}, "", StatusImpaired); err != nil {
		t.Fatal(err)
	}
	// Setting impaired again keeps the first time.
	if err := e.sim.SetStatus([]string{impaired}, StatusImpaired, ""); err != nil {
		t.Fatal(err)
	}

	// Every running instance, in pages of 5.
	all := describeStatus(t, cl, &ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(5), IncludeAllInstances: aws.Bool(true)})
	if len(all) != 12 {
		t.Fatalf("paginated listing has %d instances, want 12", len(all))
	}
	byID := map[string]types.InstanceStatus{}
	for _, s := range all {
		byID[aws.ToString(s.InstanceId)] = s
	}
	healthy := byID[ids[3]]
	if healthy.InstanceStatus.Status != types.SummaryStatusOk || healthy.SystemStatus.Status != types.SummaryStatusOk ||
		len(healthy.InstanceStatus.Details) != 1 || healthy.InstanceStatus.Details[0].Status != types.StatusTypePassed ||
		healthy.InstanceStatus.Details[0].Name != types.StatusNameReachability || healthy.InstanceStatus.Details[0].ImpairedSince != nil ||
		len(healthy.Events) != 0 || healthy.InstanceState.Name != types.InstanceStateNameRunning {
		t.Fatalf("healthy instance: %+v", healthy)
	}
	ev := byID[retiring].Events
	if len(ev) != 1 || ev[0].Code != types.EventCodeInstanceRetirement || aws.ToString(ev[0].InstanceEventId) != evIDs[0] ||
		!aws.ToTime(ev[0].NotBefore).Equal(t0.Add(72*time.Hour)) || ev[0].NotAfter != nil || aws.ToString(ev[0].Description) == "" {
		t.Fatalf("retiring instance events: %+v", ev)
	}
	is := byID[impaired].InstanceStatus
	if is.Status != types.SummaryStatusImpaired || is.Details[0].Status != types.StatusTypeFailed || !aws.ToTime(is.Details[0].ImpairedSince).Equal(t0) {
		t.Fatalf("impaired instance status %+v (want impaired since %v)", is, t0)
	}
	if byID[impaired].SystemStatus.Status != types.SummaryStatusOk {
		t.Fatalf("impaired instance system status %+v", byID[impaired].SystemStatus)
	}
	if ss := byID[sysImpaired].SystemStatus; ss.Status != types.SummaryStatusImpaired || !aws.ToTime(ss.Details[0].ImpairedSince).Equal(t0.Add(time.Minute)) {
		t.Fatalf("system-impaired instance %+v", ss)
	}

	filters := map[string]struct {
		filters []types.Filter
		want    []string
	}{
		"event.code":                   {[]types.Filter{sdkFilter("event.code", "instance-retirement", "instance-stop")}, []string{retiring}},
		"event.not-before wildcard":    {[]types.Filter{sdkFilter("event.not-before", t0.Add(72*time.Hour).Format("2006-01-02")+"*")}, []string{retiring}},
		"event.instance-event-id":      {[]types.Filter{sdkFilter("event.instance-event-id", evIDs[0])}, []string{retiring}},
		"instance-status.status":       {[]types.Filter{sdkFilter("instance-status.status", "impaired")}, []string{impaired}},
		"system-status.status":         {[]types.Filter{sdkFilter("system-status.status", "impaired")}, []string{sysImpaired}},
		"instance-status.reachability": {[]types.Filter{sdkFilter("instance-status.reachability", "failed")}, []string{impaired}},
		"AND of two names":             {[]types.Filter{sdkFilter("instance-status.status", "impaired"), sdkFilter("system-status.status", "impaired")}, nil},
		"OR of two values":             {[]types.Filter{sdkFilter("system-status.status", "impaired", "initializing")}, []string{sysImpaired}},
		"availability-zone-id":         {[]types.Filter{sdkFilter("availability-zone-id", "use1-az1"), sdkFilter("event.code", "*")}, []string{retiring}},
	}
	for name, tc := range filters {
		t.Run(name, func(t *testing.T) {
			got := statusIDs(describeStatus(t, cl, &ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(1000), IncludeAllInstances: aws.Bool(true), Filters: tc.filters}))
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	errCases := map[string]struct {
		in   *ec2.DescribeInstanceStatusInput
		code string
	}{
		"MaxResults below 5":       {&ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(4)}, "InvalidParameterValue"},
		"MaxResults with ids":      {&ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(5), InstanceIds: ids[:1]}, "InvalidParameterCombination"},
		"unknown filter":           {&ec2.DescribeInstanceStatusInput{Filters: []types.Filter{sdkFilter("tag:Name", "x")}}, "InvalidParameterValue"},
		"unknown instance":         {&ec2.DescribeInstanceStatusInput{InstanceIds: []string{"i-0123456789abcdef0"}}, "InvalidInstanceID.NotFound"},
		"more than 100 ids":        {&ec2.DescribeInstanceStatusInput{InstanceIds: slices.Repeat([]string{ids[0]}, 101)}, "InvalidParameterValue"},
		"malformed pagination tok": {&ec2.DescribeInstanceStatusInput{NextToken: aws.String("nope")}, "InvalidPaginationToken"},
	}
	for name, tc := range errCases {
		t.Run(name, func(t *testing.T) {
			_, err := cl.DescribeInstanceStatus(ctx, tc.in)
			if got := apiCode(t, err); got != tc.code {
				t.Fatalf("code %s, want %s", got, tc.code)
			}
		})
	}

	// Without IncludeAllInstances only running instances are described; with it, a terminated one
	// is, with not-applicable checks and no details.
	if _, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[11:]}); err != nil {
		t.Fatal(err)
	}
	if got := describeStatus(t, cl, &ec2.DescribeInstanceStatusInput{}); len(got) != 11 {
		t.Fatalf("running only: %d instances, want 11", len(got))
	}
	got := describeStatus(t, cl, &ec2.DescribeInstanceStatusInput{InstanceIds: ids[11:], IncludeAllInstances: aws.Bool(true)})
	if len(got) != 1 || got[0].InstanceStatus.Status != types.SummaryStatusNotApplicable || len(got[0].InstanceStatus.Details) != 0 ||
		got[0].InstanceState.Name != types.InstanceStateNameTerminated {
		t.Fatalf("terminated instance with IncludeAllInstances: %+v", got)
	}

	// The retirement date comes: the instance ends with Server.ScheduledStop and its event is
	// described as completed.
	e.clock.Add(72 * time.Hour)
	di, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{retiring}})
	if err != nil {
		t.Fatal(err)
	}
	inst := di.Reservations[0].Instances[0]
	if inst.State.Name != types.InstanceStateNameTerminated || aws.ToString(inst.StateReason.Code) != ReasonScheduledStop {
		t.Fatalf("retired instance: state %v reason %+v", inst.State.Name, inst.StateReason)
	}
	got = describeStatus(t, cl, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{retiring}, IncludeAllInstances: aws.Bool(true)})
	if len(got) != 1 || len(got[0].Events) != 1 || !strings.HasPrefix(aws.ToString(got[0].Events[0].Description), "[Completed]") {
		t.Fatalf("retired instance events: %+v", got)
	}
}

// TestHealthAdminHTTP drives POST /ec2sim/events and /ec2sim/status as the e2e tests and the
// fidelity test do: offsets and RFC 3339 times, errors as 400 with a message.
func TestHealthAdminHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	out, err := e.client("us-east-1").CreateFleet(ctx, fleetInput(2, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"}))
	if err != nil {
		t.Fatal(err)
	}
	ids := fleetIDs(out)
	post := func(path string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(e.url+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	now := e.clock.Now()
	if code, m := post("/ec2sim/events", map[string]any{"InstanceIds": ids[:1], "Code": "system-reboot", "NotBefore": "+72h", "NotAfter": now.Add(74 * time.Hour).Format(time.RFC3339)}); code != 200 || m["InstanceEventIds"] == nil {
		t.Fatalf("POST events: %d %v", code, m)
	}
	if code, m := post("/ec2sim/status", map[string]any{"InstanceIds": ids[1:], "InstanceStatus": "impaired", "SystemStatus": "ok"}); code != 200 {
		t.Fatalf("POST status: %d %v", code, m)
	}
	info, _ := e.sim.Instance(ids[0])
	if len(info.Events) != 1 || !info.Events[0].NotBefore.Equal(now.Add(72*time.Hour)) || info.Events[0].NotAfter == nil ||
		!info.Events[0].NotAfter.Equal(now.Add(74*time.Hour)) || info.Events[0].Code != "system-reboot" {
		t.Fatalf("event after admin call: %+v", info.Events)
	}
	if info, _ := e.sim.Instance(ids[1]); info.InstanceStatus != StatusImpaired || info.SystemStatus != StatusOK {
		t.Fatalf("status after admin call: %s/%s", info.InstanceStatus, info.SystemStatus)
	}
	bad := map[string]struct {
		path string
		body map[string]any
		want string
	}{
		"unknown code":   {"/ec2sim/events", map[string]any{"InstanceIds": ids, "Code": "reboot", "NotBefore": "+1h"}, "must be one of"},
		"no NotBefore":   {"/ec2sim/events", map[string]any{"InstanceIds": ids, "Code": "system-reboot"}, "NotBefore is required"},
		"bad time":       {"/ec2sim/events", map[string]any{"InstanceIds": ids, "Code": "system-reboot", "NotBefore": "tomorrow"}, "RFC 3339"},
		"unknown status": {"/ec2sim/status", map[string]any{"InstanceIds": ids, "InstanceStatus": "broken"}, "must be ok, impaired"},
		"unknown id":     {"/ec2sim/status", map[string]any{"InstanceIds": []string{"i-0123456789abcdef0"}, "SystemStatus": "impaired"}, "does not exist"},
		"unknown field":  {"/ec2sim/status", map[string]any{"InstanceIds": ids, "Status": "impaired"}, "unknown field"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			code, m := post(tc.path, tc.body)
			if msg, _ := m["error"].(string); code != 400 || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %v, want 400 with %q", code, m, tc.want)
			}
		})
	}
}

// FuzzParseWhen: the admin API's time parser never panics, and what it accepts is an offset from
// now or an RFC 3339 time that formats back to the same instant.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"+72h", "-30m", "2026-12-04T10:00:00Z", "2026-12-04T10:00:00+02:00", "", "+", "tomorrow", "+1h30m15s", "-9223372036854775808ns"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseWhen(s, now)
		switch {
		case err != nil:
			if !got.IsZero() {
				t.Fatalf("%q: error %v with a time %v", s, err, got)
			}
		case s == "":
			if !got.IsZero() {
				t.Fatalf("empty gave %v", got)
			}
		case s[0] == '+' || s[0] == '-':
			d, perr := time.ParseDuration(s)
			if perr != nil || !got.Equal(now.Add(d)) {
				t.Fatalf("%q: got %v, want now%+v", s, got, d)
			}
		default:
			back, perr := time.Parse(time.RFC3339, got.Format(time.RFC3339Nano))
			if perr != nil || !back.Equal(got) {
				t.Fatalf("%q: %v does not round-trip (%v)", s, got, perr)
			}
		}
	})
}
