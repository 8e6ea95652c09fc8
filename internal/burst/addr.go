package burst

import (
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// addrIndex finds the node an instance without a Name tag belongs to from Slurm's NodeAddr.
// Slurm keeps a node's last NodeAddr after it powers down, and EC2 reuses private IPs, so an
// address can be stale: a match needs the instance's node-group tag to be the node's group, and
// the address must point at one node only, preferring a powered-up node over powered-down ones.
type addrIndex struct {
	cfg    *config.Config
	byAddr map[string][]*slurm.Node
}

func newAddrIndex(cfg *config.Config, nodes []*slurm.Node) *addrIndex {
	ix := &addrIndex{cfg: cfg, byAddr: map[string][]*slurm.Node{}}
	for _, n := range nodes {
		if n.Addr == "" || n.Addr == n.Name || !isIP(n.Addr) {
			continue
		}
		ix.byAddr[n.Addr] = append(ix.byAddr[n.Addr], n)
	}
	return ix
}

// lookup returns the node whose NodeAddr is ip, in node group group, or "".
func (ix *addrIndex) lookup(ip, group string) string {
	var up, down []string
	for _, n := range ix.byAddr[ip] {
		g, _, ok := ix.cfg.LookupNode(n.Name)
		if !ok || g.Name() != group {
			continue
		}
		if poweredUp(n) {
			up = append(up, n.Name)
		} else {
			down = append(down, n.Name)
		}
	}
	switch {
	case len(up) == 1:
		return up[0]
	case len(up) == 0 && len(down) == 1:
		return down[0]
	}
	return ""
}

// placeholderAddr is the NodeAddr of a node we set DOWN or power down before it ever had an
// instance: a literal address slurmctld uses without a name lookup, where nothing listens.
const placeholderAddr = "127.0.0.1"

func placeholderAddresses(nodes []string) []slurm.Address {
	out := make([]slurm.Address, len(nodes))
	for i, n := range nodes {
		out[i] = slurm.Address{Node: n, Addr: placeholderAddr, Hostname: n}
	}
	return out
}
