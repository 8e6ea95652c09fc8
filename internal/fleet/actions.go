package fleet

// HeadNodeActions are the EC2 API actions slurm-ec2 calls from the head node (resume, suspend,
// resume-fail, reconcile, status, validate --aws). The IAM policy generator builds its policy from
// this list, and TestEveryCallIsListed checks that every method of EC2API and ConsoleAPI, the
// interfaces through which the code calls EC2, is listed here.
var HeadNodeActions = []string{
	"CreateFleet",
	"RunInstances", // CreateFleet launches through RunInstances and needs the permission
	"CreateTags",
	"DescribeInstances",
	"TerminateInstances",
	"DescribeLaunchTemplates",
	"DescribeLaunchTemplateVersions",
	"DescribeSubnets",
	"DescribeSpotInstanceRequests", // reconcile: spot interruption notices
	"DescribeInstanceStatus",       // reconcile and status: scheduled events and failed status checks
	"DescribeRegions",              // reconcile/status --all-regions: the regions to sweep
	"DescribeInstanceTypes",        // generate-conf, validate --aws: nodes described from their types
	"GetConsoleOutput",             // resume-fail, reconcile: the console of an instance that never booted
}

// ComputeNodeActions are the EC2 API actions `slurm-ec2 nodename` may call on a compute node when
// instance metadata tags are not enabled.
var ComputeNodeActions = []string{
	"DescribeTags",
}

// TaggedActions are the head-node actions that act on existing instances; the IAM policy allows them
// only on instances that carry this cluster's tag.
var TaggedActions = []string{"TerminateInstances", "CreateTags", "GetConsoleOutput"}
