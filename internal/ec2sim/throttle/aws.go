package throttle

import "strings"

// Request-rate classes. An uncategorized action (one the documentation gives its own bucket) is
// classified as its own name, so Config.Request is keyed by both class names and action names.
const (
	ClassNonMutating           = "non-mutating"
	ClassUnfilteredNonMutating = "unfiltered-non-mutating"
	ClassMutating              = "mutating"
	ClassResourceIntensive     = "resource-intensive"
	ClassConsoleNonMutating    = "console-non-mutating"
)

// AWS returns EC2's documented throttling configuration, from "Request throttling for the Amazon
// EC2 API" (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). EC2 keeps one
// bucket per API action (per account and Region); the category only sets that bucket's size.
//
// Request token bucket sizes and refill rates, by category:
//
//	| API action category                             | Actions                                       | Capacity | Refill/s |
//	|-------------------------------------------------|-----------------------------------------------|----------|----------|
//	| Non-mutating actions                            | Describe*, List*, Search*, Get* not elsewhere |      100 |       20 |
//	| Unfiltered and unpaginated non-mutating actions | DescribeInstances, DescribeInstanceStatus,    |       50 |       10 |
//	|   (only when called without a filter and       |   DescribeNetworkInterfaces,                  |          |          |
//	|    without pagination)                          |   DescribeSecurityGroups, DescribeSnapshots,  |          |          |
//	|                                                 |   DescribeSpotInstanceRequests, DescribeVolumes|         |          |
//	| Mutating actions                                | all other mutating actions                    |       50 |        5 |
//	| Resource-intensive actions                      | AcceptVpcPeeringConnection,                   |       50 |        5 |
//	|                                                 |   AuthorizeSecurityGroupIngress,              |          |          |
//	|                                                 |   CancelSpotInstanceRequests, CreateKeyPair,  |          |          |
//	|                                                 |   CreateVpcPeeringConnection,                 |          |          |
//	|                                                 |   DeleteVpcPeeringConnection,                 |          |          |
//	|                                                 |   RejectVpcPeeringConnection,                 |          |          |
//	|                                                 |   RevokeSecurityGroupIngress,                 |          |          |
//	|                                                 |   RequestSpotInstances                        |          |          |
//	| Console non-mutating actions                    | non-mutating calls made by the EC2 console    |      100 |       10 |
//
// Uncategorized actions (their own bucket sizes) are listed in uncategorized below; the ones that
// matter to slurm-ec2 are RunInstances 5/2, TerminateInstances 100/5, CreateTags 100/10,
// DeleteTags 100/10, StartInstances 5/2. CreateFleet and DescribeLaunchTemplates are not listed,
// so they fall in the mutating (50/5) and non-mutating (100/20) categories.
//
// Resource token bucket sizes and refill rates (tokens are resources, e.g. instances):
//
//	| API action         | Capacity | Refill/s |
//	|--------------------|----------|----------|
//	| RunInstances       |     1000 |        2 |
//	| TerminateInstances |     1000 |       20 |
//	| StartInstances     |     1000 |        2 |
//	| StopInstances      |     1000 |       20 |
//
// The documentation does not list CreateFleet under resource rate limiting. This emulator assumes
// that instances launched by an instant fleet draw on the same "instances launched" bucket as
// RunInstances (ResourceKey maps CreateFleet to RunInstances): an assumption, stated here so the
// benchmark report can say so.
func AWS() Config {
	req := map[string]Bucket{
		ClassNonMutating:           {Capacity: 100, RefillPerSecond: 20},
		ClassUnfilteredNonMutating: {Capacity: 50, RefillPerSecond: 10},
		ClassMutating:              {Capacity: 50, RefillPerSecond: 5},
		ClassResourceIntensive:     {Capacity: 50, RefillPerSecond: 5},
		ClassConsoleNonMutating:    {Capacity: 100, RefillPerSecond: 10},
	}
	for action, b := range uncategorized {
		req[action] = b
	}
	return Config{
		Request:  req,
		Classify: ClassifyAWS,
		Resource: map[string]Bucket{
			"RunInstances":       {Capacity: 1000, RefillPerSecond: 2},
			"TerminateInstances": {Capacity: 1000, RefillPerSecond: 20},
			"StartInstances":     {Capacity: 1000, RefillPerSecond: 2},
			"StopInstances":      {Capacity: 1000, RefillPerSecond: 20},
		},
		ResourceKey: func(action string) string {
			if action == "CreateFleet" {
				return "RunInstances"
			}
			return action
		},
		Unfiltered: map[string]bool{
			"DescribeInstances":            true,
			"DescribeInstanceStatus":       true,
			"DescribeNetworkInterfaces":    true,
			"DescribeSecurityGroups":       true,
			"DescribeSnapshots":            true,
			"DescribeSpotInstanceRequests": true,
			"DescribeVolumes":              true,
		},
	}
}

