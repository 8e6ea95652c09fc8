package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

func spec(n int) fleet.LaunchSpec {
	return fleet.LaunchSpec{
		Group:     "aws-spot",
		Spot:      true,
		Template:  types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String("template-name"), Version: aws.String("$Latest")},
		Overrides: []types.FleetLaunchTemplateOverridesRequest{{InstanceType: "c5.xlarge"}, {InstanceType: "c4.xlarge"}},
		SubnetIDs: []string{"subnet-11111111", "subnet-22222222"},
		Tags:      []types.Tag{fleet.T(fleet.TagCluster, "c1"), fleet.T(fleet.TagNodeGroup, "aws-spot")},
		Count:     n,
	}
}

func TestBuildCreateFleetInput(t *testing.T) {
	in := fleet.BuildCreateFleetInput(spec(3))
	if in.Type != types.FleetTypeInstant {
		t.Errorf("type %s", in.Type)
	}
	ov := in.LaunchTemplateConfigs[0].Overrides
	if len(ov) != 4 {
		t.Fatalf("%d overrides, want 2 types x 2 subnets", len(ov))
	}
	seen := map[string]bool{}
	for _, o := range ov {
		seen[string(o.InstanceType)+"/"+aws.ToString(o.SubnetId)] = true
	}
	for _, k := range []string{"c5.xlarge/subnet-11111111", "c5.xlarge/subnet-22222222", "c4.xlarge/subnet-11111111", "c4.xlarge/subnet-22222222"} {
		if !seen[k] {
			t.Errorf("missing override %s", k)
		}
	}
	if in.TargetCapacitySpecification.DefaultTargetCapacityType != types.DefaultTargetCapacityTypeSpot || aws.ToInt32(in.TargetCapacitySpecification.TotalTargetCapacity) != 3 {
		t.Errorf("target %+v", in.TargetCapacitySpecification)
	}
	s := spec(64)
	s.AllOrNothing = true
	in = fleet.BuildCreateFleetInput(s)
	if aws.ToInt32(in.SpotOptions.MinTargetCapacity) != 64 || !aws.ToBool(in.SpotOptions.SingleAvailabilityZone) {
		t.Errorf("all-or-nothing spot options %+v", in.SpotOptions)
	}
	// The spec is not modified (options are copied).
	od := &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyLowestPrice}
	s = spec(2)
	s.Spot, s.OnDemandOptions, s.AllOrNothing = false, od, true
	in = fleet.BuildCreateFleetInput(s)
	if od.MinTargetCapacity != nil || aws.ToInt32(in.OnDemandOptions.MinTargetCapacity) != 2 {
		t.Errorf("on-demand options: config %+v, request %+v", od, in.OnDemandOptions)
	}
}

func client(t *testing.T, sim *ec2sim.Sim) fleet.EC2API {
	t.Helper()
	return simClient(t, sim, fleet.Options{})
}

