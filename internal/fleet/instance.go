package fleet

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tag keys set on every instance we launch (DESIGN.md: contracts).
const (
	TagCluster   = "slurm-ec2:cluster"    // ClusterName: scopes everything we own
	TagNodeGroup = "slurm-ec2:node-group" // <partition>-<nodegroup>
	TagName      = "Name"                 // the Slurm node name, set after launch
	// TagLaunchedFor is the hostlist of the nodes a fleet was launched for (at launch, when it
	// fits a tag value): reconcile's clue to nodes left waiting by a resume that died.
	TagLaunchedFor = "slurm-ec2:launched-for"
)

// Instance is what slurm-ec2 needs to know of an EC2 instance.
type Instance struct {
	ID          string
	Region      string
	Type        string
	AZ          string
	SubnetID    string
	PrivateIP   string
	PrivateDNS  string
	Lifecycle   string // "spot" or "on-demand"
	State       string // pending, running, shutting-down, terminated, stopping, stopped
	StateReason string // EC2's state reason code, e.g. Server.SpotInstanceTermination
	LaunchTime  time.Time
	Tags        map[string]string
}

// Node is the Slurm node this instance was named for (its Name tag), or "".
func (i Instance) Node() string { return i.Tags[TagName] }

// Group is the node group tag.
func (i Instance) Group() string { return i.Tags[TagNodeGroup] }

// Live reports whether the instance exists and costs money: everything but shutting-down and
// terminated.
func (i Instance) Live() bool { return i.State != "shutting-down" && i.State != "terminated" }

// LiveStates are the instance-state-name filter values for live instances.
var LiveStates = []string{"pending", "running", "stopping", "stopped"}

func fromSDK(region string, in types.Instance) Instance {
	out := Instance{
		ID:         aws.ToString(in.InstanceId),
		Region:     region,
		Type:       string(in.InstanceType),
		SubnetID:   aws.ToString(in.SubnetId),
		PrivateIP:  aws.ToString(in.PrivateIpAddress),
		PrivateDNS: aws.ToString(in.PrivateDnsName),
		Lifecycle:  "on-demand",
		LaunchTime: aws.ToTime(in.LaunchTime),
		Tags:       make(map[string]string, len(in.Tags)),
	}
	if in.InstanceLifecycle != "" {
		out.Lifecycle = string(in.InstanceLifecycle)
	}
	if in.Placement != nil {
		out.AZ = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.StateReason != nil {
		out.StateReason = aws.ToString(in.StateReason.Code)
	}
	for _, t := range in.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}
