package ec2sim

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// clock is an injected clock tests move by hand.
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
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	sim   *Sim
	clock *clock
	url   string
	http  aws.HTTPClient // for every SDK client of the test
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	opts.Seed = 42
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	// fleet.OwnBody: without it, large answers fail now and then with "use of closed network
	// connection" (an SDK race, not ec2sim's; see its doc), and these clients do not retry.
	return &env{sim: s, clock: c, url: srv.URL, http: fleet.OwnBody(&http.Client{Transport: tr})}
}

// client is an SDK client that sees every answer as ec2sim sent it: no retries.
func (e *env) client(region string) *ec2.Client {
	return e.clientAs(region, "AKIDEXAMPLE", "secret", aws.NopRetryer{})
}

func (e *env) clientAs(region, akid, secret string, retryer aws.Retryer) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(e.url),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer:      retryer,
		HTTPClient:   e.http,
	})
}

func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func fleetInput(total int, lifecycle string, pools ...[2]string) *ec2.CreateFleetInput {
	var ovr []types.FleetLaunchTemplateOverridesRequest
	for _, p := range pools {
		ovr = append(ovr, types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(p[0]), SubnetId: aws.String(p[1])})
	}
	return &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String("template-name"), Version: aws.String("$Latest")},
			Overrides:                   ovr,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(int32(total)), DefaultTargetCapacityType: types.DefaultTargetCapacityType(lifecycle),
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String("slurm-ec2:cluster"), Value: aws.String("c1")},
		}}},
	}
}

func fleetIDs(out *ec2.CreateFleetOutput) []string {
	var ids []string
	for _, fi := range out.Instances {
		ids = append(ids, fi.InstanceIds...)
	}
	return ids
}

func TestFleetTagFilterPaginateTerminate(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	out, err := cl.CreateFleet(ctx, fleetInput(12, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"}, [2]string{"c4.xlarge", "subnet-22222222"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(out.FleetId), "fleet-") || len(out.Errors) != 0 {
		t.Fatalf("fleet id %q errors %+v", aws.ToString(out.FleetId), out.Errors)
	}
	ids := fleetIDs(out)
	if len(ids) != 12 {
		t.Fatalf("launched %d, want 12", len(ids))
	}
	// lowest-price on-demand: c5.xlarge (0.17) before c4.xlarge (0.199): all 12 in one pool.
	if len(out.Instances) != 1 || out.Instances[0].InstanceType != "c5.xlarge" || aws.ToString(out.Instances[0].LaunchTemplateAndOverrides.Overrides.SubnetId) != "subnet-11111111" {
		t.Fatalf("unexpected grouping %+v", out.Instances)
	}
	for _, id := range ids {
		if len(id) != 19 || !instanceIDRE.MatchString(id) {
			t.Fatalf("bad instance id %q", id)
		}
	}
	if _, err := cl.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:3], Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("aws-node-0")}}}); err != nil {
		t.Fatal(err)
	}
	di, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"aws-node-?"}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range di.Reservations {
		for _, in := range r.Instances {
			n++
			if in.State.Name != types.InstanceStateNameRunning || in.InstanceLifecycle != "" || !strings.HasPrefix(aws.ToString(in.PrivateIpAddress), "10.1.") ||
				!strings.HasSuffix(aws.ToString(in.PrivateDnsName), ".ec2.internal") {
				t.Fatalf("instance %+v", in)
			}
		}
	}
	if n != 3 {
		t.Fatalf("tag filter found %d, want 3", n)
	}
	// Paginate by cluster tag with pages of 5.
	pg := ec2.NewDescribeInstancesPaginator(cl, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []types.Filter{{Name: aws.String("tag:slurm-ec2:cluster"), Values: []string{"c1"}}}})
	seen := map[string]bool{}
	pages := 0
	for pg.HasMorePages() {
		p, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range p.Reservations {
			for _, in := range r.Instances {
				seen[aws.ToString(in.InstanceId)] = true
			}
		}
	}
	if len(seen) != 12 || pages != 3 {
		t.Fatalf("paginated %d instances in %d pages", len(seen), pages)
	}
	to, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:2]})
	if err != nil {
		t.Fatal(err)
	}
	if len(to.TerminatingInstances) != 2 || to.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("terminate answer %+v", to.TerminatingInstances)
	}
	di, err = cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1]})
	if err != nil {
		t.Fatal(err)
	}
	in := di.Reservations[0].Instances[0]
	if in.State.Name != types.InstanceStateNameTerminated || aws.ToString(in.StateReason.Code) != ReasonUserShutdown {
		t.Fatalf("after terminate: %v %+v", in.State.Name, in.StateReason)
	}
	di, err = cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := countInstances(di); got != 10 {
		t.Fatalf("running after terminate: %d, want 10", got)
	}
	// Retention: gone after an hour.
	e.clock.Add(61 * time.Minute)
	_, err = cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1]})
	if apiCode(t, err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("terminated instance still visible after retention: %v", err)
	}
}

