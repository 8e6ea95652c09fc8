package fleet

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// MaxFleetTarget is the largest TotalTargetCapacity we put in one instant CreateFleet. An instant
// fleet answers synchronously with every instance id; we keep one answer to at most 1,000
// instances, the same bound EC2 puts on one TerminateInstances or DescribeInstances page, so one
// launch maps onto one describe and one terminate batch.
const MaxFleetTarget = 1000

// LaunchBatch is the size resume aims at for one instant CreateFleet when a node group needs more
// instances: they are split into the fewest fleets of at most LaunchBatch, equal in size, sent
// together. An instant fleet answers once every instance in it is placed, and nothing can follow
// before that answer: not Slurm's addresses (DescribeInstances by id), not the Name tags a booting
// node waits for. A smaller fleet answers sooner (ec2sim's latency model, internal/ec2sim/latency:
// 2.5 s plus 25 ms per instance, so 8.75 s for 250 against 27.5 s for 1,000; a model, not a
// measurement of EC2). More fleets cost CreateFleet request tokens (the mutating-actions bucket:
// 50, then 5 a second per account and Region; "Request throttling for the Amazon EC2 API"): at 250
// a 10,000-node resume is 40 calls, within the bucket. Jobs that need all their nodes or none
// keep one fleet of up to MaxFleetTarget.
const LaunchBatch = 250

// SplitLaunch splits n instances into the fewest fleets of at most LaunchBatch, equal in size to
// within one, larger first.
func SplitLaunch(n int) []int {
	if n <= 0 {
		return nil
	}
	k := (n + LaunchBatch - 1) / LaunchBatch
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// launchAttempts bounds the SDK's tries of one CreateFleet (the first included).
const launchAttempts = 4

// LaunchSpec is one instant fleet for one node group.
type LaunchSpec struct {
	Group           string // <partition>-<nodegroup>, for logs
	Spot            bool   // PurchasingOption spot
	OnDemandOptions *types.OnDemandOptionsRequest
	SpotOptions     *types.SpotOptionsRequest
	Template        types.FleetLaunchTemplateSpecificationRequest
	Overrides       []types.FleetLaunchTemplateOverridesRequest // without SubnetId
	SubnetIDs       []string
	Tags            []types.Tag // set on every instance at launch
	Count           int
	// AllOrNothing asks EC2 for Count instances or none (MinTargetCapacity = Count).
	AllOrNothing bool
	// ClientToken makes the request idempotent: the SDK's retries of one call never launch twice.
	ClientToken string
}

// LaunchError is one failed override of a fleet (EC2 lists one per pool it could not use).
type LaunchError struct {
	Code, Message          string
	InstanceType, SubnetID string
	AZ                     string
	Lifecycle              string
}

// LaunchResult is what one CreateFleet gave.
type LaunchResult struct {
	FleetID     string
	InstanceIDs []string
	Errors      []LaunchError
}

// BuildCreateFleetInput turns a spec into the CreateFleet request: every override crossed with
// every subnet (the spec's rule: overrides carry no SubnetId), the group's On-Demand/Spot options,
// identity tags at launch, Type instant.
func BuildCreateFleetInput(s LaunchSpec) *ec2.CreateFleetInput {
	overrides := s.Overrides
	if len(overrides) == 0 {
		overrides = []types.FleetLaunchTemplateOverridesRequest{{}}
	}
	var crossed []types.FleetLaunchTemplateOverridesRequest
	for _, o := range overrides {
		for _, subnet := range s.SubnetIDs {
			c := o
			c.SubnetId = aws.String(subnet)
			crossed = append(crossed, c)
		}
	}
	tmpl := s.Template
	capType := types.DefaultTargetCapacityTypeOnDemand
	if s.Spot {
		capType = types.DefaultTargetCapacityTypeSpot
	}
	in := &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &tmpl,
			Overrides:                   crossed,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(int32(s.Count)),
			DefaultTargetCapacityType: capType,
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: s.Tags}},
	}
	if s.ClientToken != "" {
		in.ClientToken = aws.String(s.ClientToken)
	}
	if s.OnDemandOptions != nil {
		o := *s.OnDemandOptions
		in.OnDemandOptions = &o
	}
	if s.SpotOptions != nil {
		o := *s.SpotOptions
		in.SpotOptions = &o
	}
	if s.AllOrNothing {
		// EC2 honours MinTargetCapacity only with SingleInstanceType or SingleAvailabilityZone;
		// one AZ is what a tightly coupled job wants anyway, unless the admin chose otherwise.
		if s.Spot {
			if in.SpotOptions == nil {
				in.SpotOptions = &types.SpotOptionsRequest{}
			}
			in.SpotOptions.MinTargetCapacity = aws.Int32(int32(s.Count))
			if !aws.ToBool(in.SpotOptions.SingleInstanceType) && !aws.ToBool(in.SpotOptions.SingleAvailabilityZone) {
				in.SpotOptions.SingleAvailabilityZone = aws.Bool(true)
			}
		} else {
			if in.OnDemandOptions == nil {
				in.OnDemandOptions = &types.OnDemandOptionsRequest{}
			}
			in.OnDemandOptions.MinTargetCapacity = aws.Int32(int32(s.Count))
			if !aws.ToBool(in.OnDemandOptions.SingleInstanceType) && !aws.ToBool(in.OnDemandOptions.SingleAvailabilityZone) {
				in.OnDemandOptions.SingleAvailabilityZone = aws.Bool(true)
			}
		}
	}
	return in
}

