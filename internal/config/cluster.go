package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// DefaultSlurmConf is read when $SLURM_CONF is not set.
const DefaultSlurmConf = "/etc/slurm/slurm.conf"

// ResolveClusterName returns the value of the slurm-ec2:cluster tag: ClusterName of
// config.json, else ClusterName= of the slurm.conf at $SLURM_CONF (else /etc/slurm/slurm.conf),
// lower-cased as Slurm itself does, else an error telling the admin what to set.
func (c *Config) ResolveClusterName(getenv func(string) string) (string, error) {
	if c.ClusterName != "" {
		return c.ClusterName, nil
	}
	path := DefaultSlurmConf
	if getenv != nil {
		if p := getenv("SLURM_CONF"); p != "" {
			path = p
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no ClusterName in %s and cannot read slurm.conf to find it (%w): set \"ClusterName\" in config.json", c.ConfigFile, err)
	}
	name, ok := slurmConfValue(data, "ClusterName")
	if !ok || name == "" {
		return "", fmt.Errorf("no ClusterName in %s nor in %s: set \"ClusterName\" in config.json", c.ConfigFile, path)
	}
	name = strings.ToLower(name)
	if !clusterRE.MatchString(name) {
		return "", fmt.Errorf("ClusterName %q of %s does not match ^[a-zA-Z0-9_-]+$: set \"ClusterName\" in config.json", name, path)
	}
	return name, nil
}

// slurmConfValue finds key=value (key case-insensitive) at the start of a slurm.conf line,
// ignoring comments. The last occurrence wins, as in Slurm.
func slurmConfValue(data []byte, key string) (string, bool) {
	var val string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		k, v, ok := strings.Cut(fields[0], "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			val, found = strings.Trim(v, `"`), true
		}
	}
	return val, found
}
