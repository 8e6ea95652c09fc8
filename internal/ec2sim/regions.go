package ec2sim

import (
	"slices"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// describeRegions answers DescribeRegions with the world's regions, every one enabled
// ("opt-in-not-required"). Shape and filters: Amazon EC2 API Reference, DescribeRegions
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html).
func (s *Sim) describeRegions(c *call) (query.Body, error) {
	fs, err := parseFilters(c.p, "endpoint", "opt-in-status", "region-name")
	if err != nil {
		return nil, err
	}
	names := c.p.Strings("RegionName")
	all := make([]string, 0, len(s.regions))
	for n := range s.regions {
		all = append(all, n)
	}
	slices.Sort(all)
	resp := &describeRegionsResp{}
	for _, n := range names {
		if !slices.Contains(all, n) {
			return nil, errorf("InvalidParameterValue", "Invalid region: %s", n)
		}
	}
	for _, n := range all {
		if len(names) > 0 && !slices.Contains(names, n) {
			continue
		}
		x := xRegion{Name: n, Endpoint: "ec2." + n + ".amazonaws.com", OptInStatus: "opt-in-not-required"}
		ok := true
		for _, f := range fs {
			switch f.name {
			case "endpoint":
				ok = ok && f.any(x.Endpoint)
			case "opt-in-status":
				ok = ok && f.any(x.OptInStatus)
			case "region-name":
				ok = ok && f.any(x.Name)
			}
		}
		if ok {
			resp.Regions = append(resp.Regions, x)
		}
	}
	return resp, nil
}

type xRegion struct {
	Name        string `xml:"regionName"`
	Endpoint    string `xml:"regionEndpoint"`
	OptInStatus string `xml:"optInStatus"`
}

type describeRegionsResp struct {
	query.ResponseMeta
	Regions []xRegion `xml:"regionInfo>item"`
}
