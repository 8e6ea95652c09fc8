package ec2sim

import (
	"context"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
)

// describeAll walks DescribeInstanceTypes' pages and returns the type names in order and the
// number of calls.
func describeAll(t *testing.T, cl *ec2.Client, in *ec2.DescribeInstanceTypesInput) ([]string, int) {
	t.Helper()
	var names []string
	calls := 0
	p := ec2.NewDescribeInstanceTypesPaginator(cl, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("DescribeInstanceTypes: %v", err)
		}
		calls++
		for _, it := range page.InstanceTypes {
			names = append(names, string(it.InstanceType))
		}
	}
	return names, calls
}

func TestDescribeInstanceTypesShapes(t *testing.T) {
	e := newEnv(t, Options{})
	out, err := e.client("us-east-1").DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{"p4d.24xlarge", "c7g.xlarge", "trn1.32xlarge"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]types.InstanceTypeInfo{}
	for _, it := range out.InstanceTypes {
		got[string(it.InstanceType)] = it
	}
	if len(got) != 3 {
		t.Fatalf("got %d types, want 3", len(got))
	}
	p4d := got["p4d.24xlarge"]
	if aws.ToInt32(p4d.VCpuInfo.DefaultVCpus) != 96 || aws.ToInt32(p4d.VCpuInfo.DefaultCores) != 48 || aws.ToInt32(p4d.VCpuInfo.DefaultThreadsPerCore) != 2 ||
		aws.ToInt64(p4d.MemoryInfo.SizeInMiB) != 1179648 || !aws.ToBool(p4d.NetworkInfo.EfaSupported) ||
		aws.ToInt32(p4d.NetworkInfo.EfaInfo.MaximumEfaInterfaces) != 4 || !aws.ToBool(p4d.CurrentGeneration) ||
		!slices.Equal(p4d.ProcessorInfo.SupportedArchitectures, []types.ArchitectureType{"x86_64"}) {
		t.Errorf("p4d.24xlarge: %+v %+v %+v", p4d.VCpuInfo, p4d.MemoryInfo, p4d.NetworkInfo)
	}
	if p4d.GpuInfo == nil || len(p4d.GpuInfo.Gpus) != 1 {
		t.Fatalf("p4d.24xlarge GpuInfo %+v", p4d.GpuInfo)
	}
	g := p4d.GpuInfo.Gpus[0]
	if aws.ToString(g.Name) != "A100" || aws.ToString(g.Manufacturer) != "NVIDIA" || aws.ToInt32(g.Count) != 8 ||
		aws.ToInt32(g.MemoryInfo.SizeInMiB) != 40960 || aws.ToInt32(p4d.GpuInfo.TotalGpuMemoryInMiB) != 8*40960 {
		t.Errorf("p4d.24xlarge GPU %+v total %d", g, aws.ToInt32(p4d.GpuInfo.TotalGpuMemoryInMiB))
	}
	c7g := got["c7g.xlarge"]
	if aws.ToInt32(c7g.VCpuInfo.DefaultCores) != 4 || aws.ToInt32(c7g.VCpuInfo.DefaultThreadsPerCore) != 1 ||
		!slices.Equal(c7g.ProcessorInfo.SupportedArchitectures, []types.ArchitectureType{"arm64"}) || c7g.GpuInfo != nil {
		t.Errorf("c7g.xlarge: %+v %+v", c7g.VCpuInfo, c7g.ProcessorInfo)
	}
	trn := got["trn1.32xlarge"]
	if trn.GpuInfo != nil || trn.NeuronInfo == nil || len(trn.NeuronInfo.NeuronDevices) != 1 ||
		aws.ToInt32(trn.NeuronInfo.NeuronDevices[0].Count) != 16 || aws.ToString(trn.NeuronInfo.NeuronDevices[0].Name) != "Trainium" {
		t.Errorf("trn1.32xlarge: gpu %+v neuron %+v", trn.GpuInfo, trn.NeuronInfo)
	}
}

