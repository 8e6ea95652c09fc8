// Package confgen writes the slurm.conf (and gres.conf) snippet for the node groups of a
// configuration, the successor of the Python plugin's generate_conf.py.
package confgen

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// Settings written after SlurmConf unless SlurmConf already gives them. They are what a
// current Slurm (22.05+) needs for cloud nodes whose address is set by the ResumeProgram
// with `scontrol update nodename=... nodeaddr=...`.
const (
	// SuspendTimeout: how long slurmctld waits for SuspendProgram's nodes to power down.
	// TerminateInstances returns at once, so 60 s leaves room for a slow EC2 call.
	defaultSuspendTimeout = "60"
	// SlurmctldParameters: idle_on_node_suspend makes a node that was DOWN or DRAINED when
	// powered down come back as IDLE, so a spot interruption or failed launch does not keep
	// it out of use. Deliberately absent:
	//   cloud_dns       - Slurm would resolve node names through DNS; our names do not
	//                     resolve, and ParallelCluster dropped it for the same reason.
	//   cloud_reg_addrs - slurmd would set NodeAddr/NodeHostname at registration; our
	//                     resume sets them before the node boots (the first job launch needs it).
	defaultSlurmctldParameters = "idle_on_node_suspend"
	// CommunicationParameters=NoAddrCache: a cloud node's address changes at every resume;
	// without it slurmctld and the slurmds may keep talking to a cached old address.
	defaultCommunicationParameters = "NoAddrCache"
	// ResumeFailProgram is the resume-fail program beside ResumeProgram: a symlink named
	// resume-fail to slurm-ec2 (the binary dispatches on its invoked name).
	resumeFailName = "resume-fail"
)

// Write writes the slurm.conf snippet for Slurm release rel (the zero Release: unknown, today's
// output): SlurmConf in file order, the cloud settings above that SlurmConf does not give (those
// rel accepts), one NodeName line per node group and one PartitionName line per partition.
// shapes (nil when nothing was looked up) fills in what SlurmSpecifications leave out of a
// NodeName line; comment lines above it say what came from EC2.
func Write(w io.Writer, cfg *config.Config, shapes *Shapes, rel Release) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# slurm-ec2 generate-conf: append to slurm.conf (from %s and %s)\n", filepath.Base(cfg.ConfigFile), filepath.Base(cfg.PartitionsFile))
	for _, kv := range cfg.SlurmConf {
		fmt.Fprintf(bw, "%s=%s\n", kv.Key, kv.Value)
	}
	rec, err := recommended(cfg, shapes, rel)
	if err != nil {
		return err
	}
	for _, kv := range rec {
		if _, given := config.Lookup(cfg.SlurmConf, kv.Key); !given {
			fmt.Fprintf(bw, "%s=%s\n", kv.Key, kv.Value)
		}
	}
	for _, g := range cfg.NodeGroups() {
		d := derive(g, shapes)
		for _, n := range d.notes {
			fmt.Fprintf(bw, "# %s\n", n)
		}
		for _, n := range d.warns {
			fmt.Fprintf(bw, "# warning: %s\n", n)
		}
		fmt.Fprintf(bw, "NodeName=%s State=CLOUD", g.Hostlist())
		for _, kv := range append(slices.Clone(g.SlurmSpecifications), d.specs...) {
			fmt.Fprintf(bw, " %s=%s", kv.Key, kv.Value)
		}
		bw.WriteByte('\n')
	}
	for _, p := range cfg.Partitions {
		hosts := make([]string, len(p.NodeGroups))
		for i, g := range p.NodeGroups {
			hosts[i] = g.Hostlist()
		}
		fmt.Fprintf(bw, "PartitionName=%s Nodes=%s", p.PartitionName, strings.Join(hosts, ","))
		defaults := []config.KV{{Key: "MaxTime", Value: "INFINITE"}, {Key: "State", Value: "UP"}}
		for _, d := range defaults {
			if v, ok := config.Lookup(p.PartitionOptions, d.Key); ok {
				d.Value = v
			}
			fmt.Fprintf(bw, " %s=%s", d.Key, d.Value)
		}
		for _, kv := range p.PartitionOptions {
			if _, isDefault := config.Lookup(defaults, kv.Key); !isDefault {
				fmt.Fprintf(bw, " %s=%s", kv.Key, kv.Value)
			}
		}
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing slurm.conf snippet: %w", err)
	}
	return nil
}

func recommended(cfg *config.Config, shapes *Shapes, rel Release) ([]config.KV, error) {
	var out []config.KV
	// GresTypes must list every gres name used by a NodeName line, or slurmctld refuses
	// to start.
	groups, err := groupGres(cfg, shapes)
	if err != nil {
		return nil, err
	}
	var gresTypes []string
	for _, gg := range groups {
		for _, g := range gg.gres {
			if !slices.Contains(gresTypes, g.Name) {
				gresTypes = append(gresTypes, g.Name)
			}
		}
	}
	if len(gresTypes) > 0 {
		out = append(out, config.KV{Key: "GresTypes", Value: strings.Join(gresTypes, ",")})
	}
	if rp, ok := config.Lookup(cfg.SlurmConf, "ResumeProgram"); ok && rp != "" {
		out = append(out, config.KV{Key: "ResumeFailProgram", Value: path.Join(path.Dir(rp), resumeFailName)})
	}
	out = append(out,
		config.KV{Key: "SuspendTimeout", Value: defaultSuspendTimeout},
		config.KV{Key: "SlurmctldParameters", Value: defaultSlurmctldParameters})
	if v := communicationParameters(rel); v != "" {
		out = append(out, config.KV{Key: "CommunicationParameters", Value: v})
	}
	return out, nil
}

