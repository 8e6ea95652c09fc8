package iampolicy

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// TestEveryOptionIsClassified walks the fields of every launch option a node group can carry
// (the SDK types config decodes partitions.json into): each must be in OptionGrants, so a field
// that names a resource cannot reach CreateFleet without the policy knowing.
func TestEveryOptionIsClassified(t *testing.T) {
	known := map[string]bool{}
	for _, o := range OptionGrants {
		if known[o.Option] {
			t.Errorf("%s classified twice", o.Option)
		}
		known[o.Option] = true
	}
	for prefix, v := range map[string]any{
		"LaunchTemplateSpecification": types.FleetLaunchTemplateSpecificationRequest{},
		"LaunchTemplateOverrides":     types.FleetLaunchTemplateOverridesRequest{},
		"OnDemandOptions":             types.OnDemandOptionsRequest{},
		"SpotOptions":                 types.SpotOptionsRequest{},
	} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			f := rt.Field(i)
			if !f.IsExported() {
				continue
			}
			if name := prefix + "." + f.Name; !known[name] {
				t.Errorf("%s is not in OptionGrants: say which EC2 resources it names (Service Authorization Reference), or none and why", name)
			}
		}
	}
}

// TestEveryConfiguredOptionMapsToAGrant writes a partitions.json that sets each option that
// names a resource, loads it as slurm-ec2 does, and checks that the head policy allows
// CreateFleet on that resource, by exact ARN or by the pattern that covers it.
func TestEveryConfiguredOptionMapsToAGrant(t *testing.T) {
	tests := map[string]struct {
		group string // JSON members of the node group beyond the required ones
		want  []string
	}{
		"LaunchTemplateSpecification.LaunchTemplateId": {
			group: `"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0abc", "Version": "$Latest"}`,
			want:  []string{"arn:aws:ec2:us-east-1:123456789012:launch-template/lt-0abc"}},
		"LaunchTemplateSpecification.LaunchTemplateName": {
			group: `"LaunchTemplateSpecification": {"LaunchTemplateName": "compute", "Version": "$Latest"}`,
			want:  []string{"arn:aws:ec2:us-east-1:123456789012:launch-template/*"}},
		"SubnetIds": {want: []string{"arn:aws:ec2:us-east-1:123456789012:subnet/subnet-11111111"}},
		"PurchasingOption": {group: `"PurchasingOption": "spot"`,
			want: []string{"arn:aws:ec2:us-east-1:123456789012:spot-instances-request/*"}},
		"LaunchTemplateOverrides.Placement": {
			group: `"LaunchTemplateOverrides": [{"InstanceType": "c5.large", "Placement": {"GroupName": "hpc-cluster"}},
				{"InstanceType": "c5.xlarge", "Placement": {"Tenancy": "host", "HostId": "h-0123"}}]`,
			want: []string{"arn:aws:ec2:us-east-1:123456789012:placement-group/hpc-cluster", "arn:aws:ec2:us-east-1:123456789012:dedicated-host/h-0123"}},
		"LaunchTemplateOverrides.BlockDeviceMappings": {
			group: `"LaunchTemplateOverrides": [{"InstanceType": "c5.large", "BlockDeviceMappings": [{"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-0123"}}]}]`,
			want:  []string{"arn:aws:ec2:us-east-1::snapshot/snap-0123", "arn:aws:ec2:us-east-1:123456789012:volume/*"}},
		"LaunchTemplateOverrides.ImageId": {
			group: `"LaunchTemplateOverrides": [{"InstanceType": "c5.large", "ImageId": "ami-0123"}]`,
			want:  []string{"arn:aws:ec2:us-east-1::image/ami-0123"}},
		"LaunchTemplateOverrides.KeyName": {
			group: `"LaunchTemplateOverrides": [{"InstanceType": "c5.large", "KeyName": "ops"}]`,
			want:  []string{"arn:aws:ec2:us-east-1:123456789012:key-pair/ops"}},
		"OnDemandOptions.CapacityReservationOptions": {
			group: `"OnDemandOptions": {"AllocationStrategy": "lowest-price", "CapacityReservationOptions": {"UsageStrategy": "use-capacity-reservations-first"}}`,
			want:  []string{"arn:aws:ec2:us-east-1:123456789012:capacity-reservation/*"}},
		"LaunchTemplateOverrides.SubnetId": {want: []string{"arn:aws:ec2:us-east-1:123456789012:subnet/subnet-11111111"}},
	}
	for _, o := range OptionGrants {
		if len(o.Resources) == 0 {
			continue
		}
		if _, ok := tests[o.Option]; !ok {
			t.Errorf("%s names %v but has no case here", o.Option, o.Resources)
		}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			members := map[string]string{
				"NodeGroupName": `"NodeGroupName": "g"`, "MaxNodes": `"MaxNodes": 2`, "Region": `"Region": "us-east-1"`,
				"PurchasingOption":            `"PurchasingOption": "on-demand"`,
				"LaunchTemplateSpecification": `"LaunchTemplateSpecification": {"LaunchTemplateName": "t", "Version": "$Latest"}`,
				"SubnetIds":                   `"SubnetIds": ["subnet-11111111"]`,
			}
			if tc.group != "" {
				key, _, _ := strings.Cut(strings.TrimPrefix(tc.group, `"`), `"`)
				members[key] = tc.group
			}
			var parts []string
			for _, m := range members {
				parts = append(parts, m)
			}
			dir := t.TempDir()
			write := func(name, body string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("config.json", `{"ClusterName": "hpc", "SlurmConf": {"ResumeProgram": "/r", "SuspendProgram": "/s"}}`)
			write("partitions.json", `{"Partitions": [{"PartitionName": "p", "NodeGroups": [{`+strings.Join(parts, ",")+`}]}]}`)
			cfg, err := config.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			in := Input{ClusterName: "hpc", AccountID: "123456789012"}
			for _, g := range cfg.NodeGroups() {
				in.Groups = append(in.Groups, GroupFrom(g))
			}
			p, err := Head(in)
			if err != nil {
				t.Fatal(err)
			}
			var launch []string
			for _, s := range p.Statement {
				if slices.Contains(s.Action, "ec2:CreateFleet") {
					launch = append(launch, s.Resource...)
				}
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(launch, func(r string) bool { return arnMatches(r, w) }) {
					t.Errorf("CreateFleet is not allowed on %s; resources:\n%s", w, strings.Join(launch, "\n"))
				}
			}
		})
	}
}

