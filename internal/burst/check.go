package burst

import (
	"context"
	"fmt"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// GroupCheck is the live check of one node group (`validate --aws`).
type GroupCheck struct {
	Path   string // Partitions[i].NodeGroups[j]
	Group  string
	Region string
	Checks []fleet.Check
}

// CheckAWS checks every node group against its account and region.
func CheckAWS(ctx context.Context, d *Deps) []GroupCheck {
	var out []GroupCheck
	for i, p := range d.Config.Partitions {
		for j, g := range p.NodeGroups {
			gc := GroupCheck{Path: fmt.Sprintf("Partitions[%d].NodeGroups[%d]", i, j), Group: g.Name(), Region: g.Region}
			api, err := d.EC2.Get(ctx, g.Region, g.ProfileName)
			if err != nil {
				gc.Checks = []fleet.Check{{Field: "ProfileName", Msg: "no EC2 client: " + err.Error()}}
			} else {
				gc.Checks = fleet.CheckGroup(ctx, api, groupSpec(g, d.Cluster))
			}
			out = append(out, gc)
		}
	}
	return out
}
