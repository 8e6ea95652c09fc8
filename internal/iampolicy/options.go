package iampolicy

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// OptionGrant says which EC2 resource types one option of a node group makes CreateFleet
// authorize, so the head node policy must name them. Resources empty means the option names
// no resource (Why says so). Every field of the launch options a node group can carry is listed
// (TestEveryOptionIsClassified walks them), so a new SDK field cannot slip past the policy.
//
// Resource types and their ARN formats: Service Authorization Reference, "Actions, resources,
// and condition keys for Amazon EC2", Resource types table
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
type OptionGrant struct {
	Option    string   // e.g. "LaunchTemplateOverrides.Placement"
	Resources []string // resource types, e.g. "placement-group"
	Why       string
}

// OptionGrants classifies every option.
var OptionGrants = []OptionGrant{
	{"LaunchTemplateSpecification.LaunchTemplateId", []string{"launch-template"}, "named by ID"},
	{"LaunchTemplateSpecification.LaunchTemplateName", []string{"launch-template"}, "its ARN holds the ID: launch-template/* in the region"},
	{"LaunchTemplateSpecification.Version", nil, "a version of the same template"},
	{"LaunchTemplateSpecification.LaunchTemplateSpecificationUserData", nil, "user data, no resource"},
	{"SubnetIds", []string{"subnet"}, "each subnet by ID"},
	{"PurchasingOption", []string{"spot-instances-request"}, "spot-instances-request/* for every group"},
	{"Tags", nil, "tags on the launch: the TagAtLaunch statement"},

	{"LaunchTemplateOverrides.AvailabilityZone", nil, "a zone is not a resource"},
	{"LaunchTemplateOverrides.AvailabilityZoneId", nil, "a zone is not a resource"},
	{"LaunchTemplateOverrides.BlockDeviceMappings", []string{"volume", "snapshot"}, "volumes, created from snapshots"},
	{"LaunchTemplateOverrides.IamInstanceProfile", nil, "iam:PassRole is granted for the compute role only: the profile must hold it"},
	{"LaunchTemplateOverrides.ImageId", []string{"image"}, "AMIs of any owner: image/* (no account in the ARN)"},
	{"LaunchTemplateOverrides.InstanceRequirements", nil, "attributes, no resource"},
	{"LaunchTemplateOverrides.InstanceType", nil, "ec2:InstanceType is a condition, not a resource"},
	{"LaunchTemplateOverrides.KeyName", []string{"key-pair"}, "the key pair by name"},
	{"LaunchTemplateOverrides.MaxPrice", nil, "a price"},
	{"LaunchTemplateOverrides.MetadataOptions", nil, "instance settings"},
	{"LaunchTemplateOverrides.Placement", []string{"placement-group", "dedicated-host"}, "a placement group by name, or a Dedicated Host"},
	{"LaunchTemplateOverrides.Priority", nil, "an order"},
	{"LaunchTemplateOverrides.SubnetId", []string{"subnet"}, "refused by validate (SubnetIds holds subnets), granted if present"},
	{"LaunchTemplateOverrides.WeightedCapacity", nil, "a number"},

	{"OnDemandOptions.AllocationStrategy", nil, "a strategy"},
	{"OnDemandOptions.CapacityReservationOptions", []string{"capacity-reservation"}, "launches into open or targeted Capacity Reservations"},
	{"OnDemandOptions.MaxTotalPrice", nil, "a price"},
	{"OnDemandOptions.MinTargetCapacity", nil, "a number"},
	{"OnDemandOptions.SingleAvailabilityZone", nil, "a flag"},
	{"OnDemandOptions.SingleInstanceType", nil, "a flag"},

	{"SpotOptions.AllocationStrategy", nil, "a strategy"},
	{"SpotOptions.InstanceInterruptionBehavior", nil, "a behaviour"},
	{"SpotOptions.InstancePoolsToUseCount", nil, "a number"},
	{"SpotOptions.MaintenanceStrategies", nil, "capacity rebalancing launches through the same fleet"},
	{"SpotOptions.MaxTotalPrice", nil, "a price"},
	{"SpotOptions.MinTargetCapacity", nil, "a number"},
	{"SpotOptions.SingleAvailabilityZone", nil, "a flag"},
	{"SpotOptions.SingleInstanceType", nil, "a flag"},
}

// GroupFrom is the part of a configured node group that shapes the policy: its region,
// launch template, subnets, and the resources its options name.
func GroupFrom(g *config.NodeGroup) Group {
	ig := Group{
		Region:             g.Region,
		LaunchTemplateID:   aws.ToString(g.LaunchTemplateSpecification.LaunchTemplateId),
		LaunchTemplateName: aws.ToString(g.LaunchTemplateSpecification.LaunchTemplateName),
		SubnetIDs:          append([]string(nil), g.SubnetIds...),
	}
	for _, o := range g.LaunchTemplateOverrides {
		if s := aws.ToString(o.SubnetId); s != "" {
			ig.SubnetIDs = append(ig.SubnetIDs, s)
		}
		if p := o.Placement; p != nil {
			switch {
			case aws.ToString(p.GroupName) != "":
				ig.Resources = append(ig.Resources, "placement-group/"+aws.ToString(p.GroupName))
			case aws.ToString(p.GroupId) != "":
				ig.Resources = append(ig.Resources, "placement-group/*") // the ARN holds the name
			}
			switch {
			case aws.ToString(p.HostId) != "":
				ig.Resources = append(ig.Resources, "dedicated-host/"+aws.ToString(p.HostId))
			case p.Tenancy == types.TenancyHost || aws.ToString(p.HostResourceGroupArn) != "":
				ig.Resources = append(ig.Resources, "dedicated-host/*")
			}
		}
		if k := aws.ToString(o.KeyName); k != "" {
			ig.Resources = append(ig.Resources, "key-pair/"+k)
		}
		for _, b := range o.BlockDeviceMappings {
			if b.Ebs != nil && aws.ToString(b.Ebs.SnapshotId) != "" {
				ig.Resources = append(ig.Resources, "snapshot/"+aws.ToString(b.Ebs.SnapshotId))
			}
		}
	}
	if o := g.OnDemandOptions; o != nil && o.CapacityReservationOptions != nil {
		ig.Resources = append(ig.Resources, "capacity-reservation/*")
	}
	return ig
}