// Launch runs one instant CreateFleet. A returned error means the call failed as a whole (after
// the SDK's retries); partial fulfilment is not an error: it is in LaunchResult.Errors.
func Launch(ctx context.Context, api EC2API, s LaunchSpec) (LaunchResult, error) {
	if s.Count < 1 || s.Count > MaxFleetTarget {
		return LaunchResult{}, fmt.Errorf("launching %s: %d instances asked, want 1..%d per fleet", s.Group, s.Count, MaxFleetTarget)
	}
	out, err := api.CreateFleet(ctx, BuildCreateFleetInput(s), func(o *ec2.Options) {
		// A throttled instant fleet usually waits for EC2's launch budget (instances per
		// second), not its request rate: the caller splits it or waits, better than a dozen
		// quick retries of the same request.
		o.RetryMaxAttempts = launchAttempts
	})
	if err != nil {
		return LaunchResult{}, fmt.Errorf("creating instant fleet of %d for %s: %w", s.Count, s.Group, err)
	}
	res := LaunchResult{FleetID: aws.ToString(out.FleetId)}
	for _, fi := range out.Instances {
		res.InstanceIDs = append(res.InstanceIDs, fi.InstanceIds...)
	}
	for _, fe := range out.Errors {
		le := LaunchError{
			Code:      aws.ToString(fe.ErrorCode),
			Message:   aws.ToString(fe.ErrorMessage),
			Lifecycle: string(fe.Lifecycle),
		}
		if lo := fe.LaunchTemplateAndOverrides; lo != nil && lo.Overrides != nil {
			le.InstanceType = string(lo.Overrides.InstanceType)
			le.SubnetID = aws.ToString(lo.Overrides.SubnetId)
			le.AZ = aws.ToString(lo.Overrides.AvailabilityZone)
		}
		res.Errors = append(res.Errors, le)
	}
	return res, nil
}

// TokenSuffix makes a per-chunk client token from a base token.
func TokenSuffix(base string, i int) string { return base + "-" + strconv.Itoa(i) }

// FillZones sets the availability zone of launch errors that name only a subnet (EC2 echoes the
// override as sent, and we send subnets), with one DescribeSubnets call. Best effort: on failure
// the errors keep their subnet id.
func FillZones(ctx context.Context, api EC2API, errs []LaunchError) {
	var ids []string
	for _, e := range errs {
		if e.AZ == "" && e.SubnetID != "" && !slices.Contains(ids, e.SubnetID) {
			ids = append(ids, e.SubnetID)
		}
	}
	if len(ids) == 0 {
		return
	}
	out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ids})
	if err != nil {
		return
	}
	zone := map[string]string{}
	for _, sn := range out.Subnets {
		zone[aws.ToString(sn.SubnetId)] = aws.ToString(sn.AvailabilityZone)
	}
	for i := range errs {
		if errs[i].AZ == "" {
			errs[i].AZ = zone[errs[i].SubnetID]
		}
	}
}
