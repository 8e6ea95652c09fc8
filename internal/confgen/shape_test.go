package confgen

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// simShapes describes the instance types cfg's groups need the way generate-conf does: the
// SDK over HTTP to ec2sim's DescribeLaunchTemplateVersions and DescribeInstanceTypes (groups
// in regions ec2sim does not have are left undescribed).
func simShapes(t *testing.T, cfg *config.Config) *Shapes {
	t.Helper()
	srv := httptest.NewServer(ec2sim.New(ec2sim.Options{}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_EC2", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDCONFGENTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "confgen-test-secret")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	api, err := fleet.NewClients(fleet.Options{}).Get(ctx, "us-east-1", "")
	if err != nil {
		t.Fatal(err)
	}
	shapes := &Shapes{Template: map[string]string{}}
	var names []string
	for _, g := range cfg.NodeGroups() {
		if !NeedsEC2(g) || g.Region != "us-east-1" {
			continue
		}
		n, reqs := InstanceTypes(g)
		if len(n) == 0 && len(reqs) == 0 {
			it, err := fleet.TemplateInstanceType(ctx, api, g.LaunchTemplateSpecification)
			if err != nil {
				t.Fatalf("%s: %v", g.Name(), err)
			}
			shapes.Template[g.Name()] = it
			n = []string{it}
		}
		names = append(names, n...)
	}
	if shapes.Types, err = fleet.DescribeShapes(ctx, api, names); err != nil {
		t.Fatal(err)
	}
	return shapes
}

func TestRealMemory(t *testing.T) {
	tests := map[string]struct{ ec2, want int64 }{
		"c5.large: 512 MiB floor":  {4096, 3584},
		"c5.xlarge: 512 MiB floor": {8192, 7680},
		"g5.xlarge: 5%":            {16384, 15565},
		"p4d.24xlarge: 5%":         {1179648, 1120666},
		"tiny":                     {256, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RealMemory(tc.ec2); got != tc.want {
				t.Errorf("RealMemory(%d) = %d, want %d", tc.ec2, got, tc.want)
			}
		})
	}
}

// The four cases, line by line, independent of the golden file.
func TestTypesNodeLines(t *testing.T) {
	cfg := load(t, "testdata/gpu-config.json", "testdata/types-partitions.json")
	shapes := simShapes(t, cfg)
	var conf, gres bytes.Buffer
	if err := Write(&conf, cfg, shapes, Release{}); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteGres(&gres, cfg, shapes); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(conf.String(), "\n")
	for _, want := range []string{
		"GresTypes=gpu",
		"NodeName=cpu-c5-[0-7] State=CLOUD CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2 RealMemory=7680 Features=c5.xlarge,c5,x86_64",
		"NodeName=cpu-mixed-[0-7] State=CLOUD Weight=2 CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2 RealMemory=7680 Features=c5,x86_64",
		"NodeName=gpu-g5-[0-3] State=CLOUD CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2 RealMemory=15565 Gres=gpu:a10g:1 Features=g5.xlarge,g5,x86_64,a10g",
		"NodeName=gpu-p4d-[0-1] State=CLOUD CPUs=96 Boards=1 SocketsPerBoard=1 CoresPerSocket=48 ThreadsPerCore=2 RealMemory=1120666 Gres=gpu:a100:8 Features=p4d.24xlarge,p4d,x86_64,a100,efa",
		// Values given in SlurmSpecifications win.
		"NodeName=gpu-given-[0-1] State=CLOUD RealMemory=12000 Features=mine Gres=gpu:1 CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2",
		// No overrides: the launch template's type (c5.xlarge in ec2sim's default world).
		"NodeName=gpu-tmpl-0 State=CLOUD CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2 RealMemory=7680 Features=c5.xlarge,c5,x86_64",
		// Attribute-based selection: EC2's guaranteed minimums, no layout.
		"NodeName=gpu-abs-[0-1] State=CLOUD CPUs=8 RealMemory=31130 Gres=gpu:a10g:1 Features=a10g",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("output lacks line\n%s\ngot:\n%s", want, conf.String())
		}
	}
	for _, want := range []string{
		"# warning: cpu-mixed: c5.2xlarge: Slurm will not use 4 of 8 vCPUs, 8192 of 16384 MiB memory",
		"# cpu-c5: CPUs, Boards, SocketsPerBoard, CoresPerSocket, ThreadsPerCore, RealMemory, Features from EC2 (DescribeInstanceTypes, us-east-1): c5.xlarge 4 vCPUs (2 cores x 2 threads), 8192 MiB; RealMemory keeps 512 MiB for the OS",
	} {
		if !strings.Contains(conf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, conf.String())
		}
	}
	for _, want := range []string{
		"NodeName=gpu-g5-[0-3] Name=gpu Type=a10g File=/dev/nvidia0\n",
		"NodeName=gpu-p4d-[0-1] Name=gpu Type=a100 File=/dev/nvidia[0-7]\n",
		"NodeName=gpu-given-[0-1] Name=gpu File=/dev/nvidia0\n", // given count, NVIDIA per EC2
	} {
		if !strings.Contains(gres.String(), want) {
			t.Errorf("gres.conf lacks %q:\n%s", want, gres.String())
		}
	}
	warns := Warnings(cfg, shapes)
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "cpu-mixed: c5.2xlarge: Slurm will not use 4 of 8 vCPUs") {
		t.Errorf("Warnings = %q, want the mixed group's waste only", warns)
	}
}

