package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Check is one finding of a live check of a node group against its AWS account.
type Check struct {
	Field string // JSON field of the node group the finding is about
	OK    bool
	Msg   string
}

// CheckGroup checks a node group against the account, as `validate --aws` does: the launch
// template exists, the subnets exist and lie in distinct availability zones (EC2 Fleet refuses
// duplicate pools), and the credentials may launch (CreateFleet with DryRun) and describe.
func CheckGroup(ctx context.Context, api EC2API, s LaunchSpec) []Check {
	var out []Check
	add := func(field string, ok bool, format string, args ...any) {
		out = append(out, Check{Field: field, OK: ok, Msg: fmt.Sprintf(format, args...)})
	}

	lt := &ec2.DescribeLaunchTemplatesInput{}
	name := aws.ToString(s.Template.LaunchTemplateName)
	if id := aws.ToString(s.Template.LaunchTemplateId); id != "" {
		lt.LaunchTemplateIds = []string{id}
		name = id
	} else {
		lt.LaunchTemplateNames = []string{name}
	}
	if res, err := api.DescribeLaunchTemplates(ctx, lt); err != nil {
		add("LaunchTemplateSpecification", false, "launch template %s: %s: create it in this region or fix the name/id", name, describeErr(err))
	} else if len(res.LaunchTemplates) == 0 {
		add("LaunchTemplateSpecification", false, "launch template %s not found: create it in this region or fix the name/id", name)
	} else {
		add("LaunchTemplateSpecification", true, "launch template %s exists (%s)", name, aws.ToString(res.LaunchTemplates[0].LaunchTemplateId))
	}

	if res, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: s.SubnetIDs}); err != nil {
		add("SubnetIds", false, "subnets %s: %s: check the ids exist in this region", strings.Join(s.SubnetIDs, ", "), describeErr(err))
	} else {
		zones := map[string][]string{}
		for _, sn := range res.Subnets {
			az := aws.ToString(sn.AvailabilityZone)
			zones[az] = append(zones[az], aws.ToString(sn.SubnetId))
		}
		dup := false
		for az, ids := range zones {
			if len(ids) > 1 {
				dup = true
				slices.Sort(ids)
				add("SubnetIds", false, "subnets %s are all in %s: EC2 Fleet refuses duplicate instance pools; keep one subnet per availability zone", strings.Join(ids, ", "), az)
			}
		}
		if !dup {
			add("SubnetIds", true, "%d subnet(s) in distinct availability zones", len(res.Subnets))
		}
	}

	dry := BuildCreateFleetInput(LaunchSpec{
		Group: s.Group, Spot: s.Spot, OnDemandOptions: s.OnDemandOptions, SpotOptions: s.SpotOptions,
		Template: s.Template, Overrides: s.Overrides, SubnetIDs: s.SubnetIDs, Tags: s.Tags, Count: 1,
	})
	if n := overrideCount(dry); n > MaxFleetOverrides {
		add("LaunchTemplateOverrides", false, "%d launch template overrides (%d subnets x %d instance types): CreateFleet takes at most %d; use fewer subnets or instance types, or split the group",
			n, len(s.SubnetIDs), max(1, len(s.Overrides)), MaxFleetOverrides)
	} else {
		add("LaunchTemplateOverrides", true, "%d launch template overrides (at most %d)", n, MaxFleetOverrides)
	}
	dry.DryRun = aws.Bool(true)
	if _, err := api.CreateFleet(ctx, dry); ErrorCode(err) == "DryRunOperation" {
		add("LaunchTemplateSpecification", true, "allowed to launch (CreateFleet dry run)")
	} else {
		add("LaunchTemplateSpecification", false, "CreateFleet dry run: %s: the head node's role needs ec2:CreateFleet and ec2:RunInstances (see 'slurm-ec2 iam-policy')", describeErr(err))
	}
	if _, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)}); ErrorCode(err) == "DryRunOperation" {
		add("Region", true, "allowed to describe instances")
	} else {
		add("Region", false, "DescribeInstances dry run: %s: the head node's role needs ec2:DescribeInstances", describeErr(err))
	}
	return out
}

// MaxFleetOverrides is the most launch template overrides one CreateFleet takes: "a maximum of
// 300 items is allowed across all launch templates" (FleetLaunchTemplateConfigRequest.Overrides,
// Amazon EC2 API Reference,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_FleetLaunchTemplateConfigRequest.html).
// The reference states it for fleets of type request and maintain and gives no other number for
// instant fleets, which take the same request shape; it is the only documented bound, so
// validate --aws holds instant fleets to it too.
const MaxFleetOverrides = 300

func overrideCount(in *ec2.CreateFleetInput) int {
	n := 0
	for _, c := range in.LaunchTemplateConfigs {
		n += len(c.Overrides)
	}
	return n
}

func describeErr(err error) string {
	if err == nil {
		return "no error where one was expected"
	}
	if code := ErrorCode(err); code != "RequestFailed" {
		return code
	}
	return err.Error()
}
