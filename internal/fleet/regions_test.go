package fleet_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

func simClient(t *testing.T, sim *ec2sim.Sim, opts fleet.Options) fleet.EC2API {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_EC2", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFLEETTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fleet-test-secret")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	api, err := fleet.NewClients(opts).Get(context.Background(), "us-east-1", "")
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// DescribeRegions over the wire: the SDK decodes ec2sim's regionInfo, and filters apply.
func TestRegionsOverTheWire(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{Seed: 1})
	api := simClient(t, sim, fleet.Options{})
	got, err := fleet.Regions(context.Background(), api)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"us-east-1", "us-west-2"}) {
		t.Errorf("regions %v", got)
	}
	out, err := api.DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{RegionNames: []string{"us-west-2"}})
	if err != nil || len(out.Regions) != 1 || aws.ToString(out.Regions[0].Endpoint) != "ec2.us-west-2.amazonaws.com" || aws.ToString(out.Regions[0].OptInStatus) != "opt-in-not-required" {
		t.Errorf("DescribeRegions us-west-2: %+v, %v", out, err)
	}
	if _, err := api.DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{RegionNames: []string{"xx-nowhere-1"}}); fleet.ErrorCode(err) != "InvalidParameterValue" {
		t.Errorf("unknown region: %v, want InvalidParameterValue", err)
	}
}

// An optional call gets fleet.OptionalAttempts tries, however many the client allows others.
func TestOptionalRetryBudget(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{Seed: 1})
	api := simClient(t, sim, fleet.Options{MaxAttempts: 8, MaxBackoff: 10 * time.Millisecond})
	if err := sim.InjectFault(ec2sim.Fault{Action: "*", Rate: 1, Code: "InternalError"}); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.SpotMarked(context.Background(), fleet.AsOptional(api), "us-east-1"); err == nil {
		t.Fatal("no error under the fault")
	}
	if n := sim.Counters()["DescribeSpotInstanceRequests"].Total; n != fleet.OptionalAttempts {
		t.Errorf("optional call tried %d times, want %d", n, fleet.OptionalAttempts)
	}
	if _, err := fleet.Describe(context.Background(), fleet.AsOptional(api), "us-east-1"); err == nil {
		t.Fatal("no error under the fault")
	}
	if n := sim.Counters()["DescribeInstances"].Total; n != 8 {
		t.Errorf("a required call through the wrapper tried %d times, want the client's 8", n)
	}
}
