package confgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func load(t *testing.T, configFile, partitionsFile string) *config.Config {
	t.Helper()
	cfg, err := config.LoadFiles(configFile, partitionsFile)
	if err != nil {
		t.Fatalf("loading %s: %v", partitionsFile, err)
	}
	return cfg
}

const specDir = "../config/testdata"

func TestGolden(t *testing.T) {
	tests := map[string]struct {
		config, partitions string
		noEC2              bool // write without shapes, as generate-conf -no-ec2 does
		wantGres           bool
	}{
		"example1":       {filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example1.json"), false, false},
		"example2":       {filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example2.json"), false, false},
		"example3":       {filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example3.json"), false, false},
		"example1-noec2": {filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example1.json"), true, false},
		"gpu":            {"testdata/gpu-config.json", "testdata/gpu-partitions.json", false, true},
		// c5.xlarge, g5.xlarge, p4d.24xlarge, c5.xlarge+c5.2xlarge, given values, InstanceRequirements
		"types":       {"testdata/gpu-config.json", "testdata/types-partitions.json", false, true},
		"types-noec2": {"testdata/gpu-config.json", "testdata/types-partitions.json", true, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := load(t, tc.config, tc.partitions)
			var shapes *Shapes
			if !tc.noEC2 {
				shapes = simShapes(t, cfg)
			}
			var conf, gres bytes.Buffer
			if err := Write(&conf, cfg, shapes, Release{}); err != nil {
				t.Fatal(err)
			}
			wrote, err := WriteGres(&gres, cfg, shapes)
			if err != nil {
				t.Fatal(err)
			}
			if wrote != tc.wantGres {
				t.Errorf("WriteGres wrote = %v, want %v", wrote, tc.wantGres)
			}
			golden(t, filepath.Join("testdata", name+".conf.golden"), conf.Bytes())
			if wrote {
				golden(t, filepath.Join("testdata", name+".gres.golden"), gres.Bytes())
			} else if gres.Len() != 0 {
				t.Errorf("WriteGres wrote %q but reported nothing", gres.String())
			}
			// Idempotence: the same config gives the same bytes.
			var again bytes.Buffer
			if err := Write(&again, cfg, shapes, Release{}); err != nil || !bytes.Equal(again.Bytes(), conf.Bytes()) {
				t.Errorf("second Write differs (err %v)", err)
			}
		})
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
	}
}

// The lines the issue requires for the spec's example 1, independent of the golden file.
func TestExample1Lines(t *testing.T) {
	cfg := load(t, filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example1.json"))
	var buf bytes.Buffer
	if err := Write(&buf, cfg, nil, Release{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	has := func(l string) bool {
		for _, x := range lines {
			if x == l {
				return true
			}
		}
		return false
	}
	for _, want := range []string{
		"NodeName=aws-ondemand-[0-9] State=CLOUD CPUs=4 Weight=1",
		"NodeName=aws-spot-[0-99] State=CLOUD CPUs=4 Weight=2",
		"ResumeFailProgram=/slurm/etc/aws/resume-fail",
		"SlurmctldParameters=idle_on_node_suspend",
		"CommunicationParameters=NoAddrCache",
		"PrivateData=CLOUD",
		"TreeWidth=60000",
	} {
		if !has(want) {
			t.Errorf("output lacks line %q:\n%s", want, buf.String())
		}
	}
	var part string
	for _, l := range lines {
		if strings.HasPrefix(l, "PartitionName=aws Nodes=aws-ondemand-[0-9],aws-spot-[0-99] ") {
			part = l
		}
	}
	if part == "" || !strings.Contains(part, " Default=yes") || !strings.Contains(part, " TRESBillingWeights=cpu=4") {
		t.Errorf("partition line %q lacks Nodes, Default=yes or TRESBillingWeights=cpu=4", part)
	}
}

func TestOverridesNeverTwice(t *testing.T) {
	cfg := load(t, "testdata/gpu-config.json", "testdata/gpu-partitions.json")
	var buf bytes.Buffer
	if err := Write(&buf, cfg, simShapes(t, cfg), Release{}); err != nil {
		t.Fatal(err)
	}
	out := strings.ToLower(buf.String())
	for _, key := range []string{"slurmctldparameters=", "state=down", "maxtime=7-00:00:00", "grestypes=gpu,mps"} {
		if n := strings.Count(out, key); n != 1 {
			t.Errorf("%q appears %d times, want once:\n%s", key, n, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "PartitionName=gpu Nodes=gpu-a100-[0-3],gpu-t4-0 MaxTime=7-00:00:00 State=DOWN Default=NO\n") {
		t.Errorf("gpu partition line wrong:\n%s", buf.String())
	}
}

func TestParseGres(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []Gres
		wantErr bool
	}{
		"count":        {"gpu:4", []Gres{{"gpu", "", "4"}}, false},
		"type count":   {"gpu:a100:1", []Gres{{"gpu", "a100", "1"}}, false},
		"type only":    {"gpu:tesla", []Gres{{"gpu", "tesla", "1"}}, false},
		"name only":    {"gpu", []Gres{{"gpu", "", "1"}}, false},
		"several":      {"gpu:a100:2,mps:200", []Gres{{"gpu", "a100", "2"}, {"mps", "", "200"}}, false},
		"suffix":       {"bandwidth:lustre:4G", []Gres{{"bandwidth", "lustre", "4G"}}, false},
		"socket":       {"gpu:2(S:0-1),nic:1", []Gres{{"gpu", "", "2"}, {"nic", "", "1"}}, false},
		"too many":     {"gpu:a:b:1", nil, true},
		"bad count":    {"gpu:a100:x", nil, true},
		"empty":        {"", nil, true},
		"empty member": {"gpu:1,", nil, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseGres(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseGres(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseGres(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func FuzzParseGres(f *testing.F) {
	for _, s := range []string{"gpu:4", "gpu:a100:1,mps:100", "gpu:2(S:0-1)", "((", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gres, err := ParseGres(s)
		if err != nil {
			return
		}
		for _, g := range gres {
			if g.Name == "" || g.Count == "" || strings.ContainsAny(g.Name+g.Type+g.Count, " :,=()") {
				t.Fatalf("ParseGres(%q) gave %+v", s, g)
			}
		}
	})
}
