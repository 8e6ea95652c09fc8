package confgen

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// Shapes is what EC2 said about the instance types of the node groups; generate-conf fills it
// (fleet.DescribeShapes, fleet.TemplateInstanceType) for the groups NeedsEC2 names. A nil
// *Shapes means nothing was looked up.
type Shapes struct {
	Types map[string]fleet.Shape // by instance type name
	// Template is the instance type of a group's launch template, by group name, for the groups
	// whose LaunchTemplateOverrides name no type.
	Template map[string]string
	// Refused names the groups EC2 would not describe (UnauthorizedOperation): they keep what
	// SlurmSpecifications give, without a further warning.
	Refused []string
}

func (s *Shapes) shape(name string) (fleet.Shape, bool) {
	if s == nil {
		return fleet.Shape{}, false
	}
	sh, ok := s.Types[name]
	return sh, ok
}

// typesOf is InstanceTypes, with the launch template's type for a group whose overrides name
// none (fromTemplate).
func (s *Shapes) typesOf(g *config.NodeGroup) (names []string, reqs []*types.InstanceRequirementsRequest, fromTemplate bool) {
	names, reqs = InstanceTypes(g)
	if len(names) == 0 && len(reqs) == 0 && s != nil && s.Template[g.Name()] != "" {
		return []string{s.Template[g.Name()]}, nil, true
	}
	return names, reqs, false
}

// The memory Slurm is told about is below what EC2 sells: the kernel and firmware keep part of
// it (slurmd -C reports MemTotal, not the instance size), and a RealMemory above what slurmd
// finds drains the node at registration ("Low RealMemory"). We keep 5% of the instance memory,
// as AWS ParallelCluster does for memory-based scheduling (its RealMemory is 95% of EC2's
// figure), and at least 512 MiB, because small instances lose more than 5% to the kernel.
const (
	osReservePercent = 5
	osReserveMinMiB  = 512
)

// RealMemory is the RealMemory written for an instance of memMiB (EC2's MemoryInfo.SizeInMiB).
func RealMemory(memMiB int64) int64 {
	reserve := max(memMiB*osReservePercent/100, osReserveMinMiB)
	return max(memMiB-reserve, 1)
}

// NeedsEC2 reports whether a node group's SlurmSpecifications leave out CPUs or RealMemory, so
// generate-conf must ask EC2 about its instance types.
func NeedsEC2(g *config.NodeGroup) bool {
	_, cpus := config.Lookup(g.SlurmSpecifications, "CPUs")
	_, mem := config.Lookup(g.SlurmSpecifications, "RealMemory")
	return !cpus || !mem
}

// InstanceTypes lists the instance types a group's LaunchTemplateOverrides name, in order, and
// the overrides that select types by attributes (InstanceRequirements) instead.
func InstanceTypes(g *config.NodeGroup) (names []string, reqs []*types.InstanceRequirementsRequest) {
	for _, o := range g.LaunchTemplateOverrides {
		if o.InstanceType != "" && !slices.Contains(names, string(o.InstanceType)) {
			names = append(names, string(o.InstanceType))
		}
		if o.InstanceRequirements != nil {
			reqs = append(reqs, o.InstanceRequirements)
		}
	}
	return names, reqs
}

// derived is what generate-conf adds to one NodeName line, and why.
type derived struct {
	specs []config.KV // in NodeName order, only keys SlurmSpecifications leave out
	notes []string    // comment lines: where the values came from
	warns []string    // comment lines and stderr: what a mixed group wastes, what could not be derived
	// gpuFile is the gres.conf File= of the derived GPUs, "" when unknown.
	gpuFile string
}

