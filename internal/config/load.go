package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/trust"
)

// MaxNodesLimit bounds MaxNodes of one node group (and so one hostlist).
const MaxNodesLimit = 100_000

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	clusterRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	logLevels = []string{"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}

	configKeys = []string{"LogLevel", "LogFileName", "SlurmBinPath", "SlurmConf",
		"ClusterName", "CoolDownSeconds", "OrphanGraceSeconds", "CommandTimeoutSeconds", "MetricsFile", "NodeGroupOptions",
		"LockDir", "HealthCheckGraceSeconds",
		"BackOffBaseSeconds", "BackOffMaxSeconds", "HoldAfterFailures"}
	nodeGroupOptionKeys = []string{"AllOrNothing"}
	partitionsKeys      = []string{"Partitions"}
	partitionKeys       = []string{"PartitionName", "NodeGroups", "PartitionOptions"}
	nodeGroupKeys       = []string{"NodeGroupName", "MaxNodes", "Region", "ProfileName", "SlurmSpecifications",
		"PurchasingOption", "OnDemandOptions", "SpotOptions", "LaunchTemplateSpecification",
		"LaunchTemplateOverrides", "SubnetIds", "Tags"}
	tagKeys = []string{"Key", "Value"}
)

// Load reads dir/config.json and dir/partitions.json.
func Load(dir string) (*Config, error) {
	return LoadFiles(filepath.Join(dir, ConfigFileName), filepath.Join(dir, PartitionsFileName))
}

