package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateConf(t *testing.T) {
	t.Run("default file in config dir", func(t *testing.T) {
		dir := specConfigDir(t, "partitions-example1.json")
		env, out, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		b, err := os.ReadFile(filepath.Join(dir, "slurm.conf.aws"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "\nNodeName=aws-spot-[0-99] State=CLOUD CPUs=4 Weight=2\n") {
			t.Errorf("slurm.conf.aws:\n%s", b)
		}
		if out.Len() != 0 || !strings.Contains(errb.String(), "wrote "+filepath.Join(dir, "slurm.conf.aws")) {
			t.Errorf("stdout %q, stderr %q", out, errb)
		}
		if _, err := os.Stat(filepath.Join(dir, "gres.conf.aws")); !os.IsNotExist(err) {
			t.Errorf("gres.conf.aws written without gres: %v", err)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		dir := specConfigDir(t, "partitions-example3.json")
		env, out, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-"}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if !strings.Contains(out.String(), "PartitionName=awsspot Nodes=awsspot-node-[0-99] MaxTime=INFINITE State=UP TRESBillingWeights=cpu=10 AllowAccounts=standard\n") {
			t.Errorf("stdout:\n%s", out)
		}
	})
	t.Run("gres beside output", func(t *testing.T) {
		dir := t.TempDir()
		for name, src := range map[string]string{"config.json": "gpu-config.json", "partitions.json": "gpu-partitions.json"} {
			b, err := os.ReadFile(filepath.Join("..", "confgen", "testdata", src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		outDir := t.TempDir()
		env, _, errb := testEnv(nil)
		target := filepath.Join(outDir, "snippet.conf")
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", target}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		g, err := os.ReadFile(filepath.Join(outDir, "gres.conf.aws"))
		if err != nil {
			t.Fatalf("gres.conf.aws not beside the output: %v; stderr %s", err, errb)
		}
		if !strings.Contains(string(g), "NodeName=gpu-a100-[0-3] Name=gpu Type=a100 Count=8\n") {
			t.Errorf("gres.conf.aws:\n%s", g)
		}
		if !strings.Contains(errb.String(), "gres.conf.aws") {
			t.Errorf("stderr does not say gres.conf.aws was written: %s", errb)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		dir := specConfigDir(t, "partitions-example1.json")
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"LogLevel": 3}`), 0o644); err != nil {
			t.Fatal(err)
		}
		env, _, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir}); code != 2 {
			t.Fatalf("exit %d, want 2: %s", code, errb)
		}
		if !strings.Contains(errb.String(), "config.json: LogLevel: must be a string, not a number") {
			t.Errorf("stderr:\n%s", errb)
		}
		if _, err := os.Stat(filepath.Join(dir, "slurm.conf.aws")); !os.IsNotExist(err) {
			t.Errorf("wrote output despite invalid config")
		}
	})
}
