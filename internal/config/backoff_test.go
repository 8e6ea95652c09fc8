package config

import (
	"errors"
	"strings"
	"testing"
)

func TestBackOffKeys(t *testing.T) {
	dir := writeDir(t, `{"SlurmConf": {"ResumeProgram": "/a/resume", "SuspendProgram": "/a/suspend"},
	  "BackOffBaseSeconds": 60, "BackOffMaxSeconds": 600, "HoldAfterFailures": 5}`, parts(fmtG("")))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BackOffBaseSeconds != 60 || cfg.BackOffMaxSeconds != 600 || cfg.HoldAfterFailures != 5 {
		t.Fatalf("back-off = %d %d %d, want 60 600 5", cfg.BackOffBaseSeconds, cfg.BackOffMaxSeconds, cfg.HoldAfterFailures)
	}
}

func TestBackOffAndWeightProblems(t *testing.T) {
	tests := map[string]struct {
		conf, parts string
		want        []string
	}{
		"max below base": {`{"SlurmConf": {"ResumeProgram": "/a/resume", "SuspendProgram": "/a/suspend"}, "BackOffBaseSeconds": 600, "BackOffMaxSeconds": 60}`,
			parts(fmtG("")), []string{`config.json: BackOffMaxSeconds: 60 is below BackOffBaseSeconds (600)`}},
		"hold out of range": {`{"SlurmConf": {"ResumeProgram": "/a/resume", "SuspendProgram": "/a/suspend"}, "HoldAfterFailures": 0, "BackOffBaseSeconds": "x"}`,
			parts(fmtG("")), []string{`config.json: HoldAfterFailures: 0 is out of range`, `config.json: BackOffBaseSeconds: must be an integer`}},
		"weight 2": {goodConf, parts(fmtG(`, "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge", "WeightedCapacity": 2}]`)),
			[]string{`LaunchTemplateOverrides[0].WeightedCapacity: 2 is not supported: slurm-ec2 launches one instance per Slurm node`}},
		"weight 0.5": {goodConf, parts(fmtG(`, "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}, {"InstanceType": "c5.large", "WeightedCapacity": 0.5}]`)),
			[]string{`LaunchTemplateOverrides[1].WeightedCapacity: 0.5 is not supported`, `remove WeightedCapacity or set it to 1`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeDir(t, tc.conf, tc.parts))
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load = %v; want *Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems do not mention %q:\n%s", w, err)
				}
			}
		})
	}
	// Weight 1 changes nothing and is accepted.
	if _, err := Load(writeDir(t, goodConf, parts(fmtG(`, "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge", "WeightedCapacity": 1}]`)))); err != nil {
		t.Fatalf("weight 1: %v", err)
	}
}
