// Package fidelity checks ec2sim against EC2 clients nobody on this project wrote: Debian's
// awscli v2 (/usr/bin/aws) and boto3 (/usr/bin/python3). If either is missing the tests skip,
// unless CI=true, where they fail: CI must run them.
package fidelity

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	awsCLI  = "/usr/bin/aws"
	python3 = "/usr/bin/python3"
)

// requireTool skips (or in CI fails) when a client is missing.
func requireTool(t *testing.T, path string, probe ...string) {
	t.Helper()
	err := exec.Command(path, probe...).Run()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s %s unusable (%v); install awscli and python3-boto3 (Debian packages) to run the fidelity tests", path, strings.Join(probe, " "), err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var build struct {
	once     sync.Once
	bin      string
	prebuilt bool // from EC2SIM_BIN: not ours to delete
	err      error
}

// ec2simBinary builds ./cmd/ec2sim once per test process, or uses $EC2SIM_BIN when set.
func ec2simBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		if prebuilt := os.Getenv("EC2SIM_BIN"); prebuilt != "" {
			build.bin, build.prebuilt = prebuilt, true
			return
		}
		dir, err := os.MkdirTemp("", "ec2sim-fidelity-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "ec2sim")
		goTool, err := exec.LookPath("go")
		if err != nil {
			build.err = fmt.Errorf("finding the go tool: %w", err)
			return
		}
		cmd := exec.Command(goTool, "build", "-o", build.bin, "./cmd/ec2sim")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/ec2sim: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.bin != "" && !build.prebuilt {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}

var listenRE = regexp.MustCompile(`ec2sim listening on (http://127\.0\.0\.1:\d+)`)

// startSim runs a fresh ec2sim (with extra flags args) on a free loopback port and returns its URL. It is stopped when
// the test ends.
func startSim(t *testing.T, args ...string) string {
	t.Helper()
	bin := ec2simBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cancel() // kills only the process we started
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("ec2sim stderr:\n%s", tail(stderr.String(), 4000))
		}
	})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
		if !sent {
			close(urlc)
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u, ok := <-urlc:
		if !ok {
			t.Fatalf("ec2sim exited without printing %q; stderr:\n%s", "ec2sim listening on http://127.0.0.1:PORT", stderr.String())
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("ec2sim did not print its listening line within 30s; stderr:\n%s", stderr.String())
	}
	return ""
}

// clientEnv is the whole environment for a client process: fixed fake credentials, a region, no
// config files, no pager, a private HOME and no proxies.
func clientEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=AKIDFIDELITY",
		"AWS_SECRET_ACCESS_KEY=fidelity-secret-not-real",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_RETRY_MODE=standard",
		"NO_PROXY=127.0.0.1",
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func TestBoto3(t *testing.T) {
	requireTool(t, python3, "-c", "import boto3")
	runBoto3(t, startSim(t))
}

// TestBoto3Throttle checks EC2's documented token buckets (-throttle aws) as boto3 sees them:
// RequestLimitExceeded with HTTP 503 once a bucket is empty.
func TestBoto3Throttle(t *testing.T) {
	requireTool(t, python3, "-c", "import boto3")
	runBoto3(t, startSim(t, "-throttle", "aws"), "throttle")
}

// TestBoto3Health checks instance health (scheduled events and status checks, set through the
// admin API) as boto3's describe_instance_status parses it.
func TestBoto3Health(t *testing.T) {
	requireTool(t, python3, "-c", "import boto3")
	url := startSim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python3, filepath.Join("testdata", "boto3_health.py"), url)
	cmd.Env = clientEnv(t)
	out, err := cmd.CombinedOutput()
	t.Logf("boto3_health.py:\n%s", out)
	if err != nil {
		t.Fatalf("boto3 found mismatches in instance health (see FAIL lines above): %v", err)
	}
}

func runBoto3(t *testing.T, url string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python3, append([]string{filepath.Join("testdata", "boto3_fidelity.py"), url}, args...)...)
	cmd.Env = clientEnv(t)
	out, err := cmd.CombinedOutput()
	t.Logf("boto3_fidelity.py:\n%s", out)
	if err != nil {
		t.Fatalf("boto3 found mismatches (see FAIL lines above): %v", err)
	}
}

// cli runs one awscli command against url.
type cli struct {
	t   *testing.T
	url string
	env []string
}

