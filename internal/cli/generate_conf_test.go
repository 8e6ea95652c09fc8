package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
)

// simEC2 points the SDK at an in-process ec2sim with test credentials and no instance
// metadata, and returns the simulator.
func simEC2(t *testing.T) *ec2sim.Sim {
	t.Helper()
	sim := ec2sim.New(ec2sim.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	offlineAWS(t, srv.URL)
	return sim
}

// offlineAWS sets test credentials, no shared config and no instance metadata, so the SDK
// talks to endpoint only.
func offlineAWS(t *testing.T, endpoint string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_EC2", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDGENCONFTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "genconf-test-secret")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestGenerateConf(t *testing.T) {
	simEC2(t)
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
		if !strings.Contains(string(b), "\nNodeName=aws-spot-[0-99] State=CLOUD CPUs=4 Weight=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2 RealMemory=7680 Features=c5.xlarge,c5,x86_64\n") {
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
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", target, "-no-ec2"}); code != 0 {
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

// partitionsWith writes config.json and a one-group partitions.json with the given
// SlurmSpecifications and instance type.
func partitionsWith(t *testing.T, specs, itype string) string {
	t.Helper()
	dir := specConfigDir(t, "partitions-example1.json")
	p := `{"Partitions": [{"PartitionName": "aws", "NodeGroups": [{"NodeGroupName": "c5", "MaxNodes": 2, "Region": "us-east-1",
  "SlurmSpecifications": ` + specs + `, "PurchasingOption": "on-demand",
  "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
  "LaunchTemplateOverrides": [{"InstanceType": "` + itype + `"}], "SubnetIds": ["subnet-11111111"]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "partitions.json"), []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// silentListener accepts connections and never answers: an EC2 endpoint that hangs.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

func TestGenerateConfWithoutEC2(t *testing.T) {
	t.Run("numbers given: no call", func(t *testing.T) {
		offlineAWS(t, silentListener(t))
		dir := partitionsWith(t, `{"CPUs": "4", "RealMemory": "7000"}`, "c5.xlarge")
		env, out, errb := testEnv(nil)
		start := time.Now()
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-"}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s: it waited for EC2", d)
		}
		if !strings.Contains(out.String(), "\nNodeName=aws-c5-[0-1] State=CLOUD CPUs=4 RealMemory=7000\n") {
			t.Errorf("stdout:\n%s", out)
		}
	})
	t.Run("unreachable: bounded, clear error", func(t *testing.T) {
		offlineAWS(t, silentListener(t))
		dir := partitionsWith(t, `{"CPUs": "4"}`, "c5.xlarge")
		env, _, errb := testEnv(nil)
		start := time.Now()
		code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-", "-ec2-timeout", "1s"})
		if code != 1 {
			t.Fatalf("exit %d, want 1: %s", code, errb)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s with -ec2-timeout 1s", d)
		}
		for _, want := range []string{"node group aws-c5 leave out CPUs or RealMemory", "c5.xlarge in us-east-1", "no answer within 1s", "give CPUs and RealMemory in SlurmSpecifications", "-no-ec2"} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, errb)
			}
		}
	})
	t.Run("-no-ec2", func(t *testing.T) {
		offlineAWS(t, silentListener(t))
		dir := partitionsWith(t, `{"CPUs": "4"}`, "c5.xlarge")
		env, out, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-", "-no-ec2"}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if !strings.Contains(out.String(), "\nNodeName=aws-c5-[0-1] State=CLOUD CPUs=4\n") {
			t.Errorf("stdout:\n%s", out)
		}
	})
	t.Run("unknown instance type: exit 2", func(t *testing.T) {
		simEC2(t)
		dir := partitionsWith(t, `{}`, "c5.huge")
		env, _, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-"}); code != 2 {
			t.Fatalf("exit %d, want 2: %s", code, errb)
		}
		if !strings.Contains(errb.String(), "InvalidInstanceType") || !strings.Contains(errb.String(), "fix LaunchTemplateOverrides[].InstanceType in") {
			t.Errorf("stderr:\n%s", errb)
		}
	})
	t.Run("not allowed: warning, numbers from partitions.json", func(t *testing.T) {
		// EC2's answer to a role without ec2:DescribeInstanceTypes.
		deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r1</RequestID></Response>`)
		}))
		defer deny.Close()
		offlineAWS(t, deny.URL)
		dir := partitionsWith(t, `{"CPUs": "4"}`, "c5.xlarge")
		env, out, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-"}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if !strings.Contains(out.String(), "\nNodeName=aws-c5-[0-1] State=CLOUD CPUs=4\n") ||
			!strings.Contains(errb.String(), "UnauthorizedOperation") || !strings.Contains(errb.String(), "allow ec2:DescribeInstanceTypes and ec2:DescribeLaunchTemplateVersions, or pass -no-ec2") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", out, errb)
		}
	})
	t.Run("mixed group warns", func(t *testing.T) {
		simEC2(t)
		dir := specConfigDir(t, "partitions-example1.json")
		b, _ := os.ReadFile(filepath.Join(dir, "partitions.json"))
		b = []byte(strings.Replace(string(b), `"InstanceType": "c5.xlarge"`, `"InstanceType": "c5.xlarge"}, {"InstanceType": "c5.2xlarge"`, 1))
		if err := os.WriteFile(filepath.Join(dir, "partitions.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		env, _, errb := testEnv(nil)
		if code := Run(context.Background(), env, []string{"slurm-ec2", "generate-conf", "--config-dir", dir, "-o", "-"}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
		if !strings.Contains(errb.String(), "warning: aws-ondemand: c5.2xlarge: Slurm will not use 4 of 8 vCPUs, 8192 of 16384 MiB memory") {
			t.Errorf("stderr:\n%s", errb)
		}
	})
}

// validate --aws compares SlurmSpecifications with the instance types (over the wire to
// ec2sim): CPUs above the smallest type's vCPUs fails, a mixed group warns.
func TestValidateAWSShapes(t *testing.T) {
	simEC2(t)
	dir := partitionsWith(t, `{"CPUs": "8", "RealMemory": "7000"}`, "c5.xlarge")
	b, _ := os.ReadFile(filepath.Join(dir, "partitions.json"))
	b = []byte(strings.Replace(string(b), `{"InstanceType": "c5.xlarge"}`, `{"InstanceType": "c5.xlarge"}, {"InstanceType": "c5.2xlarge"}`, 1))
	conf := `{"ClusterName": "t1", "LogFileName": "` + filepath.Join(dir, "log") + `", "SlurmConf": {"ResumeProgram": "/x/resume", "SuspendProgram": "/x/suspend"}}`
	for name, data := range map[string][]byte{"partitions.json": b, "config.json": []byte(conf)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, out, errb := testEnv(nil)
	if code := Run(context.Background(), env, []string{"slurm-ec2", "validate", "--aws", "--config-dir", dir}); code != 2 {
		t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	for _, want := range []string{
		"aws-c5: SlurmSpecifications.CPUs: CPUs=8 but c5.xlarge has 4 vCPUs: slurmctld drains such nodes at registration; use CPUs=4 or leave it out",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	for _, want := range []string{
		"warn aws-c5: c5.2xlarge: Slurm will not use 4 of 8 vCPUs, 8192 of 16384 MiB memory",
		"ok   aws-c5: RealMemory=7000 fits 8192 MiB",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}
