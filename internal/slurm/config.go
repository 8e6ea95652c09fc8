package slurm

import (
	"context"
	"fmt"
	"strings"
)

// Config runs `scontrol show config` and returns its "Key = Value" pairs
// (22.05 prints one per line, keys padded to 24 columns, e.g.
// "PrivateData             = cloud", "SLURM_VERSION           = 22.05.8",
// "SlurmctldHost[0]        = vm(127.0.0.1)"), followed by a blank line and
// the `scontrol ping` lines, which are skipped.
func (c *Client) Config(ctx context.Context) (map[string]string, error) {
	out, err := c.run(ctx, "scontrol", "show", "config")
	if err != nil {
		return nil, fmt.Errorf("reading Slurm configuration: %w", err)
	}
	return ParseConfig(out), nil
}

// ParseConfig parses `scontrol show config` output.
func ParseConfig(out []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(string(out)) {
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// CloudNodesVisible reports whether PrivateData includes "cloud". Without
// it, real 22.05 hides powered-down cloud nodes from every command, root
// included, so Nodes() cannot see them.
func CloudNodesVisible(cfg map[string]string) bool {
	for _, p := range strings.Split(cfg["PrivateData"], ",") {
		if strings.EqualFold(strings.TrimSpace(p), "cloud") {
			return true
		}
	}
	return false
}