func countInstances(o *ec2.DescribeInstancesOutput) int {
	n := 0
	for _, r := range o.Reservations {
		n += len(r.Instances)
	}
	return n
}

func TestErrorsAsAWS(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	tests := map[string]struct {
		call   func() error
		code   string
		status int
	}{
		"dry run": {func() error {
			_, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}, DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation", 412},
		"unknown instance": {func() error {
			_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return err
		}, "InvalidInstanceID.NotFound", 400},
		"malformed instance": {func() error {
			_, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"node-1"}})
			return err
		}, "InvalidInstanceID.Malformed", 400},
		"unknown template name": {func() error {
			in := fleetInput(1, "on-demand")
			in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateName = aws.String("nope")
			_, err := cl.CreateFleet(ctx, in)
			return err
		}, "InvalidLaunchTemplateName.NotFoundException", 400},
		"unknown template id": {func() error {
			in := fleetInput(1, "on-demand")
			in.LaunchTemplateConfigs[0].LaunchTemplateSpecification = &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateId: aws.String("lt-0000000000000000f"), Version: aws.String("1")}
			_, err := cl.CreateFleet(ctx, in)
			return err
		}, "InvalidLaunchTemplateId.NotFound", 400},
		"duplicate pools": {func() error {
			// subnet-11111111 is in us-east-1a; so is the AZ override.
			in := fleetInput(2, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"})
			in.LaunchTemplateConfigs[0].Overrides = append(in.LaunchTemplateConfigs[0].Overrides,
				types.FleetLaunchTemplateOverridesRequest{InstanceType: "c5.xlarge", AvailabilityZone: aws.String("us-east-1a")})
			_, err := cl.CreateFleet(ctx, in)
			return err
		}, "InvalidFleetConfig", 400},
		"maintain fleet": {func() error {
			in := fleetInput(1, "on-demand")
			in.Type = types.FleetTypeMaintain
			_, err := cl.CreateFleet(ctx, in)
			return err
		}, "UnsupportedOperation", 400},
		"max results with ids": {func() error {
			_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}, MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination", 400},
		"max results too small": {func() error {
			_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
			return err
		}, "InvalidParameterValue", 400},
		"unknown filter": {func() error {
			_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}})
			return err
		}, "InvalidParameterValue", 400},
		"too many filter values": {func() error {
			_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: make([]string, 201)}}})
			return err
		}, "FilterLimitExceeded", 400},
		"min above max": {func() error {
			_, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(2), MaxCount: aws.Int32(1)})
			return err
		}, "InvalidParameterValue", 400},
		"unknown subnet": {func() error {
			_, err := cl.CreateFleet(ctx, fleetInput(1, "on-demand", [2]string{"c5.xlarge", "subnet-99999999"}))
			return err
		}, "InvalidSubnetID.NotFound", 400},
		"unknown region": {func() error {
			_, err := e.client("mars-north-1").DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}, "AuthFailure", 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if got := apiCode(t, err); got != tc.code {
				t.Fatalf("code %s, want %s (%v)", got, tc.code, err)
			}
			if got := httpStatus(err); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}
	if got := e.sim.Counters()["DescribeInstances"].Errors["InvalidParameterValue"]; got != 2 {
		t.Fatalf("DescribeInstances InvalidParameterValue counter %d, want 2", got)
	}
}

