package nodename

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	imdssim "github.com/slurm-ec2/slurm-ec2/internal/ec2sim/imds"
)

// simSource is one instance for the ec2sim IMDS handler. The Name tag appears once the fake
// clock reaches tagAt (zero: never), so tests can make the tag arrive while the resolver waits.
type simSource struct {
	md    imdssim.Metadata
	clk   *fakeClock
	tagAt time.Time
}

func (s *simSource) current() imdssim.Metadata {
	md := s.md
	md.TagsEnabled = true
	md.Tags = map[string]string{"slurm-ec2:cluster": "hpc1"}
	if !s.tagAt.IsZero() && !s.clk.now().Before(s.tagAt) {
		md.Tags["Name"] = "aws-spot-7"
	}
	return md
}

func (s *simSource) ByInstanceID(id string) (imdssim.Metadata, bool) {
	return s.current(), id == s.md.InstanceID
}

// ByPrivateIP answers for any address: the test client connects from loopback.
func (s *simSource) ByPrivateIP(ip string) (imdssim.Metadata, bool) {
	return s.current(), s.md.InstanceID != ""
}

func newIMDS(t *testing.T, src *simSource) *imds.Client {
	t.Helper()
	srv := httptest.NewServer(imdssim.NewHandler(src, src.clk.now))
	t.Cleanup(srv.Close)
	return imds.New(imds.Options{Endpoint: srv.URL, Retryer: aws.NopRetryer{}}) // the resolver does the retrying
}

type fakeTags struct {
	calls int
	name  string // "" means no tag
	err   error
	in    *ec2.DescribeTagsInput
}

func (f *fakeTags) DescribeTags(ctx context.Context, in *ec2.DescribeTagsInput, _ ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error) {
	f.calls++
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	out := &ec2.DescribeTagsOutput{}
	if f.name != "" {
		out.Tags = []ec2types.TagDescription{{Key: aws.String("Name"), Value: aws.String(f.name), ResourceId: aws.String("i-0abc"), ResourceType: ec2types.ResourceTypeInstance}}
	}
	return out, nil
}

// fakeClock advances only when the resolver sleeps, so tests never wait in real time.
type fakeClock struct {
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return nil
}

func baseMeta() imdssim.Metadata {
	return imdssim.Metadata{InstanceID: "i-0abc", Region: "us-east-1", AvailabilityZone: "us-east-1a", LocalIPv4: "10.0.1.7"}
}