// derive works out the values a group's SlurmSpecifications leave out from EC2's shapes.
func derive(g *config.NodeGroup, shapes *Shapes) derived {
	var d derived
	if !NeedsEC2(g) {
		return d
	}
	if shapes != nil && slices.Contains(shapes.Refused, g.Name()) {
		return d
	}
	names, reqs, fromTemplate := shapes.typesOf(g)
	if len(names) == 0 && len(reqs) == 0 {
		if shapes != nil {
			d.warns = append(d.warns, fmt.Sprintf("%s: no InstanceType in LaunchTemplateOverrides nor in the launch template: give CPUs and RealMemory in SlurmSpecifications", g.Name()))
		}
		return d
	}
	var list []fleet.Shape
	for _, n := range names {
		s, ok := shapes.shape(n)
		if !ok {
			d.warns = append(d.warns, fmt.Sprintf("%s: EC2 did not describe %s: give CPUs and RealMemory in SlurmSpecifications", g.Name(), n))
			return d
		}
		list = append(list, s)
	}
	for _, r := range reqs {
		s, note := requirementsShape(r)
		list = append(list, s)
		d.notes = append(d.notes, note)
	}
	c, waste := fleet.Common(list)
	d.warns = append(d.warns, prefixed(g.Name()+": ", waste)...)
	given := func(k string) bool { _, ok := config.Lookup(g.SlurmSpecifications, k); return ok }
	add := func(k, v string) {
		if !given(k) {
			d.specs = append(d.specs, config.KV{Key: k, Value: v})
		}
	}
	var wrote []string
	track := func(k, v string) {
		if !given(k) {
			wrote = append(wrote, k)
		}
		add(k, v)
	}
	if c.VCPUs > 0 {
		track("CPUs", strconv.Itoa(c.VCPUs))
	}
	// The layout: only when EC2 gives cores and threads for every type, and only when the site
	// gave none of it (a partial layout of ours beside theirs could contradict it). EC2 does not
	// say how many sockets an instance has, so the cores go on one socket: slurmd may report
	// two sockets on the largest types, which Slurm accepts (the counts are compared as
	// sockets x cores x threads) and logs as "Node configuration differs from hardware".
	layoutKeys := []string{"Boards", "SocketsPerBoard", "Sockets", "CoresPerSocket", "ThreadsPerCore"}
	layoutGiven := slices.ContainsFunc(layoutKeys, given)
	cpus, cpusGiven := config.Lookup(g.SlurmSpecifications, "CPUs")
	if c.Cores > 0 && !layoutGiven && (!cpusGiven || cpus == strconv.Itoa(c.VCPUs)) && len(reqs) == 0 {
		for _, kv := range []config.KV{{Key: "Boards", Value: "1"}, {Key: "SocketsPerBoard", Value: "1"},
			{Key: "CoresPerSocket", Value: strconv.Itoa(c.Cores)}, {Key: "ThreadsPerCore", Value: strconv.Itoa(c.ThreadsPerCore)}} {
			track(kv.Key, kv.Value)
		}
	}
	if c.MemoryMiB > 0 {
		track("RealMemory", strconv.FormatInt(RealMemory(c.MemoryMiB), 10))
	}
	if gres := gpuGres(c); gres != "" {
		track("Gres", gres)
		d.gpuFile = gpuDeviceFiles(c)
	}
	if f := features(c, list); f != "" {
		track("Features", f)
	}
	if len(wrote) > 0 {
		source := fmt.Sprintf("EC2 (DescribeInstanceTypes, %s)", g.Region)
		switch {
		case fromTemplate:
			source += " for the launch template's instance type"
		case len(names) == 0:
			source = "the InstanceRequirements minimums"
		case len(reqs) > 0:
			source += " and the InstanceRequirements minimums"
		}
		d.notes = append([]string{fmt.Sprintf("%s: %s from %s: %s", g.Name(), strings.Join(wrote, ", "), source, describeShapes(list, c, slices.Contains(wrote, "RealMemory")))}, d.notes...)
	}
	return d
}

func prefixed(p string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = p + l
	}
	return out
}

// describeShapes is the comment text: each type's EC2 figures, and the RealMemory margin.
func describeShapes(list []fleet.Shape, c fleet.Shape, memDerived bool) string {
	var parts []string
	for _, s := range list {
		p := fmt.Sprintf("%s %d vCPUs", s.InstanceType, s.VCPUs)
		if s.Cores > 0 {
			p += fmt.Sprintf(" (%d cores x %d threads)", s.Cores, s.ThreadsPerCore)
		}
		p += fmt.Sprintf(", %d MiB", s.MemoryMiB)
		for _, g := range s.GPUs {
			p += fmt.Sprintf(", %d x %s", g.Count, strings.TrimSpace(g.Manufacturer+" "+cmp.Or(g.Name, "GPU")))
		}
		parts = append(parts, p)
	}
	if c.MemoryMiB > 0 && memDerived {
		parts = append(parts, fmt.Sprintf("RealMemory keeps %d MiB for the OS", c.MemoryMiB-RealMemory(c.MemoryMiB)))
	}
	return strings.Join(parts, "; ")
}

var nonName = regexp.MustCompile(`[^a-z0-9_]+`)

// gresType turns EC2's GPU name into a Slurm gres type: "A10G" -> "a10g",
// "Radeon Pro V520" -> "radeon_pro_v520".
func gresType(name string) string {
	t := strings.Trim(nonName.ReplaceAllString(strings.ToLower(name), "_"), "_")
	if t == "" || !gresNameRE.MatchString(t) {
		return ""
	}
	return t
}