func TestPartialFulfilmentAndCapacityReturn(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	if err := e.sim.SetCapacity("c5.xlarge", "us-east-1a", "spot", 3); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetCapacity("c4.xlarge", "us-east-1b", "spot", 2); err != nil {
		t.Fatal(err)
	}
	out, err := cl.CreateFleet(ctx, fleetInput(8, "spot", [2]string{"c5.xlarge", "subnet-11111111"}, [2]string{"c4.xlarge", "subnet-22222222"}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, fi := range out.Instances {
		if fi.Lifecycle != types.InstanceLifecycleSpot {
			t.Fatalf("lifecycle %q", fi.Lifecycle)
		}
		got[string(fi.InstanceType)] += len(fi.InstanceIds)
	}
	if got["c5.xlarge"] != 3 || got["c4.xlarge"] != 2 {
		t.Fatalf("launched %v, want 3 c5.xlarge and 2 c4.xlarge", got)
	}
	if len(out.Errors) != 2 {
		t.Fatalf("errors %d, want one per exhausted override: %+v", len(out.Errors), out.Errors)
	}
	for _, fe := range out.Errors {
		if aws.ToString(fe.ErrorCode) != "InsufficientInstanceCapacity" || fe.LaunchTemplateAndOverrides.Overrides == nil {
			t.Fatalf("error %+v", fe)
		}
	}
	di, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: fleetIDs(out)[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if di.Reservations[0].Instances[0].InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Fatalf("spot instance without instanceLifecycle=spot")
	}
	// Terminating returns capacity.
	if _, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: fleetIDs(out)}); err != nil {
		t.Fatal(err)
	}
	out, err = cl.CreateFleet(ctx, fleetInput(5, "spot", [2]string{"c5.xlarge", "subnet-11111111"}, [2]string{"c4.xlarge", "subnet-22222222"}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fleetIDs(out)); n != 5 || len(out.Errors) != 1 {
		t.Fatalf("after release launched %d with %d errors, want 5 and 1", n, len(out.Errors))
	}
}

func TestMinTargetCapacityAllOrNothing(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	_ = e.sim.SetCapacity("c5.xlarge", "us-east-1a", "on-demand", 3)
	_ = e.sim.SetCapacity("c4.xlarge", "us-east-1b", "on-demand", 4)
	in := fleetInput(5, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"}, [2]string{"c4.xlarge", "subnet-22222222"})
	in.OnDemandOptions = &types.OnDemandOptionsRequest{MinTargetCapacity: aws.Int32(5), SingleInstanceType: aws.Bool(true)}
	out, err := cl.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(fleetIDs(out)) != 0 || len(out.Errors) == 0 {
		t.Fatalf("want nothing launched and errors, got %d instances %+v", len(fleetIDs(out)), out.Errors)
	}
	if all := e.sim.Instances(""); len(all) != 0 {
		t.Fatalf("%d instances exist after an unmet minimum", len(all))
	}
	in.OnDemandOptions.MinTargetCapacity = aws.Int32(4)
	in.ClientToken = nil // the SDK stored its generated token in the input
	out, err = cl.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 1 || out.Instances[0].InstanceType != "c4.xlarge" || len(out.Instances[0].InstanceIds) != 4 {
		t.Fatalf("single-type fleet should use the one type that fits most: %+v", out.Instances)
	}
	in.OnDemandOptions = &types.OnDemandOptionsRequest{MinTargetCapacity: aws.Int32(1)}
	in.ClientToken = nil
	if _, err = cl.CreateFleet(ctx, in); apiCode(t, err) != "InvalidParameterValue" {
		t.Fatalf("MinTargetCapacity without Single*: %v", err)
	}
}

func TestClientTokenIdempotency(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	in := fleetInput(3, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"})
	in.ClientToken = aws.String("tok-1")
	a, err := cl.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cl.CreateFleet(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.FleetId) != aws.ToString(b.FleetId) || strings.Join(fleetIDs(a), ",") != strings.Join(fleetIDs(b), ",") {
		t.Fatalf("same token, different answers")
	}
	if n := len(e.sim.Instances("us-east-1")); n != 3 {
		t.Fatalf("%d instances after a retried CreateFleet, want 3", n)
	}
	in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(4)
	if _, err := cl.CreateFleet(ctx, in); apiCode(t, err) != "IdempotentParameterMismatch" {
		t.Fatalf("reused token with other parameters: %v", err)
	}
	ri := &ec2.RunInstancesInput{MinCount: aws.Int32(2), MaxCount: aws.Int32(2), ClientToken: aws.String("tok-1"),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("template-name")}}
	r1, err := cl.RunInstances(ctx, ri)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := cl.RunInstances(ctx, ri)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(r1.ReservationId) != aws.ToString(r2.ReservationId) || len(e.sim.Instances("")) != 5 {
		t.Fatalf("RunInstances token not idempotent")
	}
}

func TestRegionsIsolated(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	west := e.client("us-west-2")
	out, err := west.CreateFleet(ctx, fleetInput(2, "on-demand", [2]string{"c5.large", "subnet-33333333"}))
	if err != nil {
		t.Fatal(err)
	}
	di, err := west.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: fleetIDs(out)})
	if err != nil {
		t.Fatal(err)
	}
	if dns := aws.ToString(di.Reservations[0].Instances[0].PrivateDnsName); !strings.HasSuffix(dns, ".us-west-2.compute.internal") || !strings.HasPrefix(dns, "ip-10-3-") {
		t.Fatalf("west DNS %q", dns)
	}
	east := e.client("us-east-1")
	if _, err := east.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: fleetIDs(out)}); apiCode(t, err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("east sees west's instances: %v", err)
	}
	// subnet-33333333 is not in us-east-1.
	if _, err := east.CreateFleet(ctx, fleetInput(1, "on-demand", [2]string{"c5.large", "subnet-33333333"})); apiCode(t, err) != "InvalidSubnetID.NotFound" {
		t.Fatalf("east accepts a west subnet: %v", err)
	}
}