func TestDescribeInstanceTypesFiltersAndPages(t *testing.T) {
	e := newEnv(t, Options{})
	cl := e.client("us-east-1")
	all, calls := describeAll(t, cl, &ec2.DescribeInstanceTypesInput{})
	if len(all) != len(builtinInstanceTypes()) || calls != 1 {
		t.Fatalf("all: %d types in %d calls, want %d in 1", len(all), calls, len(builtinInstanceTypes()))
	}
	paged, calls := describeAll(t, cl, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	if diff := cmp.Diff(all, paged); diff != "" || calls != (len(all)+4)/5 {
		t.Errorf("MaxResults 5: %d calls, want %d; diff %s", calls, (len(all)+4)/5, diff)
	}
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	tests := map[string]struct {
		in   ec2.DescribeInstanceTypesInput
		want []string
	}{
		"graviton": {ec2.DescribeInstanceTypesInput{Filters: []types.Filter{filter("processor-info.supported-architecture", "arm64")}},
			[]string{"c7g.xlarge", "c7g.16xlarge", "m7g.xlarge", "r7g.xlarge", "hpc7g.16xlarge"}},
		"previous generation": {ec2.DescribeInstanceTypesInput{Filters: []types.Filter{filter("current-generation", "false")}},
			[]string{"c4.large", "c4.xlarge"}},
		"wildcard and EFA (filters AND, values OR)": {ec2.DescribeInstanceTypesInput{Filters: []types.Filter{
			filter("instance-type", "p*", "hpc*"), filter("network-info.efa-supported", "true")}},
			[]string{"hpc6a.48xlarge", "hpc7g.16xlarge", "p4d.24xlarge", "p5.48xlarge"}},
		"names and a filter": {ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"c5.xlarge", "c7g.xlarge"},
			Filters: []types.Filter{filter("vcpu-info.default-threads-per-core", "2")}}, []string{"c5.xlarge"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, _ := describeAll(t, cl, &tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDescribeInstanceTypesErrors(t *testing.T) {
	e := newEnv(t, Options{})
	cl := e.client("us-east-1")
	many := make([]types.InstanceType, 101)
	for i := range many {
		many[i] = "c5.xlarge"
	}
	tests := map[string]struct {
		in       ec2.DescribeInstanceTypesInput
		wantCode string
		wantMsg  string
	}{
		"unknown type":       {ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"c5.xlarge", "c5.huge"}}, "InvalidInstanceType", "[c5.huge]"},
		"too many types":     {ec2.DescribeInstanceTypesInput{InstanceTypes: many}, "InvalidParameterValue", "100"},
		"MaxResults below":   {ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(4)}, "InvalidParameterValue", "between 5 and 100"},
		"MaxResults above":   {ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(101)}, "InvalidParameterValue", "between 5 and 100"},
		"unknown filter":     {ec2.DescribeInstanceTypesInput{Filters: []types.Filter{{Name: aws.String("gpu-count"), Values: []string{"1"}}}}, "InvalidParameterValue", "gpu-count"},
		"bad pagination":     {ec2.DescribeInstanceTypesInput{NextToken: aws.String("nope")}, "InvalidPaginationToken", ""},
		"other action token": {ec2.DescribeInstanceTypesInput{NextToken: aws.String(encodeToken("7"))}, "InvalidPaginationToken", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := cl.DescribeInstanceTypes(context.Background(), &tc.in)
			if code := apiCode(t, err); code != tc.wantCode || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %v, want code %s containing %q", err, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// A world file that lists a catalog type with only its prices keeps the catalog's layout and
// GPUs; a type the catalog does not know is offered as written.
func TestWorldTypesMergeWithCatalog(t *testing.T) {
	w := DefaultWorld()
	w.InstanceTypes = []InstanceTypeSpec{
		{Name: "g5.xlarge", VCPUs: 4, MemoryMiB: 16384, OnDemandPrice: 9, SpotPrice: 1},
		{Name: "x9.tiny", VCPUs: 2, MemoryMiB: 1024, OnDemandPrice: 0.01, SpotPrice: 0.005},
	}
	types := catalogTypes(w.InstanceTypes)
	if types[0].Name != "g5.xlarge" || types[0].Cores != 2 || types[0].ThreadsPerCore != 2 || len(types[0].GPUs) != 1 || types[0].OnDemandPrice != 9 {
		t.Errorf("g5.xlarge merged as %+v", types[0])
	}
	if types[1].Name != "x9.tiny" || types[1].Cores != 2 || types[1].ThreadsPerCore != 1 || types[1].Architecture != "x86_64" {
		t.Errorf("x9.tiny as %+v", types[1])
	}
	if len(types) != len(builtinInstanceTypes())+1 {
		t.Errorf("%d types, want the catalog plus x9.tiny", len(types))
	}
	for _, it := range builtinInstanceTypes() {
		if it.VCPUs != it.Cores*it.ThreadsPerCore || it.MemoryMiB <= 0 || it.OnDemandPrice <= 0 || it.SpotPrice <= 0 || it.Architecture == "" {
			t.Errorf("catalog entry %s inconsistent: %+v", it.Name, it)
		}
	}
}

// FuzzDescribeInstanceTypes sends arbitrary names, filters, page sizes and tokens: the answer
// is a page of at most MaxResults types or a client error (4xx), never a server error.
func FuzzDescribeInstanceTypes(f *testing.F) {
	f.Add("c5.xlarge", "instance-type", "c5.*", "5", "")
	f.Add("", "processor-info.supported-architecture", "arm64", "100", encodeToken("it:3"))
	f.Add("p4d.24xlarge", "current-generation", "true", "4", "djE6aXQ6LTE")
	f.Add("", "memory-info.size-in-mib", "*", "", encodeToken("it:999"))
	s := New(Options{Seed: 1})
	f.Fuzz(func(t *testing.T, itype, fname, fvalue, maxResults, token string) {
		form := url.Values{"Action": {"DescribeInstanceTypes"}, "Version": {"2016-11-15"}}
		for k, v := range map[string]string{"InstanceType.1": itype, "Filter.1.Name": fname, "Filter.1.Value.1": fvalue, "MaxResults": maxResults, "NextToken": token} {
			if v != "" {
				form.Set(k, v)
			}
		}
		req := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		body := rec.Body.String()
		switch {
		case rec.Code == 200:
			n, err := strconv.Atoi(maxResults)
			if items := strings.Count(body, "<instanceType>"); err == nil && items > n {
				t.Fatalf("MaxResults %d gave %d types", n, items)
			}
		case rec.Code >= 400 && rec.Code < 500 && strings.Contains(body, "<Code>"):
		default:
			t.Fatalf("status %d: %s", rec.Code, body)
		}
	})
}