// gpuGres is the Gres= value for the shape's GPUs ("gpu:a100:8"), or "".
func gpuGres(c fleet.Shape) string {
	var out []string
	for _, g := range c.GPUs {
		if g.Count <= 0 {
			continue
		}
		if t := gresType(g.Name); t != "" {
			out = append(out, fmt.Sprintf("gpu:%s:%d", t, g.Count))
		} else {
			out = append(out, fmt.Sprintf("gpu:%d", g.Count))
		}
	}
	return strings.Join(out, ",")
}

// gpuDeviceFiles is the File= of gres.conf for the shape's GPUs: the NVIDIA driver's
// /dev/nvidia0, /dev/nvidia1, ... (the form of Slurm's gres.conf examples,
// "File=/dev/nvidia[0-3]"). slurmd (22.05 measured) ignores a gres/gpu line with a Count and no
// File, and then registers the node with 0 GPUs, which slurmctld refuses ("gres/gpu count
// reported lower than configured"). Other makers' device names are not derived: "".
func gpuDeviceFiles(c fleet.Shape) string {
	if len(c.GPUs) != 1 || c.GPUs[0].Manufacturer != "NVIDIA" || c.GPUs[0].Count <= 0 {
		return ""
	}
	return nvidiaFiles(c.GPUs[0].Count)
}

func nvidiaFiles(n int) string {
	if n > 1 {
		return fmt.Sprintf("/dev/nvidia[0-%d]", n-1)
	}
	return "/dev/nvidia0"
}

// givenGPUFile is the File= for a gpu count given in SlurmSpecifications, when EC2 described
// the group's types (shapes) as having at least that many NVIDIA GPUs; "" otherwise.
func givenGPUFile(g *config.NodeGroup, shapes *Shapes, count string) string {
	n, err := strconv.Atoi(count)
	if err != nil || n <= 0 {
		return ""
	}
	names, reqs, _ := shapes.typesOf(g)
	if len(names) == 0 || len(reqs) > 0 {
		return ""
	}
	var list []fleet.Shape
	for _, name := range names {
		s, ok := shapes.shape(name)
		if !ok {
			return ""
		}
		list = append(list, s)
	}
	c, _ := fleet.Common(list)
	if len(c.GPUs) != 1 || c.GPUs[0].Manufacturer != "NVIDIA" || c.GPUs[0].Count < n {
		return ""
	}
	return nvidiaFiles(n)
}

// features names what users select nodes by (sbatch --constraint): the instance type, its
// family, the architecture, the GPU model and EFA; for a group of several types only what
// they all share.
func features(c fleet.Shape, list []fleet.Shape) string {
	var f []string
	addf := func(s string) {
		if s != "" && !slices.Contains(f, s) && featureRE.MatchString(s) {
			f = append(f, s)
		}
	}
	if len(list) == 1 && list[0].Cores > 0 { // a described type, not InstanceRequirements
		addf(list[0].InstanceType)
	}
	family := ""
	for i, s := range list {
		switch {
		case s.Cores == 0: // InstanceRequirements: any family
			family = ""
		case i == 0:
			family = s.Family()
		case s.Family() != family:
			family = ""
		}
		if family == "" {
			break
		}
	}
	addf(family)
	addf(c.Architecture)
	for _, g := range c.GPUs {
		addf(gresType(g.Name))
	}
	for _, n := range c.Neuron {
		addf(strings.ToLower(n.Name))
	}
	if c.EFA {
		addf("efa")
	}
	return strings.Join(f, ",")
}

var featureRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// requirementsShape is what attribute-based selection guarantees every chosen type has: EC2
// launches only types with at least VCpuCount.Min vCPUs and MemoryMiB.Min memory (and
// AcceleratorCount.Min accelerators), so those minimums are safe to tell Slurm. The layout is
// not known, so none is written, and without a minimum there is nothing to write.
func requirementsShape(r *types.InstanceRequirementsRequest) (fleet.Shape, string) {
	s := fleet.Shape{InstanceType: "InstanceRequirements"}
	if r.VCpuCount != nil {
		s.VCPUs = int(aws.ToInt32(r.VCpuCount.Min)) // cores and threads unknown: left 0
	}
	if r.MemoryMiB != nil {
		s.MemoryMiB = int64(aws.ToInt32(r.MemoryMiB.Min))
	}
	if r.AcceleratorCount != nil && aws.ToInt32(r.AcceleratorCount.Min) > 0 &&
		slices.Equal(r.AcceleratorTypes, []types.AcceleratorType{types.AcceleratorTypeGpu}) {
		g := fleet.Accelerator{Count: int(aws.ToInt32(r.AcceleratorCount.Min))}
		if len(r.AcceleratorNames) == 1 {
			g.Name = string(r.AcceleratorNames[0])
		}
		if slices.Equal(r.AcceleratorManufacturers, []types.AcceleratorManufacturer{types.AcceleratorManufacturerNvidia}) {
			g.Manufacturer = "NVIDIA"
		}
		s.GPUs = []fleet.Accelerator{g}
	}
	if len(r.CpuManufacturers) == 1 && r.CpuManufacturers[0] == types.CpuManufacturerAmazonWebServices {
		s.Architecture = "arm64"
	}
	return s, fmt.Sprintf("InstanceRequirements: the minimums EC2 guarantees (VCpuCount.Min %d, MemoryMiB.Min %d); no layout is written because the chosen types are not known in advance", s.VCPUs, s.MemoryMiB)
}

// Warnings are the derivation warnings of every node group (also written as comment lines):
// what a group of differently sized types wastes, and what could not be looked up.
func Warnings(cfg *config.Config, shapes *Shapes) []string {
	var out []string
	for _, g := range cfg.NodeGroups() {
		out = append(out, derive(g, shapes).warns...)
	}
	return out
}

// Finding is one result of CheckShapes about a node group.
type Finding struct {
	Group string // node group name, "<partition>-<group>"
	Field string // SlurmSpecifications key the finding is about, "" for a warning about the group
	OK    bool   // false: Slurm will drain the nodes or the group wastes capacity
	Fatal bool   // the configuration cannot work as written
	Msg   string
}

// CheckShapes compares every node group with what EC2 says about its instance types
// (validate --aws): values given in SlurmSpecifications above what the smallest type has make
// slurmctld drain the nodes at registration; a group of differently sized types wastes what
// its larger types have beyond the smallest.
func CheckShapes(cfg *config.Config, shapes *Shapes) []Finding {
	var out []Finding
	for _, g := range cfg.NodeGroups() {
		names, _, _ := shapes.typesOf(g)
		var list []fleet.Shape
		for _, n := range names {
			if s, ok := shapes.shape(n); ok {
				list = append(list, s)
			}
		}
		if len(list) == 0 || len(list) != len(names) {
			continue
		}
		c, waste := fleet.Common(list)
		for _, w := range waste {
			out = append(out, Finding{Group: g.Name(), Msg: w})
		}
		if v, ok := config.Lookup(g.SlurmSpecifications, "CPUs"); ok {
			n, err := strconv.Atoi(v)
			switch {
			case err == nil && n > c.VCPUs:
				out = append(out, Finding{Group: g.Name(), Field: "CPUs", Fatal: true,
					Msg: fmt.Sprintf("CPUs=%d but %s has %d vCPUs: slurmctld drains such nodes at registration; use CPUs=%d or leave it out", n, smallest(list, func(s fleet.Shape) int64 { return int64(s.VCPUs) }), c.VCPUs, c.VCPUs)})
			case err == nil:
				out = append(out, Finding{Group: g.Name(), Field: "CPUs", OK: true, Msg: fmt.Sprintf("CPUs=%d fits %d vCPUs", n, c.VCPUs)})
			}
		}
		if v, ok := config.Lookup(g.SlurmSpecifications, "RealMemory"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err == nil && n > RealMemory(c.MemoryMiB):
				out = append(out, Finding{Group: g.Name(), Field: "RealMemory", Fatal: n > c.MemoryMiB,
					Msg: fmt.Sprintf("RealMemory=%d but %s has %d MiB, of which the OS keeps part: slurmd will report less and slurmctld drains the node (Low RealMemory); use at most %d or leave it out", n, smallest(list, func(s fleet.Shape) int64 { return s.MemoryMiB }), c.MemoryMiB, RealMemory(c.MemoryMiB))})
			case err == nil:
				out = append(out, Finding{Group: g.Name(), Field: "RealMemory", OK: true, Msg: fmt.Sprintf("RealMemory=%d fits %d MiB", n, c.MemoryMiB)})
			}
		}
	}
	return out
}

// smallest names the type with the least of v.
func smallest(list []fleet.Shape, v func(fleet.Shape) int64) string {
	return slices.MinFunc(list, func(a, b fleet.Shape) int { return cmp.Compare(v(a), v(b)) }).InstanceType
}
