package burst

import (
	"fmt"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// Reasons we leave on Slurm nodes. They are how the head node remembers a capacity cool-down
// without a state file: the node's reason and its reason time (DESIGN.md).
const (
	reasonPrefix   = "slurm-ec2: "
	coolDownPrefix = reasonPrefix + "cool-down after "
)

// capacityReason is the reason of a node EC2 gave no instance:
// "slurm-ec2: InsufficientInstanceCapacity c5.xlarge us-east-1a".
func capacityReason(e fleet.LaunchError) string {
	parts := []string{e.Code}
	if e.InstanceType != "" {
		parts = append(parts, e.InstanceType)
	}
	switch {
	case e.AZ != "":
		parts = append(parts, e.AZ)
	case e.SubnetID != "":
		parts = append(parts, e.SubnetID)
	}
	return reasonPrefix + strings.Join(parts, " ")
}

// coolDownReason marks a node not launched because its group is cooling down.
func coolDownReason(code string, until time.Time) string {
	return fmt.Sprintf("%s%s until %s", coolDownPrefix, code, until.UTC().Format(time.RFC3339))
}

// ParsedReason is what a reason of ours says.
type ParsedReason struct {
	Ours     bool
	Code     string    // EC2 error code, if any
	CoolDown bool      // a cool-down copy, not the original failure
	Until    time.Time // end of the cool-down, for cool-down copies
}

// ParseReason reads a Slurm node reason written by slurm-ec2.
func ParseReason(r string) ParsedReason {
	if !strings.HasPrefix(r, reasonPrefix) {
		return ParsedReason{}
	}
	p := ParsedReason{Ours: true}
	if rest, ok := strings.CutPrefix(r, coolDownPrefix); ok {
		p.CoolDown = true
		code, until, _ := strings.Cut(rest, " until ")
		p.Code = code
		p.Until, _ = time.Parse(time.RFC3339, strings.TrimSpace(until))
		return p
	}
	rest := strings.TrimPrefix(r, reasonPrefix)
	code, _, _ := strings.Cut(rest, " ")
	p.Code = code
	return p
}

// IsCapacity reports whether the reason records an EC2 capacity failure (original or cool-down).
func (p ParsedReason) IsCapacity() bool {
	return p.Ours && fleet.ClassOf(p.Code) == fleet.ClassCapacity
}
