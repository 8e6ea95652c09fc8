// Package fleet is the EC2 side of slurm-ec2: the few EC2 operations we need behind a small
// interface, request building, batching to AWS's limits, retries and error classes.
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2API is the subset of *ec2.Client that slurm-ec2 calls, with the SDK's own signatures so the
// real client satisfies it unchanged. Every action here is listed in HeadNodeActions.
type EC2API interface {
	CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, opts ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, opts ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	DescribeSpotInstanceRequests(ctx context.Context, in *ec2.DescribeSpotInstanceRequestsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error)
	// Inventory (issue 13): the regions `reconcile --all-regions` sweeps.
	DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, opts ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// Options tune the SDK clients.
type Options struct {
	// MaxAttempts per call, including the first (throttling and 5xx are retried with the SDK's
	// adaptive retry mode). Default 12.
	MaxAttempts int
	// MaxBackoff caps the wait between retries. Default 20s.
	MaxBackoff time.Duration
	// HTTPTimeout bounds one HTTP attempt. Default 90s (CreateFleet instant waits for the launch).
	HTTPTimeout time.Duration
	Logger      *slog.Logger
}

// Clients builds and caches one EC2 client per (region, profile).
type Clients struct {
	opts Options
	mu   sync.Mutex
	m    map[clientKey]EC2API
	// New, when set, replaces the SDK client constructor (tests).
	New func(ctx context.Context, region, profile string) (EC2API, error)
}

type clientKey struct{ region, profile string }

// NewClients returns a client cache.
func NewClients(opts Options) *Clients {
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 12
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 20 * time.Second
	}
	if opts.HTTPTimeout == 0 {
		opts.HTTPTimeout = 90 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Clients{opts: opts, m: map[clientKey]EC2API{}}
}

// Get returns the client for region and the optional shared-config profile. The SDK's default
// credential chain applies, and AWS_ENDPOINT_URL_EC2 is honoured by the SDK itself.
func (c *Clients) Get(ctx context.Context, region, profile string) (EC2API, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := clientKey{region, profile}
	if cl, ok := c.m[k]; ok {
		return cl, nil
	}
	var (
		cl  EC2API
		err error
	)
	if c.New != nil {
		cl, err = c.New(ctx, region, profile)
	} else {
		cl, err = c.newSDK(ctx, region, profile)
	}
	if err != nil {
		return nil, err
	}
	cl = &logged{api: cl, log: c.opts.Logger.With("region", region)}
	c.m[k] = cl
	return cl, nil
}

func (c *Clients) newSDK(ctx context.Context, region, profile string) (EC2API, error) {
	loaders := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(region),
		// A buildable client keeps the SDK's transport options (AWS_CA_BUNDLE, proxies) working.
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(c.opts.HTTPTimeout)),
		awsconfig.WithRetryer(func() aws.Retryer {
			// Adaptive mode: retries throttling (RequestLimitExceeded) and 5xx with backoff and
			// slows the client down when EC2 throttles. No client-side retry quota: a burst of
			// throttling must not turn into "retry quota exceeded" failures.
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = c.opts.MaxAttempts
					so.MaxBackoff = c.opts.MaxBackoff
					so.RateLimiter = ratelimit.None
				})
			})
		}),
	}
	if profile != "" {
		loaders = append(loaders, awsconfig.WithSharedConfigProfile(profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration for region %s (profile %q): %w", region, profile, err)
	}
	return ec2.NewFromConfig(cfg), nil
}

// logged logs every EC2 call at DEBUG with its duration and outcome, never its credentials.
type logged struct {
	api EC2API
	log *slog.Logger
}

func (l *logged) done(ctx context.Context, action string, start time.Time, err error, attrs ...any) {
	attrs = append(attrs, "action", action, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		attrs = append(attrs, "error", ErrorCode(err))
	}
	l.log.DebugContext(ctx, "ec2 call", attrs...)
}

func (l *logged) CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, opts ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	start := time.Now()
	out, err := l.api.CreateFleet(ctx, in, opts...)
	n := 0
	if out != nil {
		for _, i := range out.Instances {
			n += len(i.InstanceIds)
		}
	}
	l.done(ctx, "CreateFleet", start, err, "instances", n)
	return out, err
}

func (l *logged) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	start := time.Now()
	out, err := l.api.CreateTags(ctx, in, opts...)
	l.done(ctx, "CreateTags", start, err, "resources", len(in.Resources))
	return out, err
}

func (l *logged) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	start := time.Now()
	out, err := l.api.DescribeInstances(ctx, in, opts...)
	n := 0
	if out != nil {
		for _, r := range out.Reservations {
			n += len(r.Instances)
		}
	}
	l.done(ctx, "DescribeInstances", start, err, "instances", n)
	return out, err
}

func (l *logged) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	start := time.Now()
	out, err := l.api.TerminateInstances(ctx, in, opts...)
	l.done(ctx, "TerminateInstances", start, err, "instances", len(in.InstanceIds))
	return out, err
}

func (l *logged) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	start := time.Now()
	out, err := l.api.DescribeSubnets(ctx, in, opts...)
	l.done(ctx, "DescribeSubnets", start, err, "subnets", len(in.SubnetIds))
	return out, err
}

func (l *logged) DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, opts ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	start := time.Now()
	out, err := l.api.DescribeLaunchTemplates(ctx, in, opts...)
	l.done(ctx, "DescribeLaunchTemplates", start, err)
	return out, err
}

func (l *logged) DescribeSpotInstanceRequests(ctx context.Context, in *ec2.DescribeSpotInstanceRequestsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error) {
	start := time.Now()
	out, err := l.api.DescribeSpotInstanceRequests(ctx, in, opts...)
	n := 0
	if out != nil {
		n = len(out.SpotInstanceRequests)
	}
	l.done(ctx, "DescribeSpotInstanceRequests", start, err, "requests", n)
	return out, err
}

func (l *logged) DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, opts ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	start := time.Now()
	out, err := l.api.DescribeRegions(ctx, in, opts...)
	n := 0
	if out != nil {
		n = len(out.Regions)
	}
	l.done(ctx, "DescribeRegions", start, err, "regions", n)
	return out, err
}

// Optional calls are those we can do without (spot interruption notices): a failing one must not
// hold a run up for the SDK's full retry schedule (12 attempts with backoff up to 20 s).
const (
	OptionalAttempts = 2
	OptionalTimeout  = 5 * time.Second
)

// Optional returns the SDK call option giving one call the small retry budget of optional calls.
// Callers also bound the call with context.WithTimeout(ctx, OptionalTimeout).
func Optional() func(*ec2.Options) {
	return func(o *ec2.Options) { o.RetryMaxAttempts = OptionalAttempts }
}

// AsOptional wraps a client so that the optional calls made through it (DescribeSpotInstanceRequests,
// DescribeRegions; add any new optional call here) have the optional calls' retry budget. Other
// calls pass through unchanged.
func AsOptional(api EC2API) EC2API { return optionalAPI{api} }

type optionalAPI struct{ EC2API }

func (o optionalAPI) DescribeSpotInstanceRequests(ctx context.Context, in *ec2.DescribeSpotInstanceRequestsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error) {
	return o.EC2API.DescribeSpotInstanceRequests(ctx, in, append(opts, Optional())...)
}

func (o optionalAPI) DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, opts ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	return o.EC2API.DescribeRegions(ctx, in, append(opts, Optional())...)
}
