package ec2sim

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

func (s *Sim) xmlTemplate(r *regionState, t *launchTemplate) xLaunchTemplate {
	return xLaunchTemplate{ID: t.id, Name: t.name, CreateTime: fmtTime(t.created), CreatedBy: "arn:aws:iam::" + s.opts.AccountID + ":root",
		DefaultVersion: t.defaultVersion, LatestVersion: len(t.versions)}
}

func (s *Sim) describeLaunchTemplates(c *call) (query.Body, error) {
	r, p := c.region, c.p
	ids, names := p.Strings("LaunchTemplateId"), p.Strings("LaunchTemplateName")
	fs, err := parseFilters(p, "launch-template-name", "launch-template-id", "tag:", "tag-key")
	if err != nil {
		return nil, err
	}
	resp := &describeLaunchTemplatesResp{}
	for _, id := range ids {
		t, _, _, err := r.resolveTemplate(id, "", "")
		if err != nil {
			return nil, err
		}
		resp.Templates = append(resp.Templates, s.xmlTemplate(r, t))
	}
	for _, n := range names {
		t, _, _, err := r.resolveTemplate("", n, "")
		if err != nil {
			return nil, err
		}
		resp.Templates = append(resp.Templates, s.xmlTemplate(r, t))
	}
	if len(ids)+len(names) == 0 {
		for _, t := range r.templates {
			ok := true
			for _, f := range fs {
				switch f.name {
				case "launch-template-name":
					ok = ok && f.any(t.name)
				case "launch-template-id":
					ok = ok && f.any(t.id)
				default:
					ok = false // templates carry no tags here
				}
			}
			if ok {
				resp.Templates = append(resp.Templates, s.xmlTemplate(r, t))
			}
		}
	}
	return resp, nil
}

func (s *Sim) describeLaunchTemplateVersions(c *call) (query.Body, error) {
	r, p := c.region, c.p
	t, _, _, err := r.resolveTemplate(p.String("LaunchTemplateId"), p.String("LaunchTemplateName"), "")
	if err != nil {
		return nil, err
	}
	want := p.Strings("LaunchTemplateVersion")
	var nums []int
	if len(want) == 0 {
		for i := range t.versions {
			nums = append(nums, i+1)
		}
	} else {
		for _, v := range want {
			_, ver, _, err := r.resolveTemplate(t.id, "", v)
			if err != nil {
				return nil, err
			}
			n, _ := strconv.Atoi(ver)
			nums = append(nums, n)
		}
	}
	resp := &describeLTVersionsResp{}
	for _, n := range nums {
		v := t.versions[n-1]
		x := xLTVersion{ID: t.id, Name: t.name, VersionNumber: n, Description: v.Description, CreateTime: fmtTime(t.created),
			CreatedBy: "arn:aws:iam::" + s.opts.AccountID + ":root", DefaultVersion: n == t.defaultVersion,
			Data: xLTData{ImageID: v.ImageID, InstanceType: v.InstanceType}}
		if v.InstanceMetadataTags != "" || v.HTTPTokens != "" {
			x.Data.MetadataOptions = &xMetadataOptions{State: "applied", HTTPTokens: firstNonEmpty(v.HTTPTokens, "optional"), HTTPEndpoint: "enabled", HopLimit: 2,
				InstanceMetadataTags: firstNonEmpty(v.InstanceMetadataTags, "disabled")}
		}
		resp.Versions = append(resp.Versions, x)
	}
	return resp, nil
}

