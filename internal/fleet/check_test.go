package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

func TestCheckGroupOverrideLimit(t *testing.T) {
	api := client(t, ec2sim.New(ec2sim.Options{Seed: 7}))
	tests := map[string]struct {
		types  int
		wantOK bool
		want   string
	}{
		"2 subnets x 150 types = 300": {150, true, "300 launch template overrides (at most 300)"},
		"2 subnets x 151 types = 302": {151, false, "302 launch template overrides (2 subnets x 151 instance types): CreateFleet takes at most 300"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := spec(1)
			s.Overrides = nil
			for i := range tc.types {
				s.Overrides = append(s.Overrides, types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(fmt.Sprintf("c%d.xlarge", i))})
			}
			var found bool
			for _, c := range fleet.CheckGroup(context.Background(), api, s) {
				if c.Field == "LaunchTemplateOverrides" {
					found = true
					if c.OK != tc.wantOK || !strings.Contains(c.Msg, tc.want) {
						t.Fatalf("check = %+v, want ok=%v and %q", c, tc.wantOK, tc.want)
					}
				}
			}
			if !found {
				t.Fatal("no LaunchTemplateOverrides check")
			}
		})
	}
}