// run returns stdout, stderr and the exit code.
func (c cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--endpoint-url", c.url, "--output", "json", "--no-cli-pager"}, args...)
	cmd := exec.CommandContext(ctx, awsCLI, full...)
	cmd.Env = c.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			c.t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// ok runs a command that must succeed and decodes its JSON output into v.
func (c cli) ok(v any, args ...string) {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws %s: exit %d\nstderr: %s", strings.Join(args, " "), code, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s: output is not the expected JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// fails runs a command that must fail with the EC2 error code.
func (c cli) fails(code string, args ...string) {
	c.t.Helper()
	_, errOut, exit := c.run(args...)
	if exit == 0 {
		c.t.Errorf("aws %s: succeeded, want error %s", strings.Join(args, " "), code)
		return
	}
	if !strings.Contains(errOut, "("+code+")") {
		c.t.Errorf("aws %s: stderr %q, want error code (%s)", strings.Join(args, " "), strings.TrimSpace(errOut), code)
	}
}

type fleetOut struct {
	FleetId   string
	Errors    []json.RawMessage
	Instances []struct {
		InstanceIds  []string
		InstanceType string
		Lifecycle    string
	}
}

type describeOut struct {
	Reservations []struct {
		Instances []struct {
			InstanceId       string
			InstanceType     string
			SubnetId         string
			PrivateIpAddress string
			State            struct{ Name string }
			Placement        struct{ AvailabilityZone string }
			Tags             []struct{ Key, Value string }
		}
	}
	NextToken string
}

func (d describeOut) ids() []string {
	var out []string
	for _, r := range d.Reservations {
		for _, i := range r.Instances {
			out = append(out, i.InstanceId)
		}
	}
	sort.Strings(out)
	return out
}

const launchTemplateConfigs = `[{"LaunchTemplateSpecification":{"LaunchTemplateName":"%s","Version":"$Latest"},` +
	`"Overrides":[{"InstanceType":"c5.xlarge","SubnetId":"subnet-11111111"},{"InstanceType":"c5.xlarge","SubnetId":"subnet-22222222"}]}]`

func (c cli) createFleet(template string, n int, extra ...string) []string {
	c.t.Helper()
	var out fleetOut
	args := append([]string{"ec2", "create-fleet", "--type", "instant",
		"--launch-template-configs", fmt.Sprintf(launchTemplateConfigs, template),
		"--target-capacity-specification", fmt.Sprintf("TotalTargetCapacity=%d,DefaultTargetCapacityType=on-demand", n),
		"--tag-specifications", `[{"ResourceType":"instance","Tags":[{"Key":"slurm-ec2:cluster","Value":"fidelity-cli"}]}]`,
	}, extra...)
	c.ok(&out, args...)
	var ids []string
	for _, g := range out.Instances {
		if g.InstanceType != "c5.xlarge" || g.Lifecycle != "on-demand" {
			c.t.Errorf("create-fleet instance group %+v: want c5.xlarge on-demand", g)
		}
		ids = append(ids, g.InstanceIds...)
	}
	if !strings.HasPrefix(out.FleetId, "fleet-") || len(out.Errors) != 0 || len(ids) != n {
		c.t.Fatalf("create-fleet: FleetId %q, %d errors, %d instances; want fleet-..., 0, %d", out.FleetId, len(out.Errors), len(ids), n)
	}
	sort.Strings(ids)
	return ids
}

func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: about 25 awscli processes take ~10s")
	}
	requireTool(t, awsCLI, "--version")
	c := cli{t: t, url: startSim(t), env: clientEnv(t)}

	var lts struct {
		LaunchTemplates []struct{ LaunchTemplateName, LaunchTemplateId string }
	}
	c.ok(&lts, "ec2", "describe-launch-templates", "--launch-template-names", "template-name")
	if len(lts.LaunchTemplates) != 1 || lts.LaunchTemplates[0].LaunchTemplateName != "template-name" || !strings.HasPrefix(lts.LaunchTemplates[0].LaunchTemplateId, "lt-") {
		t.Errorf("describe-launch-templates = %+v, want template-name with an lt- id", lts)
	}

	ids := c.createFleet("template-name", 4)

	var d describeOut
	c.ok(&d, append([]string{"ec2", "describe-instances", "--instance-ids"}, ids...)...)
	azOf := map[string]string{"subnet-11111111": "us-east-1a", "subnet-22222222": "us-east-1b"}
	for _, r := range d.Reservations {
		for _, i := range r.Instances {
			if i.InstanceType != "c5.xlarge" || azOf[i.SubnetId] == "" || azOf[i.SubnetId] != i.Placement.AvailabilityZone || i.PrivateIpAddress == "" {
				t.Errorf("instance %+v: want c5.xlarge in one of the two subnets, AZ matching, with a private IP", i)
			}
		}
	}
	if got := d.ids(); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("describe-instances by id = %v, want %v", got, ids)
	}

	// Tag and filter.
	for n, id := range ids {
		c.ok(nil, "ec2", "create-tags", "--resources", id, "--tags", fmt.Sprintf("Key=Name,Value=cli-node-%d", n))
	}
	var one describeOut
	c.ok(&one, "ec2", "describe-instances", "--filters", "Name=tag:Name,Values=cli-node-1")
	if got := one.ids(); len(got) != 1 || got[0] != ids[1] {
		t.Errorf("filter tag:Name=cli-node-1 = %v, want [%s]", got, ids[1])
	}
	var q []string
	c.ok(&q, "ec2", "describe-instances", "--filters", "Name=tag:slurm-ec2:cluster,Values=fidelity-cli",
		"--query", "Reservations[].Instances[].Tags[?Key=='Name'].Value[]")
	sort.Strings(q)
	if want := []string{"cli-node-0", "cli-node-1", "cli-node-2", "cli-node-3"}; strings.Join(q, ",") != strings.Join(want, ",") {
		t.Errorf("Name tags via --query = %v, want %v", q, want)
	}

	// Pagination: awscli follows NextToken itself; --page-size sets MaxResults.
	ids = append(ids, c.createFleet("template-name", 4)...)
	sort.Strings(ids)
	var all describeOut
	c.ok(&all, "ec2", "describe-instances", "--page-size", "5", "--filters", "Name=tag:slurm-ec2:cluster,Values=fidelity-cli")
	if got := all.ids(); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("describe-instances --page-size 5 = %v, want all %d: %v", got, len(ids), ids)
	}
	// --max-items counts the paginator's result key, Reservations (one per launch here).
	var first describeOut
	c.ok(&first, "ec2", "describe-instances", "--max-items", "1", "--page-size", "5", "--filters", "Name=tag:slurm-ec2:cluster,Values=fidelity-cli")
	if len(first.Reservations) != 1 || first.NextToken == "" {
		t.Errorf("describe-instances --max-items 1: %d reservations, NextToken %q; want 1 and a token", len(first.Reservations), first.NextToken)
	}

	// Dry run, then errors.
	c.fails("DryRunOperation", "ec2", "terminate-instances", "--dry-run", "--instance-ids", ids[0])
	c.fails("DryRunOperation", "ec2", "create-fleet", "--dry-run", "--type", "instant",
		"--launch-template-configs", fmt.Sprintf(launchTemplateConfigs, "template-name"),
		"--target-capacity-specification", "TotalTargetCapacity=1,DefaultTargetCapacityType=on-demand")
	c.fails("InvalidInstanceID.NotFound", "ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0")
	c.fails("InvalidInstanceID.Malformed", "ec2", "describe-instances", "--instance-ids", "bogus")
	c.fails("InvalidInstanceID.NotFound", "ec2", "terminate-instances", "--instance-ids", "i-0123456789abcdef0")
	c.fails("InvalidLaunchTemplateName.NotFoundException", "ec2", "describe-launch-templates", "--launch-template-names", "no-such-template")
	c.fails("InvalidLaunchTemplateName.NotFoundException", "ec2", "create-fleet", "--type", "instant",
		"--launch-template-configs", fmt.Sprintf(launchTemplateConfigs, "no-such-template"),
		"--target-capacity-specification", "TotalTargetCapacity=1,DefaultTargetCapacityType=on-demand")

	// Terminate everything.
	var term struct {
		TerminatingInstances []struct {
			InstanceId                  string
			CurrentState, PreviousState struct{ Name string }
		}
	}
	c.ok(&term, append([]string{"ec2", "terminate-instances", "--instance-ids"}, ids...)...)
	if len(term.TerminatingInstances) != len(ids) {
		t.Fatalf("terminate-instances returned %d instances, want %d", len(term.TerminatingInstances), len(ids))
	}
	for _, ti := range term.TerminatingInstances {
		if s := ti.CurrentState.Name; s != "shutting-down" && s != "terminated" {
			t.Errorf("%s CurrentState %q, want shutting-down or terminated", ti.InstanceId, s)
		}
	}
	var live describeOut
	c.ok(&live, "ec2", "describe-instances", "--filters", "Name=tag:slurm-ec2:cluster,Values=fidelity-cli",
		"Name=instance-state-name,Values=pending,running")
	if got := live.ids(); len(got) != 0 {
		t.Errorf("pending/running after terminate: %v, want none", got)
	}
}