func TestSpotInterruption(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	out, err := cl.CreateFleet(ctx, fleetInput(2, "spot", [2]string{"c5.xlarge", "subnet-11111111"}))
	if err != nil {
		t.Fatal(err)
	}
	ids := fleetIDs(out)
	if err := e.sim.SpotInterrupt(ids[:1], -1); err != nil {
		t.Fatal(err)
	}
	info, _ := e.sim.Instance(ids[0])
	if info.State != StateRunning || info.SpotActionTime == nil || !info.SpotActionTime.Equal(e.clock.Now().Add(2*time.Minute)) {
		t.Fatalf("during notice: %+v", info)
	}
	e.clock.Add(2 * time.Minute)
	di, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]types.InstanceStateName{}
	for _, r := range di.Reservations {
		for _, in := range r.Instances {
			states[aws.ToString(in.InstanceId)] = in.State.Name
			if aws.ToString(in.InstanceId) == ids[0] && aws.ToString(in.StateReason.Code) != ReasonSpot {
				t.Fatalf("state reason %+v", in.StateReason)
			}
		}
	}
	if states[ids[0]] != types.InstanceStateNameTerminated || states[ids[1]] != types.InstanceStateNameRunning {
		t.Fatalf("states %v", states)
	}
	if err := e.sim.SpotInterrupt(ids[1:], 0); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.sim.Instance(ids[1]); info.State != StateTerminated {
		t.Fatalf("notice 0 should terminate at once: %s", info.State)
	}
}

func TestLifecycleDelaysAndHooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	done := make(chan struct{}, 10)
	hook := func(kind string) func(InstanceInfo) {
		return func(i InstanceInfo) {
			mu.Lock()
			events = append(events, kind+" "+i.State)
			mu.Unlock()
			done <- struct{}{}
		}
	}
	e := newEnv(t, Options{BootDelay: 30 * time.Second, ShutdownDelay: 10 * time.Second, OnLaunch: hook("launch"), OnTerminate: hook("terminate")})
	ctx := context.Background()
	cl := e.client("us-east-1")
	out, err := cl.CreateFleet(ctx, fleetInput(1, "on-demand"))
	if err != nil {
		t.Fatal(err)
	}
	id := fleetIDs(out)[0]
	if info, _ := e.sim.Instance(id); info.State != StatePending {
		t.Fatalf("want pending, got %s", info.State)
	}
	e.clock.Add(30 * time.Second)
	e.sim.Advance()
	<-done
	if _, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.sim.Instance(id); info.State != StateShuttingDown {
		t.Fatalf("want shutting-down, got %s", info.State)
	}
	e.clock.Add(10 * time.Second)
	e.sim.Advance()
	<-done
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(events)
	if strings.Join(events, ",") != "launch running,terminate terminated" {
		t.Fatalf("hook events %v", events)
	}
}

func TestFaultInjection(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	cl := e.client("us-east-1")
	if err := e.sim.InjectFault(Fault{Action: "DescribeInstances", Rate: 1, Code: "Unavailable", Count: 2}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		if apiCode(t, err) != "Unavailable" || httpStatus(err) != 503 {
			t.Fatalf("fault: %v", err)
		}
	}
	if _, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatalf("fault should be spent after Count calls: %v", err)
	}
	c := e.sim.Counters()["DescribeInstances"]
	if c.Total != 3 || c.Faulted != 2 || c.Errors["Unavailable"] != 2 {
		t.Fatalf("counters %+v", c)
	}
}

func TestThrottled(t *testing.T) {
	e := newEnv(t, Options{Throttle: throttleFunc(func(a string) bool { return a != "TerminateInstances" })})
	cl := e.client("us-east-1")
	_, err := cl.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	if apiCode(t, err) != "RequestLimitExceeded" || httpStatus(err) != 503 {
		t.Fatalf("throttle: %v", err)
	}
	if c := e.sim.Counters()["TerminateInstances"]; c.Throttled != 1 {
		t.Fatalf("counters %+v", c)
	}
	// The SDK's standard retryer treats it as a throttle and retries.
	retrying := e.clientAs("us-east-1", "AKID", "s",
		retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2; o.MaxBackoff = time.Millisecond }))
	_, _ = retrying.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	if c := e.sim.Counters()["TerminateInstances"]; c.Throttled != 3 {
		t.Fatalf("retry of a throttled call not seen: %+v", c)
	}
}

// Large answers over loopback reach the test's SDK clients whole: the whole catalog (tens of
// kilobytes) a hundred times in a row. With the SDK's own HTTP client an answer was lost to a
// closed connection within the first few calls (see ownBodyTransport).
func TestLargeAnswersReachTheClient(t *testing.T) {
	e := newEnv(t, Options{})
	cl := e.client("us-east-1")
	for i := range 100 {
		out, err := cl.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{})
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if len(out.InstanceTypes) != len(builtinInstanceTypes()) {
			t.Fatalf("call %d: %d types, want %d", i+1, len(out.InstanceTypes), len(builtinInstanceTypes()))
		}
	}
}
