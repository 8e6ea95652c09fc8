package ec2sim

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestHookHelper is not a test: ExecHook runs the test binary with it to record the env.
func TestHookHelper(t *testing.T) {
	out := os.Getenv("EC2SIM_HELPER_OUT")
	if out == "" {
		t.Skip("helper process only")
	}
	var lines []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "EC2SIM_") && !strings.HasPrefix(kv, "EC2SIM_HELPER") || strings.HasPrefix(kv, "AWS_EC2_METADATA") {
			lines = append(lines, kv)
		}
	}
	sort.Strings(lines)
	if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EC2SIM_HELPER_FAIL") != "" {
		os.Stderr.WriteString("did not boot\n")
		os.Exit(3)
	}
}

func TestHooksGetInstanceEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	t.Setenv("EC2SIM_HELPER_OUT", out)
	done := make(chan InstanceInfo, 1)
	argv := []string{os.Args[0], "-test.run=^TestHookHelper$"}
	he := HookEnv{EC2Endpoint: "http://127.0.0.1:1", IMDSEndpoint: "http://127.0.0.1:2"}
	e := newEnv(t, Options{OnLaunch: func(i InstanceInfo) {
		if err := ExecHook(context.Background(), argv, i, he); err != nil {
			t.Error(err)
		}
		done <- i
	}})
	fo, err := e.client("us-east-1").CreateFleet(context.Background(), fleetInput(1, "spot", [2]string{"c5.large", "subnet-22222222"}))
	if err != nil {
		t.Fatal(err)
	}
	_ = fo
	info := <-done
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:2",
		"EC2SIM_AZ=us-east-1b",
		"EC2SIM_ENDPOINT=http://127.0.0.1:1",
		"EC2SIM_IMDS_ENDPOINT=http://127.0.0.1:2",
		"EC2SIM_INSTANCE_ID=" + info.InstanceID,
		"EC2SIM_INSTANCE_TYPE=c5.large",
		"EC2SIM_LIFECYCLE=spot",
		"EC2SIM_PRIVATE_IP=10.2.0.4",
		"EC2SIM_REGION=us-east-1",
		"EC2SIM_SUBNET_ID=subnet-22222222",
	}, "\n")
	if string(b) != want {
		t.Fatalf("hook env:\n%s\nwant:\n%s", b, want)
	}
	t.Setenv("EC2SIM_HELPER_FAIL", "1")
	err = ExecHook(context.Background(), argv, info, he)
	if err == nil || !strings.Contains(err.Error(), "did not boot") {
		t.Fatalf("failing hook error should carry its stderr: %v", err)
	}
	var _ = ec2.Options{}
}
