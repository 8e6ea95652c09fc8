package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNodes(t *testing.T) {
	b, err := os.ReadFile("testdata/scontrol-show-node.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := ParseNodes(string(b))
	want := []Node{
		{Name: "aws-big-0", Addr: "127.0.0.1", Hostname: "aws-big-0", State: "IDLE+CLOUD+POWERED_DOWN", Base: "IDLE", Flags: []string{"CLOUD", "POWERED_DOWN"}},
		{Name: "aws-spot-1", Addr: "127.0.0.1", Hostname: "aws-spot-1", State: "DOWN+CLOUD+POWERED_DOWN", Base: "DOWN", Flags: []string{"CLOUD", "POWERED_DOWN"},
			Reason: "ResumeTimeout reached; x=y a b [root@2026-11-27T03:30:12]"},
		{Name: "aws-spot-2", Addr: "127.0.0.1", Hostname: "aws-spot-2", State: "IDLE+CLOUD+DRAIN+POWERED_DOWN", Base: "IDLE", Flags: []string{"CLOUD", "DRAIN", "POWERED_DOWN"},
			Reason: "InsufficientInstanceCapacity: we=1 (cool-down) [root@2026-11-27T03:30:12]"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseNodes (-want +got):\n%s", diff)
	}
	if got[0].PoweredUp() || !got[1].Has("DOWN") || got[1].Has("DRAIN") {
		t.Errorf("state predicates wrong: %+v", got)
	}
}

func TestParseJob(t *testing.T) {
	tests := []struct {
		name, in string
		want     Job
		ok       bool
	}{
		{"running", "JobId=7 JobName=wrap UserId=root(0) JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=2 BatchFlag=1 NodeList=aws-ondemand-[0-2] StdOut=/tmp/x/slurm-7.out Power=",
			Job{ID: "7", State: "RUNNING", Reason: "None", NodeList: "aws-ondemand-[0-2]", StdOut: "/tmp/x/slurm-7.out", Restarts: 2}, true},
		{"pending", "JobId=8 JobState=PENDING Reason=BeginTime Dependency=(null) Restarts=0 NodeList=(null)",
			Job{ID: "8", State: "PENDING", Reason: "BeginTime", NodeList: "(null)"}, true},
		{"none", "slurm_load_jobs error: Invalid job id specified", Job{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseJob(tt.in)
			if ok != tt.ok || !cmp.Equal(got, tt.want) {
				t.Errorf("ParseJob = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseNodes(f *testing.F) {
	b, _ := os.ReadFile("testdata/scontrol-show-node.txt")
	f.Add(string(b))
	f.Add("NodeName= State=+ Reason=")
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range ParseNodes(s) {
			if n.Name == "" || strings.ContainsAny(n.Name, " \n") {
				t.Fatalf("bad node name %q from %q", n.Name, s)
			}
		}
		ParseJob(s)
	})
}
