package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nodenameIMDS serves IMDSv2 for one instance; withTag controls tags/instance/Name.
func nodenameIMDS(withTag bool) http.Handler {
	meta := map[string]string{"instance-id": "i-0123", "placement/region": "us-east-1", "local-ipv4": "10.9.8.7"}
	if withTag {
		meta["tags/instance/Name"] = "aws-node-3"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			fmt.Fprint(w, "tok")
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		v, ok := meta[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, v)
	})
}

// nodenameEC2 answers DescribeTags in the EC2 Query protocol.
func nodenameEC2(tag string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("Action") != "DescribeTags" || r.Form.Get("Filter.1.Value.1") != "i-0123" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>unexpected %s</Message></Error></Errors><RequestID>r</RequestID></Response>`, r.Form.Encode())
			return
		}
		set := ""
		if tag != "" {
			set = `<item><resourceId>i-0123</resourceId><resourceType>instance</resourceType><key>Name</key><value>` + tag + `</value></item>`
		}
		fmt.Fprintf(w, `<DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><tagSet>%s</tagSet></DescribeTagsResponse>`, set)
	})
}

// TestNodenameSlurmFallback: no tag anywhere, but resume already set NodeAddr to this instance's
// IP; a fake scontrol prints what Slurm 22.05 prints for `scontrol -o show nodes`.
func TestNodenameSlurmFallback(t *testing.T) {
	im := httptest.NewServer(nodenameIMDS(false))
	defer im.Close()
	ec := httptest.NewServer(nodenameEC2(""))
	defer ec.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", im.URL)
	t.Setenv("AWS_ENDPOINT_URL_EC2", ec.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	bin := t.TempDir()
	script := "#!/bin/sh\n[ \"$*\" = \"-o show nodes\" ] || exit 3\n" +
		"echo 'NodeName=aws-node-2 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=N/A AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=10.9.8.6 NodeHostName=ip-10-9-8-6 RealMemory=1 AllocMem=0 FreeMem=N/A Sockets=2 Boards=1 State=IDLE+CLOUD+POWERING_UP ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=aws BootTime=None SlurmdStartTime=None LastBusyTime=2026-01-01T00:00:00 CfgTRES=cpu=2 AllocTRES= CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s'\n" +
		"echo 'NodeName=aws-node-3 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=N/A AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=10.9.8.7 NodeHostName=ip-10-9-8-7 RealMemory=1 AllocMem=0 FreeMem=N/A Sockets=2 Boards=1 State=IDLE+CLOUD+POWERING_UP ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=aws BootTime=None SlurmdStartTime=None LastBusyTime=2026-01-01T00:00:00 CfgTRES=cpu=2 AllocTRES= CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s'\n"
	if err := os.WriteFile(filepath.Join(bin, "scontrol"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Run(context.Background(), env, []string{"slurm-ec2", "nodename", "--slurm-bin", bin, "--no-hostname-fallback"})
	if code != ExitOK || out.String() != "aws-node-3\n" {
		t.Fatalf("exit %d, stdout %q, want aws-node-3; stderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "source=slurm-nodeaddr") {
		t.Errorf("stderr does not say the name came from NodeAddr:\n%s", errb.String())
	}
}

func TestNodenameEnvFile(t *testing.T) {
	im := httptest.NewServer(nodenameIMDS(true))
	defer im.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", im.URL)
	file := filepath.Join(t.TempDir(), "run", "slurm-ec2", "nodename.env")
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := Run(context.Background(), env, []string{"slurm-ec2", "nodename", "--no-slurm", "--env-file", file}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != "SLURM_NODENAME=aws-node-3\n" {
		t.Fatalf("env file = %q, %v", b, err)
	}
	if err := writeNodenameEnv(file, "x\nLD_PRELOAD=/tmp/evil.so"); err == nil {
		t.Error("a node name with a newline was written to the environment file")
	}
}

func TestNodenameCommand(t *testing.T) {
	tests := map[string]struct {
		imdsTag  bool
		ec2Tag   string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		"imds tag":               {imdsTag: true, args: []string{"--no-slurm"}, wantOut: "aws-node-3\n"},
		"describe tags":          {ec2Tag: "aws-node-4", args: []string{"--no-slurm"}, wantOut: "aws-node-4\n"},
		"nothing, no fallback":   {args: []string{"--wait", "0s", "--no-slurm", "--no-hostname-fallback"}, wantCode: ExitFailure, wantErr: "no node name found"},
		"bad flag":               {args: []string{"--wat", "1s"}, wantCode: ExitUsage},
		"stray argument":         {args: []string{"extra"}, wantCode: ExitUsage, wantErr: "takes no arguments"},
		"negative wait is usage": {args: []string{"--wait", "-1s"}, wantCode: ExitUsage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			im := httptest.NewServer(nodenameIMDS(tc.imdsTag))
			defer im.Close()
			ec := httptest.NewServer(nodenameEC2(tc.ec2Tag))
			defer ec.Close()
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", im.URL)
			t.Setenv("AWS_ENDPOINT_URL_EC2", ec.URL)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-never-logged")
			t.Setenv("AWS_CONFIG_FILE", "/dev/null")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			code := Run(context.Background(), env, append([]string{"slurm-ec2", "nodename"}, tc.args...))
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, errb.String())
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errb.String())
			}
			if strings.Contains(errb.String(), "secret-never-logged") {
				t.Errorf("stderr leaks the secret key:\n%s", errb.String())
			}
		})
	}
}

// Without --wait, nodename waits as long as EC2's CreateTags bucket needs to name the largest
// burst the configuration allows in one region and account.
func TestNodenameWaitDefault(t *testing.T) {
	small := writeIAMConfig(t) // one group of 10 nodes
	big := t.TempDir()
	b, err := os.ReadFile(filepath.Join(small, "partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Two groups of 1,200 in us-west-2 (2,400 in one region) and one of 2,000 in us-east-1.
	parts := strings.Replace(string(b), `"MaxNodes":10`, `"MaxNodes":1200`, 1)
	group := parts[strings.Index(parts, `{"NodeGroupName"`) : strings.LastIndex(parts, "}]}]}")+1]
	parts = strings.Replace(parts, group, group+","+strings.Replace(group, `"node"`, `"more"`, 1)+","+
		strings.NewReplacer(`"node"`, `"east"`, `"us-west-2"`, `"us-east-1"`, `"MaxNodes":1200`, `"MaxNodes":2000`).Replace(group), 1)
	for name, body := range map[string]string{"partitions.json": parts} {
		if err := os.WriteFile(filepath.Join(big, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(small, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(big, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"no configuration: one full fleet": {args: []string{"--config-dir", t.TempDir()}, want: "wait=2m0s burst=1000"},
		"small configuration: the floor":   {args: []string{"--config-dir", small}, want: "wait=1m0s burst=10"},
		"largest region counts":            {args: []string{"--config-dir", big}, want: "wait=4m20s burst=2400"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			im := httptest.NewServer(nodenameIMDS(true))
			defer im.Close()
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", im.URL)
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			code := Run(context.Background(), env, append([]string{"slurm-ec2", "nodename", "-v", "--no-slurm"}, tc.args...))
			if code != 0 || out.String() != "aws-node-3\n" {
				t.Fatalf("exit %d, stdout %q; stderr:\n%s", code, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errb.String())
			}
		})
	}
}