// ClassifyAWS maps an action to its documented request-rate class: the action's own name when it
// is uncategorized, else resource-intensive, non-mutating (Describe*, List*, Search*, Get*) or
// mutating. Unfiltered calls are handled by Config.Unfiltered, not here.
func ClassifyAWS(action string) string {
	if _, ok := uncategorized[action]; ok {
		return action
	}
	if resourceIntensive[action] {
		return ClassResourceIntensive
	}
	for _, p := range []string{"Describe", "List", "Search", "Get"} {
		if strings.HasPrefix(action, p) {
			return ClassNonMutating
		}
	}
	return ClassMutating
}

var resourceIntensive = map[string]bool{
	"AcceptVpcPeeringConnection":    true,
	"AuthorizeSecurityGroupIngress": true,
	"CancelSpotInstanceRequests":    true,
	"CreateKeyPair":                 true,
	"CreateVpcPeeringConnection":    true,
	"DeleteVpcPeeringConnection":    true,
	"RejectVpcPeeringConnection":    true,
	"RevokeSecurityGroupIngress":    true,
	"RequestSpotInstances":          true,
}

// uncategorized is the documentation's "Uncategorized actions" table: actions with their own
// request bucket capacity and refill rate (tokens per second).
var uncategorized = map[string]Bucket{
	"AcceptVpcEndpointConnections":                        {10, 1},
	"AdvertiseByoipCidr":                                  {1, 0.1},
	"AssignIpv6Addresses":                                 {100, 5},
	"AssignPrivateIpAddresses":                            {100, 5},
	"AssignPrivateNatGatewayAddress":                      {10, 1},
	"AssociateCapacityReservationBillingOwner":            {1, 0.5},
	"AssociateEnclaveCertificateIamRole":                  {10, 1},
	"AssociateIamInstanceProfile":                         {100, 5},
	"AssociateNatGatewayAddress":                          {10, 1},
	"AttachVerifiedAccessTrustProvider":                   {10, 2},
	"AuthorizeClientVpnIngress":                           {5, 2},
	"CancelDeclarativePoliciesReport":                     {1, 1},
	"CopyImage":                                           {100, 1},
	"CreateClientVpnRoute":                                {5, 2},
	"CreateCoipCidr":                                      {5, 1},
	"CreateCoipPool":                                      {5, 1},
	"CreateDefaultSubnet":                                 {1, 1},
	"CreateDefaultVpc":                                    {1, 1},
	"CreateLaunchTemplateVersion":                         {100, 5},
	"CreateNatGateway":                                    {10, 1},
	"CreateNetworkInterface":                              {100, 5},
	"CreateRestoreImageTask":                              {50, 0.1},
	"CreateSnapshot":                                      {100, 5},
	"CreateSnapshots":                                     {100, 5},
	"CreateSpotDatafeedSubscription":                      {50, 3},
	"CreateStoreImageTask":                                {50, 0.1},
	"CreateSubnetCidrReservation":                         {5, 1},
	"CreateTags":                                          {100, 10},
	"CreateVerifiedAccessEndpoint":                        {20, 4},
	"CreateVerifiedAccessGroup":                           {10, 2},
	"CreateVerifiedAccessInstance":                        {10, 2},
	"CreateVerifiedAccessTrustProvider":                   {10, 2},
	"CreateVolume":                                        {100, 5},
	"CreateVpcEndpoint":                                   {4, 0.3},
	"CreateVpcEndpointServiceConfiguration":               {10, 1},
	"DeleteClientVpnRoute":                                {5, 2},
	"DeleteCoipCidr":                                      {5, 1},
	"DeleteCoipPool":                                      {5, 1},
	"DeleteCoipPoolPermission":                            {5, 1},
	"DeleteNatGateway":                                    {10, 1},
	"DeleteNetworkInterface":                              {100, 5},
	"DeleteSnapshot":                                      {100, 5},
	"DeleteSpotDatafeedSubscription":                      {50, 3},
	"DeleteSubnetCidrReservation":                         {5, 1},
	"DeleteQueuedReservedInstances":                       {5, 5},
	"DeleteTags":                                          {100, 10},
	"DeleteVerifiedAccessEndpoint":                        {20, 4},
	"DeleteVerifiedAccessGroup":                           {10, 2},
	"DeleteVerifiedAccessInstance":                        {10, 2},
	"DeleteVerifiedAccessTrustProvider":                   {10, 2},
	"DeleteVolume":                                        {100, 5},
	"DeleteVpcEndpoints":                                  {4, 0.3},
	"DeleteVpcEndpointServiceConfigurations":              {10, 1},
	"DeprovisionByoipCidr":                                {1, 0.1},
	"DeregisterImage":                                     {100, 5},
	"DescribeAggregateIdFormat":                           {10, 10},
	"DescribeByoipCidrs":                                  {1, 0.5},
	"DescribeCapacityBlockExtensionOfferings":             {10, 0.15},
	"DescribeCapacityBlockOfferings":                      {10, 0.15},
	"DescribeDeclarativePoliciesReports":                  {5, 5},
	"DescribeHostReservations":                            {5, 2},
	"DescribeHostReservationOfferings":                    {5, 2},
	"DescribeIdentityIdFormat":                            {10, 10},
	"DescribeIdFormat":                                    {10, 10},
	"DescribeInstanceTopology":                            {1, 1},
	"DescribeMovingAddresses":                             {1, 1},
	"DescribePrincipalIdFormat":                           {10, 10},
	"DescribeReservedInstancesOfferings":                  {10, 10},
	"DescribeSecurityGroupReferences":                     {20, 5},
	"DescribeSpotDatafeedSubscription":                    {100, 13},
	"DescribeSpotFleetInstances":                          {100, 5},
	"DescribeSpotFleetRequestHistory":                     {100, 5},
	"DescribeSpotFleetRequests":                           {50, 3},
	"DescribeStaleSecurityGroups":                         {20, 5},
	"DescribeStoreImageTasks":                             {50, 0.5},
	"DescribeVerifiedAccessInstanceLoggingConfigurations": {10, 2},
	"DetachVerifiedAccessTrustProvider":                   {10, 2},
	"DisableFastLaunch":                                   {5, 2},
	"DisableImageBlockPublicAccess":                       {1, 0.1},
	"DisableSnapshotBlockPublicAccess":                    {1, 0.1},
	"DisassociateCapacityReservationBillingOwner":         {1, 0.5},
	"DisassociateEnclaveCertificateIamRole":               {10, 1},
	"DisassociateIamInstanceProfile":                      {100, 5},
	"DisassociateNatGatewayAddress":                       {10, 1},
	"EnableFastLaunch":                                    {5, 2},
	"EnableImageBlockPublicAccess":                        {1, 0.1},
	"EnableSnapshotBlockPublicAccess":                     {1, 0.1},
	"GetAssociatedEnclaveCertificateIamRoles":             {10, 1},
	"GetDeclarativePoliciesReportSummary":                 {5, 5},
	"GetHostReservationPurchasePreview":                   {5, 2},
	"ModifyImageAttribute":                                {100, 5},
	"ModifyInstanceMetadataDefaults":                      {2, 2},
	"ModifyInstanceMetadataOptions":                       {100, 5},
	"ModifyLaunchTemplate":                                {100, 5},
	"ModifyNetworkInterfaceAttribute":                     {100, 5},
	"ModifySnapshotAttribute":                             {100, 5},
	"ModifyVerifiedAccessEndpoint":                        {20, 4},
	"ModifyVerifiedAccessEndpointPolicy":                  {20, 4},
	"ModifyVerifiedAccessGroup":                           {10, 2},
	"ModifyVerifiedAccessGroupPolicy":                     {20, 4},
	"ModifyVerifiedAccessInstance":                        {10, 2},
	"ModifyVerifiedAccessInstanceLoggingConfiguration":    {10, 2},
	"ModifyVerifiedAccessTrustProvider":                   {10, 2},
	"ModifyVpcEndpoint":                                   {4, 0.3},
	"ModifyVpcEndpointServiceConfiguration":               {10, 1},
	"MoveAddressToVpc":                                    {1, 1},
	"ProvisionByoipCidr":                                  {1, 0.1},
	"PurchaseCapacityBlock":                               {10, 0.15},
	"PurchaseCapacityBlockExtension":                      {10, 0.15},
	"PurchaseHostReservation":                             {5, 2},
	"PurchaseReservedInstancesOffering":                   {5, 5},
	"RejectVpcEndpointConnections":                        {10, 1},
	"RestoreAddressToClassic":                             {1, 1},
	"RevokeClientVpnIngress":                              {5, 2},
	"RunInstances":                                        {5, 2},
	"StartDeclarativePoliciesReport":                      {1, 1},
	"StartInstances":                                      {5, 2},
	"TerminateInstances":                                  {100, 5},
	"UnassignPrivateIpAddresses":                          {100, 5},
	"UnassignPrivateNatGatewayAddress":                    {10, 1},
	"WithdrawByoipCidr":                                   {1, 0.1},
}