// nodeGroupGres is a node group's parsed Gres= specification.
type nodeGroupGres struct {
	group   *config.NodeGroup
	gres    []Gres
	gpuFile string // File= for its gpu gres, when derived from EC2
}

// groupGres parses the Gres= of every node group that declares one or gets one from EC2, in
// config order.
func groupGres(cfg *config.Config, shapes *Shapes) ([]nodeGroupGres, error) {
	var out []nodeGroupGres
	for _, ng := range cfg.NodeGroups() {
		spec, ok := config.Lookup(ng.SlurmSpecifications, "Gres")
		gpuFile := ""
		if !ok {
			d := derive(ng, shapes)
			spec, ok = config.Lookup(d.specs, "Gres")
			gpuFile = d.gpuFile
		}
		if !ok || spec == "" {
			continue
		}
		gres, err := ParseGres(spec)
		if err != nil {
			return nil, fmt.Errorf("node group %s: SlurmSpecifications.Gres: %w", ng.Name(), err)
		}
		out = append(out, nodeGroupGres{ng, gres, gpuFile})
	}
	return out, nil
}

// Gres is one generic resource of a node, parsed from a Gres= specification.
type Gres struct {
	Name, Type, Count string
}

var (
	gresNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	gresCountRE = regexp.MustCompile(`^[0-9]+[KMGTP]?$`)
)

// ParseGres parses a Slurm Gres= value such as "gpu:4", "gpu:a100:1" or
// "gpu:a100:2,mps:200". A "(S:0-1)" socket binding suffix is accepted and ignored; a
// missing count means 1, as in Slurm.
func ParseGres(spec string) ([]Gres, error) {
	var out []Gres
	for _, item := range splitOutsideParens(spec) {
		if i := strings.IndexByte(item, '('); i >= 0 {
			item = item[:i]
		}
		parts := strings.Split(item, ":")
		g := Gres{Name: parts[0], Count: "1"}
		switch len(parts) {
		case 1:
		case 2:
			if gresCountRE.MatchString(parts[1]) {
				g.Count = parts[1]
			} else {
				g.Type = parts[1]
			}
		case 3:
			g.Type, g.Count = parts[1], parts[2]
		default:
			return nil, fmt.Errorf("gres %q: use name[:type][:count], e.g. gpu:a100:4", item)
		}
		if !gresNameRE.MatchString(g.Name) || (g.Type != "" && !gresNameRE.MatchString(g.Type)) || !gresCountRE.MatchString(g.Count) {
			return nil, fmt.Errorf("gres %q: use name[:type][:count], e.g. gpu:a100:4", item)
		}
		out = append(out, g)
	}
	return out, nil
}

func splitOutsideParens(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// WriteGres writes the gres.conf lines of every node group whose SlurmSpecifications give
// Gres= or whose instance types have GPUs (shapes). It reports whether there was any. NVIDIA
// GPUs described from EC2 get their device files (File=/dev/nvidia[0-N], see gpuDeviceFiles),
// and so does a gpu count given in SlurmSpecifications when EC2 described the group's types as
// NVIDIA; other gres get counts only, since their devices are not known. For
// device binding on an AMI whose slurmd is built with NVML, "AutoDetect=nvml" in the compute
// nodes' gres.conf does both; the header of the output says so.
func WriteGres(w io.Writer, cfg *config.Config, shapes *Shapes) (wrote bool, err error) {
	groups, err := groupGres(cfg, shapes)
	if err != nil {
		return false, err
	}
	if len(groups) == 0 {
		return false, nil
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# slurm-ec2: gres.conf for the cloud node groups. NVIDIA GPUs known from EC2 name their device")
	fmt.Fprintln(bw, "# files; other lines are counts only (slurmd ignores a gpu line without File=: give one there).")
	fmt.Fprintln(bw, "# With an NVML-enabled slurmd on the compute AMI, AutoDetect=nvml finds the GPUs instead.")
	// Slurm 22.05 read_config.c (_gres_reconfig, "Load in GRES for node now"): slurmctld loads
	// gres.conf for CLOUD nodes when it starts, not on reconfigure, and a cloud node's first
	// job is counted against that number before its slurmd registers. Without these lines on
	// the controller it counts 0 and refuses the node ("Count changed ... (0 != 1)", INVAL).
	// It counts File= without opening it (e2e TestInstanceTypeGPU: /dev/nvidia0 on a host without one).
	fmt.Fprintln(bw, "# Needed on the slurmctld host too, before slurmctld starts: it counts the GPUs of CLOUD nodes")
	fmt.Fprintln(bw, "# from this file at start (restart it after a change; scontrol reconfigure does not reload them).")
	for _, gg := range groups {
		for _, g := range gg.gres {
			fmt.Fprintf(bw, "NodeName=%s Name=%s", gg.group.Hostlist(), g.Name)
			if g.Type != "" {
				fmt.Fprintf(bw, " Type=%s", g.Type)
			}
			file := gg.gpuFile
			if file == "" && g.Name == "gpu" {
				file = givenGPUFile(gg.group, shapes, g.Count)
			}
			if g.Name == "gpu" && file != "" {
				fmt.Fprintf(bw, " File=%s\n", file)
				continue
			}
			fmt.Fprintf(bw, " Count=%s\n", g.Count)
		}
	}
	if err := bw.Flush(); err != nil {
		return true, fmt.Errorf("writing gres.conf snippet: %w", err)
	}
	return true, nil
}