func TestLaunchDescribeTerminateOverTheWire(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{Seed: 7})
	api := client(t, sim)
	ctx := context.Background()
	res, err := fleet.Launch(ctx, api, spec(450))
	if err != nil || len(res.InstanceIDs) != 450 || len(res.Errors) != 0 {
		t.Fatalf("launch: %v, %d instances, errors %v", err, len(res.InstanceIDs), res.Errors)
	}
	insts, err := fleet.DescribeIDs(ctx, api, "us-east-1", res.InstanceIDs, 0)
	if err != nil || len(insts) != 450 {
		t.Fatalf("describe ids: %v, %d", err, len(insts))
	}
	for _, in := range insts {
		if in.Lifecycle != "spot" || in.PrivateIP == "" || in.Group() != "aws-spot" || in.Tags[fleet.TagCluster] != "c1" {
			t.Fatalf("instance %+v", in)
		}
	}
	// More Name values than one filter takes: split into several queries, merged.
	var names []string
	for i := range 450 {
		names = append(names, fmt.Sprintf("n-%d", i))
	}
	sets := make([]fleet.TagSet, 450)
	for i, in := range insts {
		sets[i] = fleet.TagSet{InstanceIDs: []string{in.ID}, Tags: []types.Tag{fleet.T(fleet.TagName, names[i])}}
	}
	if failed, err := fleet.ApplyTags(ctx, api, sets, fleet.NewTagLimiter(5000)); err != nil {
		t.Fatalf("tags: %v (%d failed)", err, len(failed))
	}
	sim.ResetCounters()
	got, err := fleet.Describe(ctx, api, "us-east-1", fleet.Filter{Name: "tag:" + fleet.TagName, Values: names})
	if err != nil || len(got) != 450 {
		t.Fatalf("describe by 450 names: %v, %d", err, len(got))
	}
	if n := sim.Counters()["DescribeInstances"].Total; n != 3 {
		t.Errorf("DescribeInstances calls = %d, want 3 (200 values per filter)", n)
	}
	// One unknown id in a batch: EC2 refuses the whole call; the rest are still terminated.
	ids := append([]string{"i-0123456789abcdef0"}, res.InstanceIDs...)
	done, unknown, err := fleet.Terminate(ctx, api, "us-east-1", ids)
	if err != nil || len(done) != 450 || len(unknown) != 1 || unknown[0] != "i-0123456789abcdef0" {
		t.Fatalf("terminate: err %v, done %d, unknown %v", err, len(done), unknown)
	}
	for _, in := range sim.Instances("us-east-1") {
		if in.State == "running" || in.State == "pending" {
			t.Fatalf("%s still %s", in.InstanceID, in.State)
		}
	}
}

func TestLaunchRefusesOutOfRangeCounts(t *testing.T) {
	for _, n := range []int{0, fleet.MaxFleetTarget + 1} {
		if _, err := fleet.Launch(context.Background(), nil, spec(n)); err == nil {
			t.Errorf("count %d accepted", n)
		}
	}
}

// TestLargeAnswersCostOneRequest: every call reaches ec2sim once. Without OwnBody, an SDK race
// closes the connection under a large answer now and then, and the retryer sends the request
// again (see OwnBody): 200 whole-catalog DescribeInstanceTypes counted 201 requests in 3 runs of 3.
func TestLargeAnswersCostOneRequest(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{Seed: 7})
	api := client(t, sim)
	const calls = 200
	for i := range calls {
		if _, err := api.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{}); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if got := sim.Counters()["DescribeInstanceTypes"].Total; got != calls {
		t.Errorf("ec2sim counted %d DescribeInstanceTypes requests for %d calls", got, calls)
	}
}

// TestDescribeCountsEveryFilterValue: EC2 limits the values of all filters of one call together
// (FilterLimitExceeded past 200). 200 names beside the cluster filter used to be sent in one call.
func TestDescribeCountsEveryFilterValue(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{Seed: 7})
	api := client(t, sim)
	for _, n := range []int{199, 200, 201, 450} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("n-%d", i)
		}
		_, err := fleet.Describe(context.Background(), api, "us-east-1",
			fleet.Filter{Name: "tag:" + fleet.TagCluster, Values: []string{"c1"}}, fleet.Filter{Name: "tag:" + fleet.TagName, Values: names})
		if err != nil {
			t.Errorf("%d names and the cluster filter: %v", n, err)
		}
	}
}

func TestSplitLaunch(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{0, nil},
		{1, []int{1}},
		{250, []int{250}},
		{251, []int{126, 125}},
		{300, []int{150, 150}},
		{1000, []int{250, 250, 250, 250}},
		{1001, []int{201, 200, 200, 200, 200}},
	} {
		got := fleet.SplitLaunch(tc.n)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SplitLaunch(%d) = %v, want %v", tc.n, got, tc.want)
		}
		sum := 0
		for _, c := range got {
			sum += c
			if c < 1 || c > fleet.LaunchBatch {
				t.Errorf("SplitLaunch(%d): fleet of %d, want 1..%d", tc.n, c, fleet.LaunchBatch)
			}
		}
		if sum != tc.n {
			t.Errorf("SplitLaunch(%d) sums to %d", tc.n, sum)
		}
	}
}
