package ec2sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// World describes what exists before any API call: regions with their zones, subnets and
// launch templates, the instance types on offer and how much capacity each pool holds.
type World struct {
	Regions       map[string]*RegionSpec `json:"Regions"`
	InstanceTypes []InstanceTypeSpec     `json:"InstanceTypes"`
	// DefaultCapacity is the size of every (instance type, AZ, lifecycle) pool not listed
	// in Capacity.
	DefaultCapacity int        `json:"DefaultCapacity"`
	Capacity        []PoolSpec `json:"Capacity,omitempty"`
}

// RegionSpec is one region.
type RegionSpec struct {
	AvailabilityZones []AZSpec             `json:"AvailabilityZones"`
	Subnets           []SubnetSpec         `json:"Subnets"`
	LaunchTemplates   []LaunchTemplateSpec `json:"LaunchTemplates"`
	VpcID             string               `json:"VpcId,omitempty"`
}

// AZSpec is an availability zone.
type AZSpec struct {
	Name   string `json:"Name"`
	ZoneID string `json:"ZoneId"`
}

// SubnetSpec is a subnet; private IPs are allocated from its CIDR.
type SubnetSpec struct {
	ID               string `json:"SubnetId"`
	AvailabilityZone string `json:"AvailabilityZone"`
	CIDR             string `json:"CidrBlock"`
}

// LaunchTemplateSpec is a launch template with its versions (version numbers start at 1).
type LaunchTemplateSpec struct {
	ID             string            `json:"LaunchTemplateId"`
	Name           string            `json:"LaunchTemplateName"`
	DefaultVersion int               `json:"DefaultVersion,omitempty"` // 1 if unset
	Versions       []TemplateVersion `json:"Versions"`
}

// TemplateVersion is the launch data we model.
type TemplateVersion struct {
	InstanceType string `json:"InstanceType,omitempty"`
	ImageID      string `json:"ImageId,omitempty"`
	SubnetID     string `json:"SubnetId,omitempty"`
	// InstanceMetadataTags is "enabled" or "disabled" (MetadataOptions.InstanceMetadataTags).
	InstanceMetadataTags string `json:"InstanceMetadataTags,omitempty"`
	HTTPTokens           string `json:"HttpTokens,omitempty"`
	Description          string `json:"VersionDescription,omitempty"`
}

// InstanceTypeSpec is an instance type with its hourly prices (USD).
type InstanceTypeSpec struct {
	Name          string  `json:"InstanceType"`
	VCPUs         int     `json:"VCpus"`
	MemoryMiB     int     `json:"MemoryMiB"`
	OnDemandPrice float64 `json:"OnDemandPrice"`
	SpotPrice     float64 `json:"SpotPrice"`
}

// PoolSpec sets the capacity of one pool. Lifecycle is "on-demand" or "spot".
type PoolSpec struct {
	InstanceType     string `json:"InstanceType"`
	AvailabilityZone string `json:"AvailabilityZone"`
	Lifecycle        string `json:"Lifecycle"`
	Capacity         int    `json:"Capacity"`
}

