package iampolicy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func sampleInput() Input {
	return Input{
		ClusterName:    "hpc1",
		AccountID:      "123456789012",
		ComputeRoleARN: "arn:aws:iam::123456789012:role/slurm-compute",
		Groups: []Group{
			{Region: "us-east-1", LaunchTemplateName: "template-name", SubnetIDs: []string{"subnet-11111111", "subnet-22222222"}},
			{Region: "us-east-1", LaunchTemplateName: "template-name", SubnetIDs: []string{"subnet-22222222"}},
			{Region: "eu-west-1", LaunchTemplateID: "lt-0123456789abcdef0"},
		},
	}
}

func TestGolden(t *testing.T) {
	for _, node := range []string{"both", "head", "compute"} {
		t.Run(node, func(t *testing.T) {
			p, err := Build(sampleInput(), node)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Marshal(p, node)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", node+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", golden, diff)
			}
			// Idempotent: the same input renders the same bytes.
			p2, _ := Build(sampleInput(), node)
			again, _ := Marshal(p2, node)
			if !bytes.Equal(got, again) {
				t.Error("two renders of the same input differ")
			}
		})
	}
}

// decoded parses the output as a consumer (IAM) would.
func decoded(t *testing.T, in Input) map[string]Policy {
	t.Helper()
	p, err := Build(in, "both")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(p, "both")
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]Policy
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	return out
}

func allowed(p Policy, service string) []string {
	var acts []string
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			if strings.HasPrefix(a, service+":") {
				acts = append(acts, strings.TrimPrefix(a, service+":"))
			}
		}
	}
	sort.Strings(acts)
	return slices.Compact(acts)
}

func TestActionsMatchFleetLists(t *testing.T) {
	ps := decoded(t, sampleInput())
	want := slices.Clone(fleet.HeadNodeActions)
	sort.Strings(want)
	if diff := cmp.Diff(want, allowed(ps["HeadNode"], "ec2")); diff != "" {
		t.Errorf("head node ec2 actions differ from fleet.HeadNodeActions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"CreateServiceLinkedRole", "PassRole"}, allowed(ps["HeadNode"], "iam")); diff != "" {
		t.Errorf("head node iam actions (-want +got):\n%s", diff)
	}
	want = slices.Clone(fleet.ComputeNodeActions)
	sort.Strings(want)
	if diff := cmp.Diff(want, allowed(ps["ComputeNode"], "ec2")); diff != "" {
		t.Errorf("compute node actions (-want +got):\n%s", diff)
	}
	for name, p := range ps {
		for _, s := range p.Statement {
			for _, a := range s.Action {
				if strings.Contains(a, "*") {
					t.Errorf("%s %s: wildcard action %q", name, s.Sid, a)
				}
			}
			if s.Effect != "Allow" || s.Sid == "" || len(s.Resource) == 0 {
				t.Errorf("%s: malformed statement %+v", name, s)
			}
		}
	}
}

func TestScoping(t *testing.T) {
	p := decoded(t, sampleInput())["HeadNode"]
	for _, s := range p.Statement {
		acts := strings.Join(s.Action, ",")
		res := strings.Join(s.Resource, ",")
		if s.Resource[0] == "*" && !strings.Contains(acts, "Describe") {
			t.Errorf("%s: Resource * on %s", s.Sid, acts)
		}
		for _, tagged := range fleet.TaggedActions {
			if !slices.Contains(s.Action, "ec2:"+tagged) {
				continue
			}
			_, atLaunch := s.Condition["StringEquals"]["ec2:CreateAction"]
			got := s.Condition["StringEquals"]["aws:ResourceTag/"+ClusterTagKey]
			if !(tagged == "CreateTags" && atLaunch) && !cmp.Equal(got, []string{"hpc1"}) {
				t.Errorf("%s allows %s without the cluster tag condition: %+v", s.Sid, tagged, s.Condition)
			}
		}
		if slices.Contains(s.Action, "ec2:RunInstances") && strings.Contains(res, ":instance/") {
			if got := s.Condition["StringEquals"]["aws:RequestTag/"+ClusterTagKey]; !cmp.Equal(got, []string{"hpc1"}) {
				t.Errorf("%s launches instances without requiring the cluster tag", s.Sid)
			}
		}
		if slices.Contains(s.Action, "ec2:RunInstances") {
			if strings.Contains(res, "us-east-1:123456789012:subnet/*") {
				t.Errorf("%s: subnets not scoped although every group names them: %s", s.Sid, res)
			}
			for _, w := range []string{"subnet/subnet-11111111", "launch-template/lt-0123456789abcdef0", "arn:aws:ec2:us-east-1:123456789012:launch-template/*"} {
				if strings.Contains(res, ":instance/") || strings.Contains(res, w) {
					continue
				}
				t.Errorf("%s lacks %s", s.Sid, w)
			}
			if strings.Contains(res, "us-west-2") {
				t.Errorf("%s names a region not in use", s.Sid)
			}
		}
		if slices.Contains(s.Action, "iam:PassRole") {
			if !cmp.Equal(s.Resource, []string{"arn:aws:iam::123456789012:role/slurm-compute"}) || !cmp.Equal(s.Condition["StringEquals"]["iam:PassedToService"], []string{"ec2.amazonaws.com"}) {
				t.Errorf("PassRole not limited: %+v", s)
			}
		}
		if slices.Contains(s.Action, "iam:CreateServiceLinkedRole") && !strings.HasSuffix(res, "/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet") {
			t.Errorf("CreateServiceLinkedRole on %s", res)
		}
	}
}

func TestPlaceholderAndErrors(t *testing.T) {
	in := sampleInput()
	in.ComputeRoleARN = ""
	in.AccountID = ""
	h, err := Head(in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(h)
	if !strings.Contains(string(b), PlaceholderComputeRoleARN) || !strings.Contains(string(b), "arn:aws:ec2:us-east-1:*:instance/*") {
		t.Errorf("want placeholder role and * account: %s", b)
	}
	tests := map[string]struct {
		mod  func(*Input)
		node string
		want string
	}{
		"no cluster":   {func(in *Input) { in.ClusterName = "" }, "both", "ClusterName"},
		"no groups":    {func(in *Input) { in.Groups = nil }, "head", "at least one region"},
		"no region":    {func(in *Input) { in.Groups[0].Region = "" }, "compute", "no Region"},
		"bad node arg": {func(in *Input) {}, "login", "want head, compute or both"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := sampleInput()
			tc.mod(&in)
			if _, err := Build(in, tc.node); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build() error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestUnscopedSubnetWhenGroupNamesNone(t *testing.T) {
	in := sampleInput()
	h, err := Head(in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(h)
	// The eu-west-1 group names no subnet: the launch template's subnet must stay usable there only.
	if !strings.Contains(string(b), "arn:aws:ec2:eu-west-1:123456789012:subnet/*") || strings.Contains(string(b), "us-east-1:123456789012:subnet/*") {
		t.Errorf("subnet wildcard wrong: %s", b)
	}
}
