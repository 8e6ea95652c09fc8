package burst

import "github.com/slurm-ec2/slurm-ec2/internal/slurm"

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
