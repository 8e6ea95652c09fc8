package nodename

import (
	"math"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// How long a booting node waits for its Name tag by default. Resume sends one CreateTags per
// instance (the Name differs per instance), from CreateFleet's answer on, in node order, at the
// rate EC2's CreateTags bucket allows: fleet.CreateTagsBucket, 100 calls at once, then 10 a second
// per account and Region. The last node of a burst of n nodes in one Region and account is named
// (n-100)/10 s after CreateFleet answers. A node boots after its instance was launched, that is
// before CreateFleet answers, so it waits at most that plus CreateFleet's own time.
const (
	// WaitMargin covers CreateFleet's answer (seconds; it waits for the launch), the calls'
	// own time and a throttled call or two.
	WaitMargin = 30 * time.Second
	// MinDefaultWait is the shortest default: the fixed default before it was derived.
	MinDefaultWait = 60 * time.Second
	// DefaultBurst is the burst size assumed when the configuration is not at hand (compute
	// nodes usually do not have it): 1,000 nodes, the largest instant fleet resume sends.
	DefaultBurst = fleet.MaxFleetTarget
)

// WaitForBurst is how long a node of a burst of n nodes in one Region and account may need to
// find its Name tag: WaitMargin + max(0, n - 100)/10 s, and at least MinDefaultWait. For 1,000
// nodes that is 120 s; for 2,500, 270 s.
func WaitForBurst(n int) time.Duration {
	b := fleet.CreateTagsBucket
	tags := math.Ceil(max(0, float64(n)-b.Capacity) / b.PerSecond)
	return max(MinDefaultWait, WaitMargin+time.Duration(tags)*time.Second)
}
