package ec2sim

import (
	"sort"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// Response element names follow the SDK's deserializers (service/ec2 deserializers.go).

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xPlacement struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	AvailabilityZoneID string `xml:"availabilityZoneId,omitempty"`
	Tenancy            string `xml:"tenancy"`
}

type xMetadataOptions struct {
	State                string `xml:"state"`
	HTTPTokens           string `xml:"httpTokens"`
	HTTPEndpoint         string `xml:"httpEndpoint"`
	HopLimit             int    `xml:"httpPutResponseHopLimit"`
	InstanceMetadataTags string `xml:"instanceMetadataTags"`
}

type xInstance struct {
	InstanceID            string           `xml:"instanceId"`
	ImageID               string           `xml:"imageId"`
	State                 xState           `xml:"instanceState"`
	PrivateDNSName        string           `xml:"privateDnsName"`
	DNSName               string           `xml:"dnsName"`
	Reason                string           `xml:"reason"`
	AmiLaunchIndex        int              `xml:"amiLaunchIndex"`
	InstanceType          string           `xml:"instanceType"`
	LaunchTime            string           `xml:"launchTime"`
	Placement             xPlacement       `xml:"placement"`
	MonitoringState       string           `xml:"monitoring>state"`
	SubnetID              string           `xml:"subnetId"`
	VpcID                 string           `xml:"vpcId"`
	PrivateIPAddress      string           `xml:"privateIpAddress"`
	SourceDestCheck       bool             `xml:"sourceDestCheck"`
	StateReason           *xReason         `xml:"stateReason,omitempty"`
	Architecture          string           `xml:"architecture"`
	RootDeviceType        string           `xml:"rootDeviceType"`
	RootDeviceName        string           `xml:"rootDeviceName"`
	InstanceLifecycle     string           `xml:"instanceLifecycle,omitempty"`
	SpotInstanceRequestID string           `xml:"spotInstanceRequestId,omitempty"`
	VirtualizationType    string           `xml:"virtualizationType"`
	ClientToken           string           `xml:"clientToken,omitempty"`
	Tags                  []xTag           `xml:"tagSet>item,omitempty"`
	Hypervisor            string           `xml:"hypervisor"`
	EbsOptimized          bool             `xml:"ebsOptimized"`
	EnaSupport            bool             `xml:"enaSupport"`
	MetadataOptions       xMetadataOptions `xml:"metadataOptions"`
	PlatformDetails       string           `xml:"platformDetails"`
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Groups        []struct{}  `xml:"groupSet>item,omitempty"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type describeInstancesResp struct {
	query.ResponseMeta
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type runInstancesResp struct {
	query.ResponseMeta
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type xStateChange struct {
	InstanceID    string `xml:"instanceId"`
	CurrentState  xState `xml:"currentState"`
	PreviousState xState `xml:"previousState"`
}

type terminateInstancesResp struct {
	query.ResponseMeta
	Instances []xStateChange `xml:"instancesSet>item"`
}

type returnResp struct {
	query.ResponseMeta
	Return bool `xml:"return"`
}

type xTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResp struct {
	query.ResponseMeta
	Tags      []xTagDescription `xml:"tagSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type xFleetLTSpec struct {
	LaunchTemplateID   string `xml:"launchTemplateId,omitempty"`
	LaunchTemplateName string `xml:"launchTemplateName,omitempty"`
	Version            string `xml:"version,omitempty"`
}

type xFleetOverrides struct {
	InstanceType     string   `xml:"instanceType,omitempty"`
	MaxPrice         string   `xml:"maxPrice,omitempty"`
	SubnetID         string   `xml:"subnetId,omitempty"`
	AvailabilityZone string   `xml:"availabilityZone,omitempty"`
	WeightedCapacity *float64 `xml:"weightedCapacity,omitempty"`
	Priority         *float64 `xml:"priority,omitempty"`
}

type xLTAndOverrides struct {
	Spec      xFleetLTSpec    `xml:"launchTemplateSpecification"`
	Overrides xFleetOverrides `xml:"overrides"`
}

type xFleetInstance struct {
	LTAndOverrides xLTAndOverrides `xml:"launchTemplateAndOverrides"`
	Lifecycle      string          `xml:"lifecycle"`
	InstanceIDs    []string        `xml:"instanceIds>item"`
	InstanceType   string          `xml:"instanceType"`
}

type xFleetError struct {
	LTAndOverrides xLTAndOverrides `xml:"launchTemplateAndOverrides"`
	Lifecycle      string          `xml:"lifecycle"`
	ErrorCode      string          `xml:"errorCode"`
	ErrorMessage   string          `xml:"errorMessage"`
}

type createFleetResp struct {
	query.ResponseMeta
	FleetID   string           `xml:"fleetId"`
	Errors    []xFleetError    `xml:"errorSet>item,omitempty"`
	Instances []xFleetInstance `xml:"fleetInstanceSet>item,omitempty"`
}

