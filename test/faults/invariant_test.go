package faults

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// checkInvariants returns every violation of the invariants, now:
//  1. every live instance of our cluster is claimed by exactly one powered-up node (its Name tag,
//     or its private IP being the NodeAddr of a node of its group): nothing leaked, nothing
//     shared. This is the test's own statement of the rule, kept independent of
//     internal/inventory on purpose: an oracle must not share the code it checks;
//  2. every powered-up node has exactly one live instance, or a reason: nothing stranded
//     silently, nothing doubled;
//  3. no node is stuck past its timeout: none POWERING_UP longer than ResumeTimeout, none
//     POWERING_DOWN longer than SuspendTimeout, none left DOWN by a reason reconcile must undo
//     ("ResumeTimeout reached", or one of ours whose capacity cool-down, if any, is over).
func checkInvariants(e *env) []string {
	now := e.clk.Now()
	nodes := e.fake.Nodes()
	var bad []string
	claims := map[string][]string{} // node -> instance ids
	for _, in := range e.instances() {
		if !live(in) {
			continue
		}
		var by []string
		for i := range nodes {
			n := &nodes[i]
			if !poweredUp(n) {
				continue
			}
			// By Name tag, or by NodeAddr within the node's group (two accounts may use the same
			// private addresses).
			if in.Tags["Name"] == n.Name || (n.Addr != n.Name && n.Addr == in.PrivateIP && in.Tags[fleet.TagNodeGroup] == groupOf(n.Name)) {
				by = append(by, n.Name)
			}
		}
		switch len(by) {
		case 0:
			bad = append(bad, fmt.Sprintf("leaked: instance %s (%s, Name=%q, ip %s) is claimed by no powered-up node",
				in.InstanceID, in.State, in.Tags["Name"], in.PrivateIP))
		case 1:
		default:
			bad = append(bad, fmt.Sprintf("instance %s is claimed by %d nodes: %s", in.InstanceID, len(by), strings.Join(by, ",")))
		}
		for _, n := range by {
			claims[n] = append(claims[n], in.InstanceID)
		}
	}
	e.ctld.mu.Lock()
	defer e.ctld.mu.Unlock()
	for i := range nodes {
		n := &nodes[i]
		if poweredUp(n) {
			switch c := claims[n.Name]; {
			case len(c) > 1:
				bad = append(bad, fmt.Sprintf("doubled: node %s (%s) has %d live instances %v", n.Name, state(n), len(c), c))
			case len(c) == 0 && n.Reason == "":
				bad = append(bad, fmt.Sprintf("stranded: node %s (%s) is powered up with no live instance and no reason", n.Name, state(n)))
			}
		}
		if t, ok := e.ctld.resumeAt[n.Name]; ok && n.Has("POWERING_UP") && now.Sub(t) > resumeTimeout {
			bad = append(bad, fmt.Sprintf("stuck: node %s POWERING_UP for %v", n.Name, now.Sub(t).Round(1e9)))
		}
		if t, ok := e.ctld.suspendAt[n.Name]; ok && n.Has("POWERING_DOWN") && now.Sub(t) > suspendTimeout {
			bad = append(bad, fmt.Sprintf("stuck: node %s POWERING_DOWN for %v", n.Name, now.Sub(t).Round(1e9)))
		}
		if n.IsDown() && stuckDown(n, now) {
			bad = append(bad, fmt.Sprintf("stuck: node %s %s with reason %q since %s", n.Name, state(n), n.Reason,
				n.ReasonTime.Format("15:04:05")))
		}
	}
	sort.Strings(bad)
	return bad
}

// backOffMax is config.json's BackOffMaxSeconds (its default: the faults config leaves it out).
const backOffMax = 1800 * time.Second

// stuckDown tells whether a DOWN node's reason is one reconcile should have undone by now.
func stuckDown(n *slurm.Node, now interface{ Unix() int64 }) bool {
	if strings.HasPrefix(n.Reason, "ResumeTimeout reached") {
		return true
	}
	p := burst.ParseReason(n.Reason)
	if !p.Ours {
		return false // an administrator's DOWN
	}
	if held, until, ok := burst.BackOffRecord(n.Reason); ok {
		// A node group's back-off after failed boots or launches (docs/configuration.md): held
		// until a probe registers or an operator releases it; otherwise forgotten at the latest
		// BackOffMaxSeconds after the back-off ended.
		return !held && until.Add(backOffMax).Unix() < now.Unix()
	}
	if p.CoolDown {
		return p.Until.Unix() < now.Unix()
	}
	if p.IsCapacity() {
		return n.ReasonTime.IsZero() || n.ReasonTime.Add(coolDown).Unix() < now.Unix()
	}
	return true
}

// groupOf is the node group of a node name: the name without its "-<index>".
func groupOf(node string) string {
	if i := strings.LastIndexByte(node, '-'); i > 0 {
		return node[:i]
	}
	return ""
}

func state(n *slurm.Node) string {
	return strings.Join(append([]string{n.State}, n.Flags...), "+")
}
