package ec2sim

import (
	"slices"
	"strconv"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// GPUSpec is one kind of GPU of an instance type (DescribeInstanceTypes GpuInfo.Gpus).
type GPUSpec struct {
	Name         string `json:"Name"`
	Manufacturer string `json:"Manufacturer"`
	Count        int    `json:"Count"`
	MemoryMiB    int    `json:"MemoryMiB"` // per GPU
}

// NeuronSpec is one kind of AWS Trainium or Inferentia device (DescribeInstanceTypes
// NeuronInfo.NeuronDevices); EC2 does not list them as GPUs.
type NeuronSpec struct {
	Name      string `json:"Name"`
	Count     int    `json:"Count"`
	Cores     int    `json:"CoreCount"` // NeuronCores per device
	Version   int    `json:"CoreVersion"`
	MemoryMiB int    `json:"MemoryMiB"` // per device
}

// The built-in catalog: what DescribeInstanceTypes reports for the types HPC and ML sites run
// Slurm on. Numbers are from AWS's "Amazon EC2 Instance Types" guide (specification tables,
// https://docs.aws.amazon.com/ec2/latest/instancetypes/): co.html (compute optimized), gp.html
// (general purpose), mo.html (memory optimized), hpc.html (high-performance computing), ac.html
// (accelerated computing), pg.html (previous generation). Memory is the guide's GiB x 1024, as
// DescribeInstanceTypes gives it in MiB. vCPUs = cores x threads per core: the guide says "for
// x86 instances there are two vCPUs per core; for Graviton instances there is one vCPU per
// core"; the Hpc families run with simultaneous multithreading off (one thread per core).
// GPU names and memory are DescribeInstanceTypes' (GpuInfo): A100 40 GiB, A10G 24 GiB, H100
// 80 GiB, T4 16 GiB, V100 16 GiB. Trainium and Inferentia2: the AWS Neuron documentation
// ("Trn1/Trn1n architecture", "Inf2 architecture": 32 GiB per device, 2 NeuronCores-v2).
//
// Prices are us-east-1 Linux on-demand list prices (USD per hour) from the EC2 on-demand
// pricing page; the simulator uses them only to order pools (lowest-price), and spot at 40%
// of on-demand is the simulator's convention, not a quote.
func builtinInstanceTypes() []InstanceTypeSpec {
	x86 := func(name string, vcpus, gib int, mfr string, od float64) InstanceTypeSpec {
		return InstanceTypeSpec{Name: name, VCPUs: vcpus, Cores: vcpus / 2, ThreadsPerCore: 2, MemoryMiB: gib * 1024,
			Architecture: "x86_64", Manufacturer: mfr, OnDemandPrice: od, SpotPrice: spot(od)}
	}
	graviton := func(name string, vcpus, gib int, od float64) InstanceTypeSpec {
		return InstanceTypeSpec{Name: name, VCPUs: vcpus, Cores: vcpus, ThreadsPerCore: 1, MemoryMiB: gib * 1024,
			Architecture: "arm64", Manufacturer: "AWS", OnDemandPrice: od, SpotPrice: spot(od)}
	}
	efa := func(t InstanceTypeSpec, interfaces int) InstanceTypeSpec {
		t.EFA, t.MaxEFAInterfaces = true, interfaces
		return t
	}
	gpu := func(t InstanceTypeSpec, name, mfr string, count, mib int) InstanceTypeSpec {
		t.GPUs = []GPUSpec{{Name: name, Manufacturer: mfr, Count: count, MemoryMiB: mib}}
		return t
	}
	neuron := func(t InstanceTypeSpec, name string, count int) InstanceTypeSpec {
		t.Neuron = []NeuronSpec{{Name: name, Count: count, Cores: 2, Version: 2, MemoryMiB: 32768}}
		return t
	}
	prev := func(t InstanceTypeSpec) InstanceTypeSpec { t.PreviousGeneration = true; return t }
	// c4 is previous generation (pg.html); c4.large has 3.75 GiB, c4.xlarge 7.5 GiB and
	// p3.2xlarge (ac.html) 61 GiB, not whole GiB.
	c4l := prev(x86("c4.large", 2, 0, "Intel", 0.10))
	c4l.MemoryMiB, c4l.SpotPrice = 3840, 0.0330
	c4x := prev(x86("c4.xlarge", 4, 0, "Intel", 0.199))
	c4x.MemoryMiB, c4x.SpotPrice = 7680, 0.0650
	p3 := gpu(x86("p3.2xlarge", 8, 0, "Intel", 3.06), "V100", "NVIDIA", 1, 16384)
	p3.MemoryMiB, p3.SpotPrice = 62464, 0.9180
	// hpc.html: SMT off, one thread per core.
	hpc6a := efa(x86("hpc6a.48xlarge", 96, 384, "AMD", 2.88), 1)
	hpc6a.Cores, hpc6a.ThreadsPerCore = 96, 1
	return []InstanceTypeSpec{
		// compute optimized (co.html)
		{Name: "c5.large", VCPUs: 2, Cores: 1, ThreadsPerCore: 2, MemoryMiB: 4096, Architecture: "x86_64", Manufacturer: "Intel", OnDemandPrice: 0.085, SpotPrice: 0.0340},
		{Name: "c5.xlarge", VCPUs: 4, Cores: 2, ThreadsPerCore: 2, MemoryMiB: 8192, Architecture: "x86_64", Manufacturer: "Intel", OnDemandPrice: 0.17, SpotPrice: 0.0680},
		{Name: "c5.2xlarge", VCPUs: 8, Cores: 4, ThreadsPerCore: 2, MemoryMiB: 16384, Architecture: "x86_64", Manufacturer: "Intel", OnDemandPrice: 0.34, SpotPrice: 0.1360},
		x86("c5.4xlarge", 16, 32, "Intel", 0.68),
		efa(x86("c5n.18xlarge", 72, 192, "Intel", 3.888), 1),
		x86("c6i.xlarge", 4, 8, "Intel", 0.17),
		x86("c6a.xlarge", 4, 8, "AMD", 0.153),
		x86("c7i.xlarge", 4, 8, "Intel", 0.1785),
		graviton("c7g.xlarge", 4, 8, 0.145),
		efa(graviton("c7g.16xlarge", 64, 128, 2.32), 1),
		c4l, c4x,
		// general purpose (gp.html)
		{Name: "m5.xlarge", VCPUs: 4, Cores: 2, ThreadsPerCore: 2, MemoryMiB: 16384, Architecture: "x86_64", Manufacturer: "Intel", OnDemandPrice: 0.192, SpotPrice: 0.0760},
		x86("m6i.xlarge", 4, 16, "Intel", 0.192),
		x86("m7i.2xlarge", 8, 32, "Intel", 0.4032),
		graviton("m7g.xlarge", 4, 16, 0.1632),
		// memory optimized (mo.html)
		x86("r6i.xlarge", 4, 32, "Intel", 0.252),
		x86("r7i.2xlarge", 8, 64, "Intel", 0.5292),
		graviton("r7g.xlarge", 4, 32, 0.2142),
		// high-performance computing (hpc.html)
		hpc6a,
		efa(graviton("hpc7g.16xlarge", 64, 128, 1.6832), 1),
		// accelerated computing (ac.html)
		p3,
		efa(gpu(x86("p4d.24xlarge", 96, 1152, "Intel", 32.7726), "A100", "NVIDIA", 8, 40960), 4),
		efa(gpu(x86("p5.48xlarge", 192, 2048, "AMD", 98.32), "H100", "NVIDIA", 8, 81920), 32),
		gpu(x86("g4dn.xlarge", 4, 16, "Intel", 0.526), "T4", "NVIDIA", 1, 16384),
		gpu(x86("g4dn.2xlarge", 8, 32, "Intel", 0.752), "T4", "NVIDIA", 1, 16384),
		gpu(x86("g5.xlarge", 4, 16, "AMD", 1.006), "A10G", "NVIDIA", 1, 24576),
		gpu(x86("g5.2xlarge", 8, 32, "AMD", 1.212), "A10G", "NVIDIA", 1, 24576),
		efa(gpu(x86("g5.12xlarge", 48, 192, "AMD", 5.672), "A10G", "NVIDIA", 4, 24576), 1),
		neuron(x86("trn1.2xlarge", 8, 32, "Intel", 1.34375), "Trainium", 1),
		efa(neuron(x86("trn1.32xlarge", 128, 512, "Intel", 21.50), "Trainium", 16), 8),
		neuron(x86("inf2.xlarge", 4, 16, "AMD", 0.7582), "Inferentia2", 1),
	}
}

func spot(onDemand float64) float64 { return float64(int(onDemand*0.4*10000+0.5)) / 10000 }

// catalogTypes is the simulator's instance types: the built-in catalog, where an entry of the
// world's InstanceTypes replaces the built-in one of the same name, and zero fields of a world
// entry are taken from the built-in one (a world that lists only name, vCPUs, memory and
// prices keeps the layout, GPUs and architecture). World entries come first, in their order.
func catalogTypes(world []InstanceTypeSpec) []InstanceTypeSpec {
	builtin := builtinInstanceTypes()
	byName := make(map[string]InstanceTypeSpec, len(builtin))
	for _, t := range builtin {
		byName[t.Name] = t
	}
	out := make([]InstanceTypeSpec, 0, len(builtin)+len(world))
	seen := map[string]bool{}
	for _, t := range world {
		if b, ok := byName[t.Name]; ok && t.Cores == 0 && t.Architecture == "" {
			if t.VCPUs == 0 || t.VCPUs == b.VCPUs {
				t.Cores, t.ThreadsPerCore = b.Cores, b.ThreadsPerCore
			}
			t.Architecture, t.Manufacturer = b.Architecture, b.Manufacturer
			if t.GPUs == nil {
				t.GPUs = b.GPUs
			}
			if t.Neuron == nil {
				t.Neuron = b.Neuron
			}
			t.EFA, t.MaxEFAInterfaces, t.PreviousGeneration = b.EFA, b.MaxEFAInterfaces, b.PreviousGeneration
		}
		if t.VCPUs == 0 {
			t.VCPUs = byName[t.Name].VCPUs
		}
		if t.MemoryMiB == 0 {
			t.MemoryMiB = byName[t.Name].MemoryMiB
		}
		if t.Architecture == "" {
			t.Architecture = "x86_64"
		}
		if t.Cores == 0 && t.VCPUs > 0 {
			t.Cores, t.ThreadsPerCore = t.VCPUs, 1
		}
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	for _, t := range builtin {
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	return out
}

// maxDescribeInstanceTypes is the most instance types one DescribeInstanceTypes call may name
// (API reference: InstanceTypes, "Array Members: Maximum number of 100 items").
const maxDescribeInstanceTypes = 100

// instanceTypeFilters are the DescribeInstanceTypes filters the simulator implements, with
// their documented names (API reference, DescribeInstanceTypes, Filter.N).
var instanceTypeFilters = []string{"instance-type", "current-generation", "processor-info.supported-architecture",
	"processor-info.manufacturer", "vcpu-info.default-vcpus", "vcpu-info.default-cores", "vcpu-info.default-threads-per-core",
	"memory-info.size-in-mib", "network-info.efa-supported", "network-info.efa-info.maximum-efa-interfaces",
	"bare-metal", "hypervisor", "supported-usage-class", "supported-virtualization-type", "burstable-performance-supported"}

// instanceTypeValue is the value of filter name for t, and whether t has one.
func instanceTypeValues(name string, t InstanceTypeSpec) []string {
	switch name {
	case "instance-type":
		return []string{t.Name}
	case "current-generation":
		return []string{strconv.FormatBool(!t.PreviousGeneration)}
	case "processor-info.supported-architecture":
		return []string{t.Architecture}
	case "processor-info.manufacturer":
		return []string{t.Manufacturer}
	case "vcpu-info.default-vcpus":
		return []string{strconv.Itoa(t.VCPUs)}
	case "vcpu-info.default-cores":
		return []string{strconv.Itoa(t.Cores)}
	case "vcpu-info.default-threads-per-core":
		return []string{strconv.Itoa(t.ThreadsPerCore)}
	case "memory-info.size-in-mib":
		return []string{strconv.Itoa(t.MemoryMiB)}
	case "network-info.efa-supported":
		return []string{strconv.FormatBool(t.EFA)}
	case "network-info.efa-info.maximum-efa-interfaces":
		if t.EFA {
			return []string{strconv.Itoa(t.MaxEFAInterfaces)}
		}
	case "bare-metal", "burstable-performance-supported":
		return []string{"false"}
	case "hypervisor":
		return []string{"nitro"}
	case "supported-usage-class":
		return []string{"on-demand", "spot"}
	case "supported-virtualization-type":
		return []string{"hvm"}
	}
	return nil
}

func (s *Sim) describeInstanceTypes(c *call) (query.Body, error) {
	p := c.p
	limit, err := maxResults(p, 5, 100)
	if err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 100 // EC2's largest page; a caller must still follow NextToken
	}
	fs, err := parseFilters(p, instanceTypeFilters...)
	if err != nil {
		return nil, err
	}
	names := p.Strings("InstanceType")
	if len(names) > maxDescribeInstanceTypes {
		return nil, errorf("InvalidParameterValue", "The maximum number of instance types that can be specified is %d.", maxDescribeInstanceTypes)
	}
	var missing []string
	for _, n := range names {
		if _, ok := s.types[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, errorf("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
	}
	start := 0
	if tok, ok, err := decodeToken(p); err != nil {
		return nil, err
	} else if ok {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "it:"))
		if err != nil || !strings.HasPrefix(tok, "it:") || n < 0 {
			return nil, errorf("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
		}
		start = n
	}
	var match []InstanceTypeSpec
	for _, t := range s.typeList {
		if len(names) > 0 && !slices.Contains(names, t.Name) {
			continue
		}
		ok := true
		for _, f := range fs {
			hit := false
			for _, v := range instanceTypeValues(f.name, t) {
				hit = hit || f.any(v)
			}
			ok = ok && hit
		}
		if ok {
			match = append(match, t)
		}
	}
	resp := &describeInstanceTypesResp{}
	if start > len(match) {
		start = len(match)
	}
	end := min(start+limit, len(match))
	for _, t := range match[start:end] {
		resp.Types = append(resp.Types, xmlInstanceType(t))
	}
	if end < len(match) {
		resp.NextToken = encodeToken("it:" + strconv.Itoa(end))
	}
	return resp, nil
}

func xmlInstanceType(t InstanceTypeSpec) xInstanceType {
	x := xInstanceType{InstanceType: t.Name, CurrentGeneration: !t.PreviousGeneration,
		UsageClasses: []string{"on-demand", "spot"}, Virtualization: []string{"hvm"},
		Processor: xProcessorInfo{Architectures: []string{t.Architecture}, Manufacturer: t.Manufacturer},
		VCPU:      xVCPUInfo{DefaultVCpus: t.VCPUs, DefaultCores: t.Cores, DefaultThreadsPerCore: t.ThreadsPerCore},
		MemoryMiB: t.MemoryMiB, Hypervisor: "nitro",
		Network: xNetworkInfo{EFASupported: t.EFA, ENASupport: "required"}}
	if t.EFA {
		x.Network.EFAInfo = &xEFAInfo{MaxInterfaces: t.MaxEFAInterfaces}
	}
	if len(t.GPUs) > 0 {
		g := &xGPUInfo{}
		for _, d := range t.GPUs {
			g.GPUs = append(g.GPUs, xGPU(d))
			g.TotalMiB += d.Count * d.MemoryMiB
		}
		x.GPU = g
	}
	if len(t.Neuron) > 0 {
		n := &xNeuronInfo{}
		for _, d := range t.Neuron {
			n.Devices = append(n.Devices, xNeuronDevice{Name: d.Name, Count: d.Count, CoreCount: d.Cores, CoreVersion: d.Version, MemoryMiB: d.MemoryMiB})
			n.TotalMiB += d.Count * d.MemoryMiB
		}
		x.Neuron = n
	}
	return x
}

// XML of InstanceTypeInfo (element names as the SDK's ec2query deserializer reads them).
type xInstanceType struct {
	InstanceType      string         `xml:"instanceType"`
	CurrentGeneration bool           `xml:"currentGeneration"`
	UsageClasses      []string       `xml:"supportedUsageClasses>item"`
	Virtualization    []string       `xml:"supportedVirtualizationTypes>item"`
	BareMetal         bool           `xml:"bareMetal"`
	Hypervisor        string         `xml:"hypervisor"`
	Processor         xProcessorInfo `xml:"processorInfo"`
	VCPU              xVCPUInfo      `xml:"vCpuInfo"`
	MemoryMiB         int            `xml:"memoryInfo>sizeInMiB"`
	Network           xNetworkInfo   `xml:"networkInfo"`
	GPU               *xGPUInfo      `xml:"gpuInfo,omitempty"`
	Neuron            *xNeuronInfo   `xml:"neuronInfo,omitempty"`
}

type xProcessorInfo struct {
	Architectures []string `xml:"supportedArchitectures>item"`
	Manufacturer  string   `xml:"manufacturer,omitempty"`
}

type xVCPUInfo struct {
	DefaultVCpus          int `xml:"defaultVCpus"`
	DefaultCores          int `xml:"defaultCores"`
	DefaultThreadsPerCore int `xml:"defaultThreadsPerCore"`
}

type xNetworkInfo struct {
	ENASupport   string    `xml:"enaSupport"`
	EFASupported bool      `xml:"efaSupported"`
	EFAInfo      *xEFAInfo `xml:"efaInfo,omitempty"`
}

type xEFAInfo struct {
	MaxInterfaces int `xml:"maximumEfaInterfaces"`
}

type xGPUInfo struct {
	GPUs     []xGPU `xml:"gpus>item"`
	TotalMiB int    `xml:"totalGpuMemoryInMiB"`
}

type xGPU struct {
	Name         string `xml:"name"`
	Manufacturer string `xml:"manufacturer"`
	Count        int    `xml:"count"`
	MemoryMiB    int    `xml:"memoryInfo>sizeInMiB"`
}

type xNeuronInfo struct {
	Devices  []xNeuronDevice `xml:"neuronDevices>item"`
	TotalMiB int             `xml:"totalNeuronDeviceMemoryInMiB"`
}

type xNeuronDevice struct {
	Name        string `xml:"name"`
	Count       int    `xml:"count"`
	CoreCount   int    `xml:"coreInfo>count"`
	CoreVersion int    `xml:"coreInfo>version"`
	MemoryMiB   int    `xml:"memoryInfo>sizeInMiB"`
}

type describeInstanceTypesResp struct {
	query.ResponseMeta
	Types     []xInstanceType `xml:"instanceTypeSet>item"`
	NextToken string          `xml:"nextToken,omitempty"`
}