func TestCommon(t *testing.T) {
	c5x := fleet.Shape{InstanceType: "c5.xlarge", VCPUs: 4, Cores: 2, ThreadsPerCore: 2, MemoryMiB: 8192, Architecture: "x86_64"}
	c5x2 := fleet.Shape{InstanceType: "c5.2xlarge", VCPUs: 8, Cores: 4, ThreadsPerCore: 2, MemoryMiB: 16384, Architecture: "x86_64"}
	c7g := fleet.Shape{InstanceType: "c7g.xlarge", VCPUs: 4, Cores: 4, ThreadsPerCore: 1, MemoryMiB: 8192, Architecture: "arm64"}
	a100 := fleet.Accelerator{Name: "A100", Manufacturer: "NVIDIA", Count: 8, MemoryMiB: 40960}
	p4d := fleet.Shape{InstanceType: "p4d.24xlarge", VCPUs: 96, Cores: 48, ThreadsPerCore: 2, MemoryMiB: 1179648, Architecture: "x86_64", GPUs: []fleet.Accelerator{a100}, EFA: true}
	tests := map[string]struct {
		in        []fleet.Shape
		want      fleet.Shape
		wantWaste []string
	}{
		"one": {[]fleet.Shape{p4d}, p4d, nil},
		"mixed sizes": {[]fleet.Shape{c5x2, c5x},
			fleet.Shape{InstanceType: "c5.2xlarge,c5.xlarge", VCPUs: 4, Cores: 2, ThreadsPerCore: 2, MemoryMiB: 8192, Architecture: "x86_64"},
			[]string{"c5.2xlarge: Slurm will not use 4 of 8 vCPUs, 8192 of 16384 MiB memory (the group's nodes are described by its smallest type)"}},
		"layouts differ, architectures differ": {[]fleet.Shape{c5x, c7g},
			fleet.Shape{InstanceType: "c5.xlarge,c7g.xlarge", VCPUs: 4, Cores: 4, ThreadsPerCore: 1, MemoryMiB: 8192},
			[]string{"instance types c5.xlarge,c7g.xlarge mix architectures: one AMI cannot boot them all"}},
		"gpus only where all have them": {[]fleet.Shape{p4d, c5x2},
			fleet.Shape{InstanceType: "p4d.24xlarge,c5.2xlarge", VCPUs: 8, Cores: 4, ThreadsPerCore: 2, MemoryMiB: 16384, Architecture: "x86_64"},
			[]string{"p4d.24xlarge: Slurm will not use 88 of 96 vCPUs, 1163264 of 1179648 MiB memory, 8 of 8 GPUs (the group's nodes are described by its smallest type)"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, waste := fleet.Common(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Common (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWaste, waste); diff != "" {
				t.Errorf("waste (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzGresType(f *testing.F) {
	for _, s := range []string{"A10G", "Radeon Pro V520", "H100", "", "1080", "Gaudi HL-205"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		typ := gresType(name)
		if typ == "" {
			return
		}
		g, err := ParseGres("gpu:" + typ + ":1")
		if err != nil || len(g) != 1 || g[0].Type != typ {
			t.Fatalf("gresType(%q) = %q, which Gres= does not take back: %v %+v", name, typ, err, g)
		}
	})
}