func TestResolve(t *testing.T) {
	permErr := &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not authorized"}
	tests := map[string]struct {
		meta       imdssim.Metadata
		tagAt      time.Duration // the Name tag appears this long after the start (<0: at once, 0: never)
		tags       *fakeTags
		slurm      []SlurmNode
		slurmErr   error
		hostname   string
		wait       time.Duration
		want       Result
		wantErr    string
		wantTagAPI int // DescribeTags calls
	}{
		"imds tag at once": {
			meta: baseMeta(), tagAt: -1, tags: &fakeTags{name: "other"}, wait: time.Minute,
			want: Result{"aws-spot-7", SourceIMDSTag},
		},
		"imds tag appears after 1.5s of polling": {
			meta: baseMeta(), tagAt: 1500 * time.Millisecond, tags: &fakeTags{}, wait: time.Minute,
			want: Result{"aws-spot-7", SourceIMDSTag}, wantTagAPI: 2,
		},
		"describe tags when metadata tags are off": {
			meta: baseMeta(), tags: &fakeTags{name: "aws-od-2"}, wait: time.Minute,
			want: Result{"aws-od-2", SourceDescribeTags}, wantTagAPI: 1,
		},
		"nodeaddr before any tag": {
			meta: baseMeta(), tags: &fakeTags{},
			slurm: []SlurmNode{{Name: "aws-spot-6", Addr: "aws-spot-6"}, {Name: "aws-spot-7", Addr: "10.0.1.7"}, {Name: "aws-spot-8", Addr: "10.0.1.8"}},
			wait:  time.Minute, want: Result{"aws-spot-7", SourceNodeAddr}, wantTagAPI: 1,
		},
		"two nodes claim the address: not trusted": {
			meta: baseMeta(), tags: &fakeTags{},
			slurm: []SlurmNode{{Name: "aws-spot-6", Addr: "10.0.1.7"}, {Name: "aws-spot-7", Addr: "10.0.1.7"}},
			wait:  2 * time.Second, wantErr: "no node name found", wantTagAPI: 3,
		},
		// Issue 15: aws-spot-3 was suspended; its stale NodeAddr is the address EC2 gave this new
		// instance, which resume launched for aws-spot-7 (still being named). The powered-down
		// node must not be taken.
		"powered-down node's stale address is ignored": {
			meta: baseMeta(), tags: &fakeTags{},
			slurm: []SlurmNode{{Name: "aws-spot-3", Addr: "10.0.1.7", PoweredDown: true}, {Name: "aws-spot-7", Addr: "10.0.1.7"}},
			wait:  time.Minute, want: Result{"aws-spot-7", SourceNodeAddr}, wantTagAPI: 1,
		},
		"only a powered-down node has the address: no name": {
			meta: baseMeta(), tags: &fakeTags{},
			slurm: []SlurmNode{{Name: "aws-spot-3", Addr: "10.0.1.7", PoweredDown: true}},
			wait:  2 * time.Second, wantErr: "no node name found", wantTagAPI: 3,
		},
		"permission error stops describe tags, nodeaddr still works": {
			meta: baseMeta(), tags: &fakeTags{err: permErr},
			slurm: []SlurmNode{{Name: "aws-spot-7", Addr: "10.0.1.7"}},
			wait:  time.Minute, want: Result{"aws-spot-7", SourceNodeAddr}, wantTagAPI: 1,
		},
		"nothing in time, hostname fallback": {
			meta: baseMeta(), tags: &fakeTags{}, hostname: "ip-10-0-1-7", wait: 10 * time.Second,
			want: Result{"ip-10-0-1-7", SourceHostname}, wantTagAPI: 5,
		},
		"nothing in time, no fallback": {
			meta: baseMeta(), tags: &fakeTags{err: permErr}, slurmErr: errors.New("scontrol: connection refused"),
			wait: 3 * time.Second, wantErr: "describe-tags: ec2:DescribeTags", wantTagAPI: 1,
		},
		"no instance metadata at all": {
			meta: imdssim.Metadata{}, wait: time.Second, wantErr: "imds: instance metadata instance-id",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
			src := &simSource{md: tc.meta, clk: clk}
			switch {
			case tc.tagAt < 0:
				src.tagAt = clk.t
			case tc.tagAt > 0:
				src.tagAt = clk.t.Add(tc.tagAt)
			}
			r := &Resolver{
				IMDS: newIMDS(t, src), Wait: tc.wait, Now: clk.now, Sleep: clk.sleep,
			}
			var gotRegion string
			if tc.tags != nil {
				r.EC2 = func(_ context.Context, region string) (TagsAPI, error) { gotRegion = region; return tc.tags, nil }
			}
			if tc.slurm != nil || tc.slurmErr != nil {
				r.SlurmNodes = func(context.Context) ([]SlurmNode, error) { return tc.slurm, tc.slurmErr }
			}
			if tc.hostname != "" {
				r.Hostname = func() (string, error) { return tc.hostname, nil }
			}
			got, err := r.Resolve(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrNotFound) {
					t.Fatalf("Resolve() = %v, %v; want ErrNotFound containing %q", got, err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Resolve() error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
			}
			if tc.tags != nil && tc.tags.calls != tc.wantTagAPI {
				t.Errorf("DescribeTags calls = %d, want %d", tc.tags.calls, tc.wantTagAPI)
			}
			if tc.tags != nil && tc.tags.calls > 0 {
				if gotRegion != "us-east-1" {
					t.Errorf("EC2 client region = %q, want us-east-1", gotRegion)
				}
				fs := tc.tags.in.Filters
				if len(fs) != 2 || aws.ToString(fs[0].Name) != "resource-id" || fs[0].Values[0] != "i-0abc" || aws.ToString(fs[1].Name) != "key" || fs[1].Values[0] != "Name" {
					t.Errorf("DescribeTags filters = %+v", fs)
				}
			}
			// Backoff grows and is capped, and the wait is bounded.
			var total time.Duration
			for i, d := range clk.sleeps {
				total += d
				if i > 0 && d < clk.sleeps[i-1] {
					t.Errorf("backoff shrank: %v", clk.sleeps)
				}
				if d > 5*time.Second {
					t.Errorf("backoff %v above the cap", d)
				}
			}
			if total > tc.wait {
				t.Errorf("slept %v in total, more than --wait %v", total, tc.wait)
			}
		})
	}
}

func TestResolveHonoursCancel(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resolver{IMDS: newIMDS(t, &simSource{md: baseMeta(), clk: clk}), Wait: time.Hour, Now: clk.now, Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}}
	_, err := r.Resolve(ctx)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Resolve() = %v, want not found with context canceled", err)
	}
}