// arnMatches reports whether pattern (an IAM resource with * wildcards) matches arn.
func arnMatches(pattern, arn string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == arn
	}
	if !strings.HasPrefix(arn, parts[0]) {
		return false
	}
	rest := arn[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return strings.HasSuffix(rest, parts[len(parts)-1])
}

// TestARNFormats checks each resource ARN against the form the Service Authorization Reference
// gives (list_amazonec2.html, Resource types): images and snapshots carry no account.
func TestARNFormats(t *testing.T) {
	a := arns{partition: "aws", account: "123456789012"}
	for res, want := range map[string]string{
		"snapshot/*":               "arn:aws:ec2:us-east-1::snapshot/*",
		"image/ami-1":              "arn:aws:ec2:us-east-1::image/ami-1",
		"instance/*":               "arn:aws:ec2:us-east-1:123456789012:instance/*",
		"capacity-reservation/*":   "arn:aws:ec2:us-east-1:123456789012:capacity-reservation/*",
		"placement-group/hpc":      "arn:aws:ec2:us-east-1:123456789012:placement-group/hpc",
		"dedicated-host/h-1":       "arn:aws:ec2:us-east-1:123456789012:dedicated-host/h-1",
		"spot-instances-request/*": "arn:aws:ec2:us-east-1:123456789012:spot-instances-request/*",
		"launch-template/lt-1":     "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-1",
		"network-interface/*":      "arn:aws:ec2:us-east-1:123456789012:network-interface/*",
	} {
		if got := a.ec2("us-east-1", res); got != want {
			t.Errorf("%s: %s, want %s", res, got, want)
		}
	}
}
