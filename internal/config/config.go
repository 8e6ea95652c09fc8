// Package config loads and validates config.json and partitions.json, the two files of the
// AWS plugin for Slurm v2, accepted unchanged, plus a few optional keys of ours in config.json.
package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// File names inside the configuration directory.
const (
	ConfigFileName     = "config.json"
	PartitionsFileName = "partitions.json"
)

// Defaults of optional keys.
const (
	DefaultLogLevel              = "DEBUG"
	DefaultLogFile               = "aws_plugin.log" // beside config.json
	DefaultSlurmBinPath          = "/usr/bin"
	DefaultCoolDownSeconds       = 300
	DefaultOrphanGraceSeconds    = 300
	DefaultCommandTimeoutSeconds = 60
	// DefaultLockDir holds the per-node-group lock files. /run/lock is where FHS 3.0 puts lock
	// files; slurm-ec2 creates this directory (0700, owned by the user running it) on first use.
	DefaultLockDir = "/run/lock/slurm-ec2"
	// DefaultHealthCheckGraceSeconds is how long an instance's status checks may fail before
	// reconcile replaces its node: three of EC2's checks, which run every minute (EC2 User Guide,
	// "Status checks for Amazon EC2 instances"), so one failed check that clears itself is ignored.
	DefaultHealthCheckGraceSeconds = 180
	DefaultBackOffBaseSeconds      = 300
	DefaultBackOffMaxSeconds       = 1800
	DefaultHoldAfterFailures       = 3
)

// KV is one key=value of a Slurm setting, kept in file order.
type KV struct{ Key, Value string }

// Tag is one EC2 tag of a node group.
type Tag struct{ Key, Value string }

// Config is both files, loaded and checked.
type Config struct {
	Dir, ConfigFile, PartitionsFile string // where they were read from

	LogLevel, LogFileName, SlurmBinPath string
	SlurmConf                           []KV

	// Additions of ours (config.json only).
	ClusterName                                                string
	CoolDownSeconds, OrphanGraceSeconds, CommandTimeoutSeconds int
	MetricsFile                                                string
	LockDir                                                    string // absolute; DefaultLockDir when omitted
	HealthCheckGraceSeconds                                    int    // 0: act on a failed status check at once
	// Failed launches and boots (backoff.go): the first back-off, its bound, and how many
	// failures in a row hold a node group.
	BackOffBaseSeconds, BackOffMaxSeconds, HoldAfterFailures int

	Partitions []Partition

	byName map[string]*NodeGroup // "<partition>-<group>" -> group
}

// Partition is one entry of Partitions.
type Partition struct {
	PartitionName    string
	NodeGroups       []*NodeGroup
	PartitionOptions []KV
}

// NodeGroup is one entry of NodeGroups: nodes that share launch settings.
type NodeGroup struct {
	Partition string // set by Load

	NodeGroupName       string
	MaxNodes            int
	Region, ProfileName string
	SlurmSpecifications []KV
	PurchasingOption    string // "spot" | "on-demand"

	OnDemandOptions             *types.OnDemandOptionsRequest // filled with lowest-price for on-demand groups that omit it
	SpotOptions                 *types.SpotOptionsRequest     // nil when the file omits it (EC2's default applies)
	LaunchTemplateSpecification types.FleetLaunchTemplateSpecificationRequest
	LaunchTemplateOverrides     []types.FleetLaunchTemplateOverridesRequest
	SubnetIds                   []string
	Tags                        []Tag

	AllOrNothing bool // from config.json NodeGroupOptions
}

// Purchasing options.
const (
	PurchasingSpot     = "spot"
	PurchasingOnDemand = "on-demand"
)

// NodeGroups returns all node groups in file order.
func (c *Config) NodeGroups() []*NodeGroup {
	var out []*NodeGroup
	for _, p := range c.Partitions {
		out = append(out, p.NodeGroups...)
	}
	return out
}

// NodeGroup returns the group named "<partition>-<group>".
func (c *Config) NodeGroup(name string) (*NodeGroup, bool) {
	c.index()
	g, ok := c.byName[name]
	return g, ok
}

func (c *Config) index() {
	if c.byName != nil {
		return
	}
	c.byName = map[string]*NodeGroup{}
	for _, g := range c.NodeGroups() {
		c.byName[g.Name()] = g
	}
}

// LookupNode maps a node name such as "aws-spot-7" to its group and index. It reports false
// for names that are not ours, indexes >= MaxNodes and indexes with leading zeros.
func (c *Config) LookupNode(name string) (g *NodeGroup, index int, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return nil, 0, false
	}
	digits := name[i+1:]
	if digits == "" || len(digits) > 9 || (len(digits) > 1 && digits[0] == '0') {
		return nil, 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return nil, 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return nil, 0, false
	}
	g, found := c.NodeGroup(name[:i])
	if !found || n >= g.MaxNodes {
		return nil, 0, false
	}
	return g, n, true
}

// Name is the node name prefix "<partition>-<group>".
func (g *NodeGroup) Name() string { return g.Partition + "-" + g.NodeGroupName }

// NodeName is the name of node i of the group.
func (g *NodeGroup) NodeName(i int) string { return g.Name() + "-" + strconv.Itoa(i) }

// Hostlist is the hostlist of every node of the group, "aws-spot-[0-99]".
func (g *NodeGroup) Hostlist() string {
	if g.MaxNodes == 1 {
		return g.NodeName(0)
	}
	return fmt.Sprintf("%s-[0-%d]", g.Name(), g.MaxNodes-1)
}

// IsSpot reports whether the group launches spot instances.
func (g *NodeGroup) IsSpot() bool { return g.PurchasingOption == PurchasingSpot }

// Lookup returns the value of key in kvs, compared case-insensitively as Slurm does.
func Lookup(kvs []KV, key string) (string, bool) {
	for _, kv := range kvs {
		if strings.EqualFold(kv.Key, key) {
			return kv.Value, true
		}
	}
	return "", false
}

// Problem is one thing wrong in a file.
type Problem struct{ File, Path, Msg string } // Path like Partitions[0].NodeGroups[1].MaxNodes

func (p Problem) String() string {
	switch {
	case p.Path == "":
		return p.File + ": " + p.Msg
	default:
		return p.File + ": " + p.Path + ": " + p.Msg
	}
}

// Error lists every problem found in the configuration.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// ExitCode makes a configuration error exit with status 2.
func (e *Error) ExitCode() int { return 2 }
