package burst

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestCheckAWS(t *testing.T) {
	e := newTestEnv(t, "")
	for _, gc := range CheckAWS(context.Background(), e.deps) {
		for _, c := range gc.Checks {
			if !c.OK {
				t.Errorf("%s: %s: %s", gc.Group, c.Field, c.Msg)
			}
		}
	}
	// Break one group: a template that does not exist and a subnet of another region.
	g, _ := e.cfg.NodeGroup("aws-spot")
	g.LaunchTemplateSpecification.LaunchTemplateName = aws.String("no-such-template")
	g.SubnetIds = []string{"subnet-11111111", "subnet-33333333"}
	var failed []string
	for _, gc := range CheckAWS(context.Background(), e.deps) {
		for _, c := range gc.Checks {
			if !c.OK {
				if gc.Group != "aws-spot" {
					t.Errorf("healthy group %s failed: %s", gc.Group, c.Msg)
				}
				failed = append(failed, gc.Path+"."+c.Field+": "+c.Msg)
			}
		}
	}
	joined := strings.Join(failed, "\n")
	for _, want := range []string{"Partitions[0].NodeGroups[1].LaunchTemplateSpecification: launch template no-such-template", "SubnetIds: subnets subnet-11111111, subnet-33333333"} {
		if !strings.Contains(joined, want) {
			t.Errorf("findings lack %q:\n%s", want, joined)
		}
	}
}
