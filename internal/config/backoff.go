package config

import (
	"strconv"
)

// decodeBackOff reads the keys that bound how long slurm-ec2 keeps paying for a failure: the
// first back-off after a failed launch or boot, the largest one, and the number of failures in
// a row after which the node group is held (docs/configuration.md, "Failed launches and boots").
func decodeBackOff(c *checker, m map[string]*node, cfg *Config) {
	if v, ok := c.integer(m, "", "BackOffBaseSeconds", 1, 7*86400, false); ok {
		cfg.BackOffBaseSeconds = v
	}
	if v, ok := c.integer(m, "", "BackOffMaxSeconds", 1, 7*86400, false); ok {
		cfg.BackOffMaxSeconds = v
	}
	if v, ok := c.integer(m, "", "HoldAfterFailures", 1, 100, false); ok {
		cfg.HoldAfterFailures = v
	}
	if cfg.BackOffMaxSeconds < cfg.BackOffBaseSeconds {
		c.add("BackOffMaxSeconds", "%d is below BackOffBaseSeconds (%d): the largest back-off must be at least the first one",
			cfg.BackOffMaxSeconds, cfg.BackOffBaseSeconds)
	}
}

// checkWeight refuses a WeightedCapacity other than 1. slurm-ec2 launches one instance per Slurm
// node and asks CreateFleet for that many units of TotalTargetCapacity; with a weight EC2 counts
// the units an instance type provides instead ("Use instance weighting to manage cost and
// performance of your EC2 Fleet or Spot Fleet", EC2 User Guide), so a weight of 2 would launch
// half the instances the nodes need and 0.5 twice as many.
func checkWeight(c *checker, path string, n *node) {
	if n.kind != kNumber {
		return // the SDK decoder reports the wrong type
	}
	if v, err := strconv.ParseFloat(n.str, 64); err == nil && v == 1 {
		return
	}
	c.add(path, "%s is not supported: slurm-ec2 launches one instance per Slurm node, and a weight makes EC2 count capacity units instead (weight 2 launches half the instances the nodes need, 0.5 twice as many); remove WeightedCapacity or set it to 1, and give bigger instance types their own node group", n.str)
}