// DefaultWorld makes the spec's example partitions.json work unchanged.
func DefaultWorld() *World {
	lt := func(id string) LaunchTemplateSpec {
		return LaunchTemplateSpec{ID: id, Name: "template-name", DefaultVersion: 1, Versions: []TemplateVersion{{
			InstanceType: "c5.xlarge", ImageID: "ami-0123456789abcdef0", InstanceMetadataTags: "enabled", HTTPTokens: "required",
		}}}
	}
	azs := func(region string, letters string, idPrefix string) []AZSpec {
		var out []AZSpec
		for i, l := range letters {
			out = append(out, AZSpec{Name: region + string(l), ZoneID: fmt.Sprintf("%s-az%d", idPrefix, i+1)})
		}
		return out
	}
	return &World{
		DefaultCapacity: 20000,
		Regions: map[string]*RegionSpec{
			"us-east-1": {
				VpcID:             "vpc-0a1b2c3d4e5f60001",
				AvailabilityZones: azs("us-east-1", "abcdef", "use1"),
				Subnets: []SubnetSpec{
					{ID: "subnet-11111111", AvailabilityZone: "us-east-1a", CIDR: "10.1.0.0/16"},
					{ID: "subnet-22222222", AvailabilityZone: "us-east-1b", CIDR: "10.2.0.0/16"},
				},
				LaunchTemplates: []LaunchTemplateSpec{lt("lt-0123456789abcdef0")},
			},
			"us-west-2": {
				VpcID:             "vpc-0a1b2c3d4e5f60002",
				AvailabilityZones: azs("us-west-2", "abcd", "usw2"),
				Subnets: []SubnetSpec{
					{ID: "subnet-33333333", AvailabilityZone: "us-west-2a", CIDR: "10.3.0.0/16"},
					{ID: "subnet-44444444", AvailabilityZone: "us-west-2b", CIDR: "10.4.0.0/16"},
				},
				LaunchTemplates: []LaunchTemplateSpec{lt("lt-0fedcba9876543210")},
			},
		},
		// us-east-1 Linux prices (on-demand list price; spot a typical recent price).
		InstanceTypes: []InstanceTypeSpec{
			{Name: "c5.large", VCPUs: 2, MemoryMiB: 4096, OnDemandPrice: 0.085, SpotPrice: 0.0340},
			{Name: "c5.xlarge", VCPUs: 4, MemoryMiB: 8192, OnDemandPrice: 0.17, SpotPrice: 0.0680},
			{Name: "c5.2xlarge", VCPUs: 8, MemoryMiB: 16384, OnDemandPrice: 0.34, SpotPrice: 0.1360},
			{Name: "c4.large", VCPUs: 2, MemoryMiB: 3840, OnDemandPrice: 0.10, SpotPrice: 0.0330},
			{Name: "c4.xlarge", VCPUs: 4, MemoryMiB: 7680, OnDemandPrice: 0.199, SpotPrice: 0.0650},
			{Name: "m5.xlarge", VCPUs: 4, MemoryMiB: 16384, OnDemandPrice: 0.192, SpotPrice: 0.0760},
			{Name: "p3.2xlarge", VCPUs: 8, MemoryMiB: 62464, OnDemandPrice: 3.06, SpotPrice: 0.9180},
			{Name: "g4dn.xlarge", VCPUs: 4, MemoryMiB: 16384, OnDemandPrice: 0.526, SpotPrice: 0.1578},
		},
	}
}

// LoadWorld reads a World JSON file and validates it.
func LoadWorld(path string) (*World, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading world file: %w", err)
	}
	var w World
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("world file %s: %w", path, err)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("world file %s: %w", path, err)
	}
	return &w, nil
}

// Validate checks references inside the world (subnet AZs, CIDRs, template versions).
func (w *World) Validate() error {
	var errs []error
	if len(w.Regions) == 0 {
		//lint:ignore ST1005 the message starts with the world file's field name, as the others here do
		errs = append(errs, errors.New("Regions: at least one region is needed"))
	}
	if w.DefaultCapacity < 0 {
		errs = append(errs, errors.New("DefaultCapacity: must not be negative"))
	}
	types := map[string]bool{}
	for i, t := range w.InstanceTypes {
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("InstanceTypes[%d].InstanceType: empty", i))
		}
		types[t.Name] = true
	}
	for name, r := range w.Regions {
		azs := map[string]bool{}
		for _, az := range r.AvailabilityZones {
			azs[az.Name] = true
		}
		for i, s := range r.Subnets {
			p, err := netip.ParsePrefix(s.CIDR)
			if err != nil || !p.Addr().Is4() || p.Bits() > 28 {
				errs = append(errs, fmt.Errorf("Regions.%s.Subnets[%d].CidrBlock: %q is not an IPv4 CIDR of /28 or larger", name, i, s.CIDR))
			}
			if !azs[s.AvailabilityZone] {
				errs = append(errs, fmt.Errorf("Regions.%s.Subnets[%d].AvailabilityZone: %q is not a zone of the region", name, i, s.AvailabilityZone))
			}
			if !strings.HasPrefix(s.ID, "subnet-") {
				errs = append(errs, fmt.Errorf("Regions.%s.Subnets[%d].SubnetId: %q must start with subnet-", name, i, s.ID))
			}
		}
		for i, lt := range r.LaunchTemplates {
			if !strings.HasPrefix(lt.ID, "lt-") || lt.Name == "" || len(lt.Versions) == 0 {
				errs = append(errs, fmt.Errorf("Regions.%s.LaunchTemplates[%d]: needs an lt- id, a name and at least one version", name, i))
			}
			for j, v := range lt.Versions {
				if v.InstanceType != "" && !types[v.InstanceType] {
					errs = append(errs, fmt.Errorf("Regions.%s.LaunchTemplates[%d].Versions[%d].InstanceType: %q is not in InstanceTypes", name, i, j, v.InstanceType))
				}
			}
		}
	}
	for i, p := range w.Capacity {
		if p.Lifecycle != "on-demand" && p.Lifecycle != "spot" {
			errs = append(errs, fmt.Errorf("Capacity[%d].Lifecycle: %q must be on-demand or spot", i, p.Lifecycle))
		}
	}
	return errors.Join(errs...)
}
