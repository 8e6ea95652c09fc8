package query

import (
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseTree(t *testing.T) {
	tests := map[string]struct {
		in      string
		path    string
		want    []string
		errCode string
	}{
		"flattened list": {in: "Action=X&InstanceId.2=b&InstanceId.1=a&InstanceId.10=c", path: "InstanceId", want: []string{"a", "b", "c"}},
		"nested override": {in: "Action=X&LaunchTemplateConfigs.1.Overrides.2.InstanceType=c4&LaunchTemplateConfigs.1.Overrides.1.InstanceType=c5",
			path: "LaunchTemplateConfigs.1.Overrides", want: []string{"", ""}},
		"filter values":  {in: "Action=X&Filter.1.Name=tag:Name&Filter.1.Value.1=a&Filter.1.Value.2=b", path: "Filter.1.Value", want: []string{"a", "b"}},
		"missing action": {in: "Version=2016-11-15", errCode: "MissingAction"},
		"zero index":     {in: "Action=X&InstanceId.0=a", errCode: "MalformedQueryString"},
		"leading zero":   {in: "Action=X&InstanceId.01=a", errCode: "MalformedQueryString"},
		"empty segment":  {in: "Action=X&Filter..Name=a", errCode: "MalformedQueryString"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			req, err := Parse(v)
			if tc.errCode != "" {
				qe, ok := err.(*Error)
				if !ok || qe.Code != tc.errCode || qe.Status != 400 {
					t.Fatalf("err %v, want %s", err, tc.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Params.Strings(tc.path); strings.Join(got, ",") != strings.Join(tc.want, ",") || len(got) != len(tc.want) {
				t.Fatalf("Strings(%s) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
	v, _ := url.ParseQuery("Action=X&LaunchTemplateConfigs.1.Overrides.2.InstanceType=c4&LaunchTemplateConfigs.1.Overrides.1.InstanceType=c5&DryRun=true&N=7")
	req, _ := Parse(v)
	ovr := req.Params.List("LaunchTemplateConfigs.1.Overrides")
	if ovr[0].String("InstanceType") != "c5" || ovr[1].String("InstanceType") != "c4" {
		t.Fatalf("overrides out of order")
	}
	if b, _ := req.Params.Bool("DryRun"); !b {
		t.Fatal("DryRun")
	}
	if n, ok, err := req.Params.Int("N"); n != 7 || !ok || err != nil {
		t.Fatal("Int")
	}
}

type sampleResp struct {
	ResponseMeta
	IDs  []string `xml:"instancesSet>item>instanceId"`
	Next string   `xml:"nextToken,omitempty"`
}

func TestEncodeGolden(t *testing.T) {
	tests := map[string]func() ([]byte, error){
		"response": func() ([]byte, error) {
			return EncodeResponse("DescribeInstances", "req-1", &sampleResp{IDs: []string{"i-1", "i-2"}, Next: "t"})
		},
		"error": func() ([]byte, error) {
			return EncodeError(NewError("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"), "req-2"), nil
		},
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := fn()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(got) != string(want) {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestStatusFor(t *testing.T) {
	for code, want := range map[string]int{"AuthFailure": 401, "UnauthorizedOperation": 403, "DryRunOperation": 412,
		"RequestLimitExceeded": 503, "Unavailable": 503, "InternalError": 500, "InvalidParameterValue": 400} {
		if got := StatusFor(code); got != want {
			t.Errorf("StatusFor(%s) = %d, want %d", code, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("Action=CreateFleet&LaunchTemplateConfigs.1.Overrides.2.InstanceType=c5.xlarge&TagSpecification.1.Tag.1.Key=k")
	f.Add("Action=X&Filter.1.Name=a&Filter.1.Value.1=b")
	f.Add("Action=X&a..b=1&c.0=2")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		req, err := Parse(v)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("non-API error %T", err)
			}
			return
		}
		// Every key must be reachable again through the tree.
		for k, vs := range v {
			if k == "Action" || k == "Version" {
				continue
			}
			if n := req.Params.Get(k); n == nil || n.Value != vs[len(vs)-1] {
				t.Fatalf("key %q lost", k)
			}
		}
		_ = req.Params.Flatten()
	})
}
