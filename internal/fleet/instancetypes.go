package fleet

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ConfigActions are the EC2 actions `generate-conf` and `validate --aws` call to describe node
// groups from their instance types. They are read-only and run where an administrator
// generates slurm.conf. DescribeInstanceTypes is not in HeadNodeActions (the daemons' policy)
// because no resume, suspend or reconcile needs it; DescribeLaunchTemplateVersions is.
var ConfigActions = []string{"DescribeInstanceTypes", "DescribeLaunchTemplateVersions"}

// TemplateInstanceType is the instance type a launch template version sets ("" when it sets
// none): what EC2 Fleet launches for a group whose overrides name no type.
func TemplateInstanceType(ctx context.Context, api EC2API, lt types.FleetLaunchTemplateSpecificationRequest) (string, error) {
	in := &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{cmp.Or(aws.ToString(lt.Version), "$Default")}}
	name := aws.ToString(lt.LaunchTemplateName)
	if id := aws.ToString(lt.LaunchTemplateId); id != "" {
		in.LaunchTemplateId, name = lt.LaunchTemplateId, id
	} else {
		in.LaunchTemplateName = lt.LaunchTemplateName
	}
	out, err := api.DescribeLaunchTemplateVersions(ctx, in)
	if err != nil {
		return "", fmt.Errorf("reading launch template %s version %s: %w", name, in.Versions[0], err)
	}
	if len(out.LaunchTemplateVersions) == 0 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return "", nil
	}
	return string(out.LaunchTemplateVersions[0].LaunchTemplateData.InstanceType), nil
}

// maxTypesPerCall is DescribeInstanceTypes' limit on InstanceTypes in one request (API
// reference: "Array Members: Maximum number of 100 items").
const maxTypesPerCall = 100

// Shape is what EC2 says about an instance type, reduced to what a Slurm node definition needs.
type Shape struct {
	InstanceType   string
	VCPUs          int
	Cores          int // default cores
	ThreadsPerCore int
	MemoryMiB      int64
	Architecture   string // x86_64 or arm64 (the first supported architecture)
	GPUs           []Accelerator
	// Neuron devices (Trainium, Inferentia): EC2 lists them apart from GPUs.
	Neuron []Accelerator
	EFA    bool
}

// Accelerator is one kind of GPU or Neuron device of an instance type.
type Accelerator struct {
	Name, Manufacturer string
	Count              int
	MemoryMiB          int // per device
}

// GPUCount is the number of GPUs of all kinds.
func (s Shape) GPUCount() int {
	n := 0
	for _, g := range s.GPUs {
		n += g.Count
	}
	return n
}

// Family is the part of the instance type before the dot ("c5" of "c5.xlarge").
func (s Shape) Family() string {
	f, _, _ := strings.Cut(s.InstanceType, ".")
	return f
}

// DescribeShapes asks EC2 for the shapes of names (one paginated DescribeInstanceTypes request
// per 100 names) and returns them by name. A name EC2 does not know is an error naming it.
func DescribeShapes(ctx context.Context, api EC2API, names []string) (map[string]Shape, error) {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	out := make(map[string]Shape, len(names))
	for chunk := range slices.Chunk(names, maxTypesPerCall) {
		in := &ec2.DescribeInstanceTypesInput{InstanceTypes: make([]types.InstanceType, len(chunk))}
		for i, n := range chunk {
			in.InstanceTypes[i] = types.InstanceType(n)
		}
		p := ec2.NewDescribeInstanceTypesPaginator(api, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing instance types %s: %w", strings.Join(chunk, ", "), err)
			}
			for _, it := range page.InstanceTypes {
				s := shapeOf(it)
				out[s.InstanceType] = s
			}
		}
	}
	var missing []string
	for _, n := range names {
		if _, ok := out[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("EC2 did not describe instance type %s: check the name and that the region offers it", strings.Join(missing, ", "))
	}
	return out, nil
}