// LoadFiles reads and validates both files. An invalid configuration returns an *Error that
// lists every problem found in either file.
func LoadFiles(configFile, partitionsFile string) (*Config, error) {
	cdata, cerr := os.ReadFile(configFile)
	pdata, perr := os.ReadFile(partitionsFile)
	if cerr == nil {
		cerr = trust.Self().File(configFile)
	}
	if perr == nil {
		perr = trust.Self().File(partitionsFile)
	}
	cfg, err := load(configFile, cdata, cerr, partitionsFile, pdata, perr)
	if err != nil {
		return nil, err
	}
	if err := checkSlurmBinPath(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// load decodes both files' contents; readErr are the errors of reading them.
func load(configFile string, cdata []byte, cerr error, partitionsFile string, pdata []byte, perr error) (*Config, error) {
	cfg := &Config{
		Dir:                   filepath.Dir(configFile),
		ConfigFile:            configFile,
		PartitionsFile:        partitionsFile,
		LogLevel:              DefaultLogLevel,
		SlurmBinPath:          DefaultSlurmBinPath,
		CoolDownSeconds:       DefaultCoolDownSeconds,
		OrphanGraceSeconds:    DefaultOrphanGraceSeconds,
		CommandTimeoutSeconds: DefaultCommandTimeoutSeconds,
		LockDir:               DefaultLockDir,
		BackOffBaseSeconds:    DefaultBackOffBaseSeconds,
		BackOffMaxSeconds:     DefaultBackOffMaxSeconds,
		HoldAfterFailures:     DefaultHoldAfterFailures,
	}
	cfg.HealthCheckGraceSeconds = DefaultHealthCheckGraceSeconds
	cfg.LogFileName = filepath.Join(cfg.Dir, DefaultLogFile)

	cc := &checker{file: configFile}
	var groupOpts map[string]*node
	if root := readJSON(cc, cdata, cerr); root != nil {
		groupOpts = decodeConfig(cc, root, cfg)
	}
	pc := &checker{file: partitionsFile}
	if root := readJSON(pc, pdata, perr); root != nil {
		decodePartitions(pc, root, cfg)
	}
	applyGroupOptions(cc, groupOpts, cfg, len(pc.problems) == 0)

	problems := append(cc.problems, pc.problems...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	cfg.index()
	return cfg, nil
}

func readJSON(c *checker, data []byte, err error) *node {
	if err != nil {
		var ut *trust.Untrusted
		if errors.Is(err, os.ErrNotExist) {
			c.add("", "file not found: create it (see docs/configuration.md) or point --config-dir at the directory that holds it")
		} else if errors.As(err, &ut) {
			c.add("", "refused: %v", err)
		} else {
			c.add("", "cannot read: %v", err)
		}
		return nil
	}
	root, err := parseJSON(data)
	if err != nil {
		c.add("", "invalid JSON at %v", err)
		return nil
	}
	return root
}

func decodeConfig(c *checker, root *node, cfg *Config) map[string]*node {
	m, ok := c.object(root, "", configKeys)
	if !ok {
		return nil
	}
	if v, ok := c.str(m, "", "LogLevel", false); ok {
		if up := strings.ToUpper(v); contains(logLevels, up) {
			cfg.LogLevel = up
		} else {
			c.add("LogLevel", "%q is not a log level: use one of %s", v, strings.Join(logLevels, ", "))
		}
	}
	if v, ok := c.str(m, "", "LogFileName", false); ok && v != "" {
		cfg.LogFileName = beside(cfg.Dir, v)
	}
	if v, ok := c.str(m, "", "SlurmBinPath", false); ok && v != "" {
		if !filepath.IsAbs(v) {
			c.add("SlurmBinPath", "%q is not an absolute path: give the full path of the folder holding scontrol, e.g. /usr/bin", v)
		} else {
			cfg.SlurmBinPath = filepath.Clean(v)
		}
	}
	if n, ok := m["SlurmConf"]; ok {
		cfg.SlurmConf = c.kvs(n, "SlurmConf", "NodeName", "PartitionName")
		for _, key := range []string{"ResumeProgram", "SuspendProgram", "ResumeFailProgram"} {
			v, found := Lookup(cfg.SlurmConf, key)
			if !found && key != "ResumeFailProgram" && n.kind == kObject {
				c.add(join("SlurmConf", key), "missing: Slurm needs the full path of the slurm-ec2 program (or a symlink to it) here")
			} else if found && !filepath.IsAbs(v) {
				c.add(join("SlurmConf", key), "%q is not an absolute path: slurmctld silently disables power saving otherwise", v)
			}
		}
	} else {
		c.add("SlurmConf", "missing: give at least ResumeProgram and SuspendProgram (see docs/configuration.md)")
	}
	if v, ok := c.str(m, "", "ClusterName", false); ok && v != "" {
		if !clusterRE.MatchString(v) {
			c.add("ClusterName", "%q must match ^[a-zA-Z0-9_-]+$ (it becomes the value of the slurm-ec2:cluster tag)", v)
		} else {
			cfg.ClusterName = v
		}
	}
	if v, ok := c.integer(m, "", "CoolDownSeconds", 0, 7*86400, false); ok {
		cfg.CoolDownSeconds = v
	}
	if v, ok := c.integer(m, "", "OrphanGraceSeconds", 0, 7*86400, false); ok {
		cfg.OrphanGraceSeconds = v
	}
	if v, ok := c.integer(m, "", "HealthCheckGraceSeconds", 0, 86400, false); ok {
		cfg.HealthCheckGraceSeconds = v
	}
	if v, ok := c.integer(m, "", "CommandTimeoutSeconds", 1, 3600, false); ok {
		cfg.CommandTimeoutSeconds = v
	}
	decodeBackOff(c, m, cfg)
	if v, ok := c.str(m, "", "MetricsFile", false); ok && v != "" {
		cfg.MetricsFile = beside(cfg.Dir, v)
	}
	if v, ok := c.str(m, "", "LockDir", false); ok && v != "" {
		if !filepath.IsAbs(v) {
			c.add("LockDir", "%q is not an absolute path: give a directory only SlurmUser can write, e.g. %s", v, DefaultLockDir)
		} else {
			cfg.LockDir = filepath.Clean(v)
		}
	}
	if n, ok := m["NodeGroupOptions"]; ok {
		if n.kind != kObject {
			c.wrongType("NodeGroupOptions", n, `an object keyed by "<partition>-<group>"`)
			return nil
		}
		opts := map[string]*node{}
		for _, mem := range n.obj {
			p := join("NodeGroupOptions", mem.key)
			if _, dup := opts[mem.key]; dup {
				c.add(p, "key given twice: keep one")
				continue
			}
			if _, ok := c.object(mem.val, p, nodeGroupOptionKeys); ok {
				opts[mem.key] = mem.val
			}
		}
		return opts
	}
	return nil
}

// beside resolves a relative path against the configuration directory.
func beside(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

func applyGroupOptions(c *checker, opts map[string]*node, cfg *Config, partitionsOK bool) {
	groups := map[string]*NodeGroup{}
	var names []string
	for _, g := range cfg.NodeGroups() {
		groups[g.Name()] = g
		names = append(names, g.Name())
	}
	for _, mem := range orderedKeys(opts) {
		p := join("NodeGroupOptions", mem)
		g, ok := groups[mem]
		if !ok {
			if partitionsOK {
				msg := fmt.Sprintf("%q names no node group of partitions.json", mem)
				if s, ok := suggest(mem, names); ok {
					msg += fmt.Sprintf(": did you mean %q?", s)
				} else {
					msg += fmt.Sprintf(`: keys are "<PartitionName>-<NodeGroupName>", one of %s`, strings.Join(names, ", "))
				}
				c.add(p, "%s", msg)
			}
			continue
		}
		m, _ := c.object(opts[mem], p, nodeGroupOptionKeys)
		if v, ok := c.boolean(m, p, "AllOrNothing"); ok {
			g.AllOrNothing = v
		}
	}
}

func orderedKeys(m map[string]*node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// sorted so problems come out in a stable order
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func decodePartitions(c *checker, root *node, cfg *Config) {
	m, ok := c.object(root, "", partitionsKeys)
	if !ok {
		return
	}
	parts, ok := m["Partitions"]
	if !ok {
		c.add("Partitions", "missing: give a list of partitions")
		return
	}
	if parts.kind != kArray {
		c.wrongType("Partitions", parts, "an array of partitions")
		return
	}
	if len(parts.arr) == 0 {
		c.add("Partitions", "empty: give at least one partition")
	}
	seenPart := map[string]string{}
	for i, pn := range parts.arr {
		path := index("Partitions", i)
		pm, ok := c.object(pn, path, partitionKeys)
		if !ok {
			continue
		}
		var p Partition
		if name, ok := c.str(pm, path, "PartitionName", true); ok {
			if !nameRE.MatchString(name) {
				c.add(join(path, "PartitionName"), "%q must match ^[a-zA-Z0-9]+$ (letters and digits only): rename it", name)
			} else if prev, dup := seenPart[name]; dup {
				c.add(join(path, "PartitionName"), "%q is already the name of %s: partition names must be unique", name, prev)
			} else {
				seenPart[name] = path
			}
			p.PartitionName = name
		}
		if n, ok := pm["PartitionOptions"]; ok {
			p.PartitionOptions = c.kvs(n, join(path, "PartitionOptions"), "PartitionName", "Nodes")
		}
		gn, ok := pm["NodeGroups"]
		switch {
		case !ok:
			c.add(join(path, "NodeGroups"), "missing: give a list of node groups")
		case gn.kind != kArray:
			c.wrongType(join(path, "NodeGroups"), gn, "an array of node groups")
		case len(gn.arr) == 0:
			c.add(join(path, "NodeGroups"), "empty: give at least one node group")
		default:
			seenGroup := map[string]string{}
			for j, g := range gn.arr {
				gp := index(join(path, "NodeGroups"), j)
				ng := decodeNodeGroup(c, g, gp)
				if ng == nil {
					continue
				}
				ng.Partition = p.PartitionName
				if ng.NodeGroupName != "" {
					if prev, dup := seenGroup[ng.NodeGroupName]; dup {
						c.add(join(gp, "NodeGroupName"), "%q is already the name of %s: node group names must be unique within a partition", ng.NodeGroupName, prev)
					}
					seenGroup[ng.NodeGroupName] = gp
				}
				p.NodeGroups = append(p.NodeGroups, ng)
			}
		}
		cfg.Partitions = append(cfg.Partitions, p)
	}
}

func decodeNodeGroup(c *checker, n *node, path string) *NodeGroup {
	m, ok := c.object(n, path, nodeGroupKeys)
	if !ok {
		return nil
	}
	g := &NodeGroup{}
	if v, ok := c.str(m, path, "NodeGroupName", true); ok {
		if !nameRE.MatchString(v) {
			c.add(join(path, "NodeGroupName"), "%q must match ^[a-zA-Z0-9]+$ (letters and digits only): rename it", v)
		}
		g.NodeGroupName = v
	}
	if v, ok := c.integer(m, path, "MaxNodes", 1, MaxNodesLimit, true); ok {
		g.MaxNodes = v
	}
	if v, ok := c.str(m, path, "Region", true); ok {
		if !regionRE.MatchString(v) {
			c.add(join(path, "Region"), "%q is not an AWS region name: use a name such as us-east-1", v)
		}
		g.Region = v
	}
	if v, ok := c.str(m, path, "ProfileName", false); ok {
		g.ProfileName = v
	}
	if sn, ok := m["SlurmSpecifications"]; ok {
		g.SlurmSpecifications = c.kvs(sn, join(path, "SlurmSpecifications"), "NodeName", "State")
	}
	if v, ok := c.str(m, path, "PurchasingOption", true); ok {
		switch v {
		case PurchasingSpot, PurchasingOnDemand:
			g.PurchasingOption = v
		default:
			c.add(join(path, "PurchasingOption"), `%q is not a purchasing option: use "spot" or "on-demand"`, v)
		}
	}
	if on, ok := m["OnDemandOptions"]; ok {
		var o types.OnDemandOptionsRequest
		if c.decodeSDK(on, &o, join(path, "OnDemandOptions")) && on.kind == kObject {
			g.OnDemandOptions = &o
		}
	}
	if g.OnDemandOptions == nil && g.PurchasingOption == PurchasingOnDemand {
		g.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyLowestPrice}
	}
	if sn, ok := m["SpotOptions"]; ok {
		var o types.SpotOptionsRequest
		if c.decodeSDK(sn, &o, join(path, "SpotOptions")) && sn.kind == kObject {
			g.SpotOptions = &o
		}
	}
	ltPath := join(path, "LaunchTemplateSpecification")
	if lt, ok := m["LaunchTemplateSpecification"]; !ok {
		c.add(ltPath, "missing: give the launch template as {\"LaunchTemplateName\": \"...\", \"Version\": \"$Latest\"}")
	} else if lt.kind != kObject {
		c.wrongType(ltPath, lt, "an object")
	} else if c.decodeSDK(lt, &g.LaunchTemplateSpecification, ltPath) {
		s := g.LaunchTemplateSpecification
		switch {
		case empty(s.LaunchTemplateId) && empty(s.LaunchTemplateName):
			c.add(ltPath, "give LaunchTemplateId or LaunchTemplateName")
		case !empty(s.LaunchTemplateId) && !empty(s.LaunchTemplateName):
			c.add(ltPath, "give LaunchTemplateId or LaunchTemplateName, not both")
		}
		if empty(s.Version) {
			c.add(join(ltPath, "Version"), `missing: CreateFleet needs a version: use "$Latest", "$Default" or a version number`)
		}
	}
	if on, ok := m["LaunchTemplateOverrides"]; ok {
		op := join(path, "LaunchTemplateOverrides")
		if on.kind == kArray {
			for i, o := range on.arr {
				if o.kind != kObject {
					continue
				}
				for _, mem := range o.obj {
					if mem.key == "SubnetId" {
						c.add(join(index(op, i), "SubnetId"), "do not set SubnetId in overrides: list subnets in the node group's SubnetIds")
					}
					if mem.key == "WeightedCapacity" {
						checkWeight(c, join(index(op, i), "WeightedCapacity"), mem.val)
					}
				}
			}
		}
		c.decodeSDK(on, &g.LaunchTemplateOverrides, op)
	}
	sp := join(path, "SubnetIds")
	if sn, ok := m["SubnetIds"]; !ok {
		c.add(sp, `missing: list the subnets to launch in, e.g. ["subnet-11111111"]`)
	} else if sn.kind != kArray {
		c.wrongType(sp, sn, "an array of subnet IDs")
	} else {
		if len(sn.arr) == 0 {
			c.add(sp, "empty: list at least one subnet ID")
		}
		seen := map[string]bool{}
		for i, s := range sn.arr {
			ip := index(sp, i)
			switch {
			case s.kind != kString:
				c.wrongType(ip, s, "a string")
			case !strings.HasPrefix(s.str, "subnet-") || strings.ContainsAny(s.str, " \t\r\n"):
				c.add(ip, "%q is not a subnet ID: use the form subnet-0123abcd", s.str)
			case seen[s.str]:
				c.add(ip, "%q is listed twice: remove the duplicate", s.str)
			default:
				seen[s.str] = true
				g.SubnetIds = append(g.SubnetIds, s.str)
			}
		}
	}
	if tn, ok := m["Tags"]; ok {
		g.Tags = decodeTags(c, tn, join(path, "Tags"))
	}
	return g
}

func empty(p *string) bool { return p == nil || *p == "" }

func decodeTags(c *checker, n *node, path string) []Tag {
	if n.kind != kArray {
		c.wrongType(path, n, `an array of {"Key": ..., "Value": ...}`)
		return nil
	}
	var out []Tag
	seen := map[string]bool{}
	for i, tn := range n.arr {
		p := index(path, i)
		m, ok := c.object(tn, p, tagKeys)
		if !ok {
			continue
		}
		k, kok := c.str(m, p, "Key", true)
		v, _ := c.str(m, p, "Value", false)
		if _, has := m["Value"]; !has {
			c.add(join(p, "Value"), "missing: give a value (it may be empty)")
		}
		if !kok {
			continue
		}
		lk := strings.ToLower(k)
		switch {
		case len(k) > 128 || len(v) > 256:
			c.add(p, "tag too long: EC2 allows keys of 128 and values of 256 characters")
		case strings.HasPrefix(lk, "aws:"):
			c.add(join(p, "Key"), "%q: the aws: prefix is reserved by AWS: rename the tag", k)
		case strings.HasPrefix(lk, "slurm-ec2:"):
			c.add(join(p, "Key"), "%q: the slurm-ec2: prefix is reserved for tags slurm-ec2 sets itself: rename the tag", k)
		case k == "Name":
			c.add(join(p, "Key"), "Name is set to the node name at launch and used to find instances: remove this tag")
		case seen[k]:
			c.add(join(p, "Key"), "%q is given twice: keep one", k)
		default:
			seen[k] = true
			out = append(out, Tag{Key: k, Value: v})
		}
	}
	return out
}
