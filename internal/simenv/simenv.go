// Package simenv is the EC2 half of the test harness shared by the integration tests
// (internal/burst), the fault matrix (test/faults) and the benchmarks (bench): ec2sim behind
// HTTP, the AWS SDK environment that points slurm-ec2 at it, EC2 accounts chosen by profile, and
// launches "behind the plugin's back". The Slurm half is the scontrol stand-in
// (internal/slurm/fakeslurm).
package simenv

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// Account is one EC2 account: an ec2sim and the URL it answers on.
type Account struct {
	Sim *ec2sim.Sim
	URL string
}

// Start serves a new ec2sim until the test ends.
func Start(tb testing.TB, opts ec2sim.Options) *Account {
	tb.Helper()
	sim := ec2sim.New(opts)
	srv := httptest.NewServer(sim)
	tb.Cleanup(srv.Close)
	return &Account{Sim: sim, URL: srv.URL}
}

// Credentials are the dummy credentials a run signs with (ec2sim checks the signature's shape).
type Credentials struct{ KeyID, Secret, Token string }

// SDKEnv is the environment that points the AWS SDK (slurm-ec2, in or out of process) at url with
// creds, and at no shared config, credentials file or instance metadata of this machine. dir
// holds the (absent) config files.
func SDKEnv(url, dir string, creds Credentials) map[string]string {
	env := map[string]string{
		"AWS_ENDPOINT_URL_EC2":        url,
		"AWS_ACCESS_KEY_ID":           creds.KeyID,
		"AWS_SECRET_ACCESS_KEY":       creds.Secret,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	if creds.Token != "" {
		env["AWS_SESSION_TOKEN"] = creds.Token
	}
	return env
}

// Setenv sets SDKEnv for the rest of the test.
func Setenv(t *testing.T, url, dir string, creds Credentials) {
	t.Helper()
	for k, v := range SDKEnv(url, dir, creds) {
		t.Setenv(k, v)
	}
}

// Client is a plain SDK client on the account, for arranging state behind the plugin's back.
// It uses the credentials of the environment (Setenv).
func (a *Account) Client(ctx context.Context, region string) (*ec2.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(a.URL) }), nil
}

// Launch starts n instances with tags in a subnet, as something other than resume would.
func (a *Account) Launch(tb testing.TB, region, subnet string, n int, tags map[string]string) []string {
	tb.Helper()
	ctx := context.Background()
	cl, err := a.Client(ctx, region)
	if err != nil {
		tb.Fatal(err)
	}
	var ts []types.Tag
	for k, v := range tags {
		ts = append(ts, fleet.T(k, v))
	}
	out, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
		LaunchTemplate:    &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("template-name")},
		SubnetId:          aws.String(subnet),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: ts}},
	})
	if err != nil {
		tb.Fatalf("RunInstances: %v", err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	return ids
}

// Accounts picks an EC2 account by AWS profile: "" is Main, each profile of ByProfile its own
// account, and any other profile (or one marked unreachable) does not exist, as the SDK says of a
// profile missing from ~/.aws/config.
type Accounts struct {
	Main      *Account
	ByProfile map[string]*Account

	mu   sync.Mutex
	down map[string]bool
}

// SetUnreachable makes a profile's clients fail to build (down) or work again.
func (a *Accounts) SetUnreachable(profile string, down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down == nil {
		a.down = map[string]bool{}
	}
	a.down[profile] = down
}

// Clients returns slurm-ec2's client cache with its endpoints chosen by profile.
func (a *Accounts) Clients(opts fleet.Options) *fleet.Clients {
	cl := fleet.NewClients(opts)
	cl.New = func(ctx context.Context, region, profile string) (fleet.EC2API, error) {
		a.mu.Lock()
		down := a.down[profile]
		a.mu.Unlock()
		acct := a.Main
		if profile != "" {
			acct = a.ByProfile[profile]
		}
		if acct == nil || down {
			return nil, fmt.Errorf("failed to get shared config profile, %s", profile)
		}
		return acct.Client(ctx, region)
	}
	return cl
}