func shapeOf(it types.InstanceTypeInfo) Shape {
	s := Shape{InstanceType: string(it.InstanceType)}
	if v := it.VCpuInfo; v != nil {
		s.VCPUs = int(aws.ToInt32(v.DefaultVCpus))
		s.Cores = int(aws.ToInt32(v.DefaultCores))
		s.ThreadsPerCore = int(aws.ToInt32(v.DefaultThreadsPerCore))
	}
	if s.Cores == 0 || s.ThreadsPerCore == 0 || s.Cores*s.ThreadsPerCore != s.VCPUs {
		// EC2 leaves the core count out for a few types; one thread per vCPU is what Slurm
		// accepts whatever the hardware reports.
		s.Cores, s.ThreadsPerCore = s.VCPUs, 1
	}
	if it.MemoryInfo != nil {
		s.MemoryMiB = aws.ToInt64(it.MemoryInfo.SizeInMiB)
	}
	if it.ProcessorInfo != nil && len(it.ProcessorInfo.SupportedArchitectures) > 0 {
		s.Architecture = string(it.ProcessorInfo.SupportedArchitectures[0])
	}
	if it.GpuInfo != nil {
		for _, g := range it.GpuInfo.Gpus {
			a := Accelerator{Name: aws.ToString(g.Name), Manufacturer: aws.ToString(g.Manufacturer), Count: int(aws.ToInt32(g.Count))}
			if g.MemoryInfo != nil {
				a.MemoryMiB = int(aws.ToInt32(g.MemoryInfo.SizeInMiB))
			}
			s.GPUs = append(s.GPUs, a)
		}
	}
	if it.NeuronInfo != nil {
		for _, d := range it.NeuronInfo.NeuronDevices {
			a := Accelerator{Name: aws.ToString(d.Name), Manufacturer: "AWS", Count: int(aws.ToInt32(d.Count))}
			if d.MemoryInfo != nil {
				a.MemoryMiB = int(aws.ToInt32(d.MemoryInfo.SizeInMiB))
			}
			s.Neuron = append(s.Neuron, a)
		}
	}
	if it.NetworkInfo != nil {
		s.EFA = aws.ToBool(it.NetworkInfo.EfaSupported)
	}
	return s
}

// Common is the shape every instance of a group of types can honour: the smallest vCPU count,
// core count, threads per core and memory, and a GPU kind only if all types have it (at the
// smallest count). Slurm describes every node of a NodeName line alike, so a node that lands on
// a larger type wastes the difference; waste says what, one line per type that is larger.
func Common(shapes []Shape) (common Shape, waste []string) {
	if len(shapes) == 0 {
		return Shape{}, nil
	}
	common = shapes[0]
	common.GPUs = slices.Clone(common.GPUs)
	common.Neuron = slices.Clone(common.Neuron)
	mixedArch := false
	for _, s := range shapes[1:] {
		common.VCPUs = min(common.VCPUs, s.VCPUs)
		common.Cores = min(common.Cores, s.Cores)
		common.ThreadsPerCore = min(common.ThreadsPerCore, s.ThreadsPerCore)
		common.MemoryMiB = min(common.MemoryMiB, s.MemoryMiB)
		common.GPUs = intersect(common.GPUs, s.GPUs)
		common.Neuron = intersect(common.Neuron, s.Neuron)
		common.EFA = common.EFA && s.EFA
		switch {
		case s.Architecture == "" || s.Architecture == common.Architecture: // unknown or same
		case common.Architecture == "":
			common.Architecture = s.Architecture
		default:
			mixedArch = true
		}
	}
	if mixedArch {
		common.Architecture = ""
	}
	if common.Cores > 0 && common.Cores*common.ThreadsPerCore != common.VCPUs {
		// e.g. 4 vCPUs as 2x2 and 4x1: keep a layout whose product is the vCPU count.
		common.Cores, common.ThreadsPerCore = common.VCPUs, 1
	}
	names := make([]string, len(shapes))
	for i, s := range shapes {
		names[i] = s.InstanceType
	}
	common.InstanceType = strings.Join(names, ",")
	for _, s := range shapes {
		var parts []string
		if d := s.VCPUs - common.VCPUs; d > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d vCPUs", d, s.VCPUs))
		}
		if d := s.MemoryMiB - common.MemoryMiB; d > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d MiB memory", d, s.MemoryMiB))
		}
		if d := s.GPUCount() - common.GPUCount(); d > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d GPUs", d, s.GPUCount()))
		}
		if len(parts) > 0 {
			waste = append(waste, fmt.Sprintf("%s: Slurm will not use %s (the group's nodes are described by its smallest type)", s.InstanceType, strings.Join(parts, ", ")))
		}
	}
	if mixedArch {
		waste = append(waste, fmt.Sprintf("instance types %s mix architectures: one AMI cannot boot them all", common.InstanceType))
	}
	return common, waste
}

// intersect keeps the accelerator kinds (same name and manufacturer) of a that b has too, at the
// smaller count and memory.
func intersect(a, b []Accelerator) []Accelerator {
	var out []Accelerator
	for _, x := range a {
		for _, y := range b {
			if x.Name == y.Name && x.Manufacturer == y.Manufacturer {
				x.Count = min(x.Count, y.Count)
				x.MemoryMiB = min(x.MemoryMiB, y.MemoryMiB)
				out = append(out, x)
			}
		}
	}
	return out
}