func (s *Sim) createLaunchTemplate(c *call) (query.Body, error) {
	r, p := c.region, c.p
	name := p.String("LaunchTemplateName")
	if name == "" {
		return nil, query.ErrMissingParameter("LaunchTemplateName")
	}
	if len(name) < 3 || len(name) > 128 {
		return nil, errorf("InvalidParameterValue", "LaunchTemplateName must be between 3 and 128 characters long.")
	}
	for _, t := range r.templates {
		if t.name == name {
			return nil, errorf("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
		}
	}
	if !p.Has("LaunchTemplateData") {
		return nil, query.ErrMissingParameter("LaunchTemplateData")
	}
	d := p.Get("LaunchTemplateData")
	v := TemplateVersion{InstanceType: d.String("InstanceType"), ImageID: d.String("ImageId"),
		InstanceMetadataTags: d.String("MetadataOptions.InstanceMetadataTags"), HTTPTokens: d.String("MetadataOptions.HttpTokens"),
		Description: p.String("VersionDescription")}
	if v.InstanceType != "" {
		if _, ok := s.types[v.InstanceType]; !ok {
			return nil, errorf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", v.InstanceType)
		}
	}
	t := &launchTemplate{id: s.hexID("lt-", 17), name: name, defaultVersion: 1, versions: []TemplateVersion{v}, created: c.now}
	r.templates = append(r.templates, t)
	return &createLaunchTemplateResp{Template: s.xmlTemplate(r, t)}, nil
}

func (s *Sim) describeSubnets(c *call) (query.Body, error) {
	r, p := c.region, c.p
	fs, err := parseFilters(p, "subnet-id", "availability-zone", "availability-zone-id", "cidr-block", "vpc-id", "state", "default-for-az")
	if err != nil {
		return nil, err
	}
	ids := p.Strings("SubnetId")
	list := ids
	if len(ids) == 0 {
		list = r.subnetIDs
	}
	resp := &describeSubnetsResp{}
	for _, id := range list {
		sn := r.subnets[id]
		if sn == nil {
			return nil, errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
		ok := true
		for _, f := range fs {
			switch f.name {
			case "subnet-id":
				ok = ok && f.any(id)
			case "availability-zone":
				ok = ok && f.any(sn.spec.AvailabilityZone)
			case "availability-zone-id":
				ok = ok && f.any(r.azs[sn.spec.AvailabilityZone].ZoneID)
			case "cidr-block":
				ok = ok && f.any(sn.prefix.String())
			case "vpc-id":
				ok = ok && f.any(r.spec.VpcID)
			case "state":
				ok = ok && f.any("available")
			case "default-for-az":
				ok = ok && f.any("false")
			}
		}
		if !ok {
			continue
		}
		resp.Subnets = append(resp.Subnets, xSubnet{SubnetID: id, State: "available", VpcID: r.spec.VpcID, CidrBlock: sn.prefix.String(),
			AvailableIPs: sn.free(), AvailabilityZone: sn.spec.AvailabilityZone, AvailabilityZoneID: r.azs[sn.spec.AvailabilityZone].ZoneID,
			OwnerID: s.opts.AccountID, SubnetArn: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", r.name, s.opts.AccountID, id)})
	}
	return resp, nil
}

func (s *Sim) describeAvailabilityZones(c *call) (query.Body, error) {
	r, p := c.region, c.p
	fs, err := parseFilters(p, "zone-name", "zone-id", "state", "region-name", "zone-type", "opt-in-status", "group-name")
	if err != nil {
		return nil, err
	}
	names, zids := p.Strings("ZoneName"), p.Strings("ZoneId")
	for _, n := range names {
		if _, ok := r.azs[n]; !ok {
			return nil, errorf("InvalidParameterValue", "The zone '%s' does not exist.", n)
		}
	}
	resp := &describeAZsResp{}
	for _, az := range r.spec.AvailabilityZones {
		if (len(names) > 0 || len(zids) > 0) && !slices.Contains(names, az.Name) && !slices.Contains(zids, az.ZoneID) {
			continue
		}
		x := xAZ{ZoneName: az.Name, ZoneID: az.ZoneID, State: "available", RegionName: r.name, OptInStatus: "opt-in-not-required",
			GroupName: r.name, NetworkBorderGroup: r.name, ZoneType: "availability-zone"}
		ok := true
		for _, f := range fs {
			switch f.name {
			case "zone-name":
				ok = ok && f.any(x.ZoneName)
			case "zone-id":
				ok = ok && f.any(x.ZoneID)
			case "state":
				ok = ok && f.any(x.State)
			case "region-name", "group-name":
				ok = ok && f.any(r.name)
			case "zone-type":
				ok = ok && f.any(x.ZoneType)
			case "opt-in-status":
				ok = ok && f.any(x.OptInStatus)
			}
		}
		if ok {
			resp.Zones = append(resp.Zones, x)
		}
	}
	return resp, nil
}