type xLaunchTemplate struct {
	ID             string `xml:"launchTemplateId"`
	Name           string `xml:"launchTemplateName"`
	CreateTime     string `xml:"createTime"`
	CreatedBy      string `xml:"createdBy"`
	DefaultVersion int    `xml:"defaultVersionNumber"`
	LatestVersion  int    `xml:"latestVersionNumber"`
}

type describeLaunchTemplatesResp struct {
	query.ResponseMeta
	Templates []xLaunchTemplate `xml:"launchTemplates>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type createLaunchTemplateResp struct {
	query.ResponseMeta
	Template xLaunchTemplate `xml:"launchTemplate"`
}

type xLTData struct {
	ImageID         string            `xml:"imageId,omitempty"`
	InstanceType    string            `xml:"instanceType,omitempty"`
	MetadataOptions *xMetadataOptions `xml:"metadataOptions,omitempty"`
}

type xLTVersion struct {
	ID             string  `xml:"launchTemplateId"`
	Name           string  `xml:"launchTemplateName"`
	VersionNumber  int     `xml:"versionNumber"`
	Description    string  `xml:"versionDescription,omitempty"`
	CreateTime     string  `xml:"createTime"`
	CreatedBy      string  `xml:"createdBy"`
	DefaultVersion bool    `xml:"defaultVersion"`
	Data           xLTData `xml:"launchTemplateData"`
}

type describeLTVersionsResp struct {
	query.ResponseMeta
	Versions  []xLTVersion `xml:"launchTemplateVersionSet>item"`
	NextToken string       `xml:"nextToken,omitempty"`
}

type xSubnet struct {
	SubnetID           string `xml:"subnetId"`
	State              string `xml:"state"`
	VpcID              string `xml:"vpcId"`
	CidrBlock          string `xml:"cidrBlock"`
	AvailableIPs       int    `xml:"availableIpAddressCount"`
	AvailabilityZone   string `xml:"availabilityZone"`
	AvailabilityZoneID string `xml:"availabilityZoneId"`
	DefaultForAz       bool   `xml:"defaultForAz"`
	MapPublicIP        bool   `xml:"mapPublicIpOnLaunch"`
	OwnerID            string `xml:"ownerId"`
	SubnetArn          string `xml:"subnetArn"`
}

type describeSubnetsResp struct {
	query.ResponseMeta
	Subnets   []xSubnet `xml:"subnetSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type xAZ struct {
	ZoneName           string `xml:"zoneName"`
	ZoneID             string `xml:"zoneId"`
	State              string `xml:"zoneState"`
	RegionName         string `xml:"regionName"`
	OptInStatus        string `xml:"optInStatus"`
	GroupName          string `xml:"groupName"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
	ZoneType           string `xml:"zoneType"`
}

type describeAZsResp struct {
	query.ResponseMeta
	Zones []xAZ `xml:"availabilityZoneInfo>item"`
}

const ec2Time = "2006-01-02T15:04:05.000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(ec2Time) }

func xmlTags(m map[string]string) []xTag {
	if len(m) == 0 {
		return nil
	}
	out := make([]xTag, 0, len(m))
	for k, v := range m {
		out = append(out, xTag{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Sim) xmlInstanceLocked(in *instance, now time.Time, r *regionState) xInstance {
	st := in.state(now, s.opts.ShutdownDelay)
	x := xInstance{InstanceID: in.id, ImageID: in.image, State: xState{stateCodes[st], st},
		PrivateDNSName: in.dns, InstanceType: in.itype, LaunchTime: fmtTime(in.launch),
		Placement:       xPlacement{AvailabilityZone: in.az, AvailabilityZoneID: r.azs[in.az].ZoneID, Tenancy: "default"},
		MonitoringState: "disabled", SubnetID: in.subnet, VpcID: r.spec.VpcID, PrivateIPAddress: in.ip,
		SourceDestCheck: true, Architecture: "x86_64", RootDeviceType: "ebs", RootDeviceName: "/dev/xvda",
		VirtualizationType: "hvm", ClientToken: in.clientToken, Tags: xmlTags(in.tags), Hypervisor: "xen",
		EnaSupport: true, PlatformDetails: "Linux/UNIX",
		MetadataOptions: xMetadataOptions{State: "applied", HTTPTokens: in.httpTokens, HTTPEndpoint: "enabled", HopLimit: 2,
			InstanceMetadataTags: map[bool]string{true: "enabled", false: "disabled"}[in.metadataTags]}}
	if in.lifecycle == "spot" {
		x.InstanceLifecycle = "spot"
		x.SpotInstanceRequestID = in.spotRequestID
	}
	if st == StateShuttingDown || st == StateTerminated {
		x.Reason = in.transitionReason
		x.StateReason = &xReason{in.reasonCode, reasonMessages[in.reasonCode]}
		if st == StateTerminated {
			x.PrivateDNSName, x.PrivateIPAddress = "", "" // the network interface is gone
		}
	}
	if st == StatePending {
		x.StateReason = &xReason{"pending", "pending"}
	}
	return x
}
