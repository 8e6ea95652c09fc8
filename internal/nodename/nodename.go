// Package nodename finds the Slurm node name of the EC2 instance it runs on.
//
// The sources, in order of preference:
//  1. the instance's Name tag from instance metadata (IMDSv2 tags/instance/Name, needs
//     InstanceMetadataTags enabled in the launch template),
//  2. the Name tag from EC2 DescribeTags (needs ec2:DescribeTags),
//  3. the Slurm node whose NodeAddr is this instance's private IPv4 address: resume sets NodeAddr
//     before the Name tag exists, because tags are paced to EC2's CreateTags rate,
//  4. the host name, once the wait is over (optional).
//
// Sources 1-3 are polled with backoff for a bounded time.
package nodename

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Source says where a node name came from.
type Source string

// The sources, in order of preference.
const (
	SourceIMDSTag      Source = "imds-tag"
	SourceDescribeTags Source = "describe-tags"
	SourceNodeAddr     Source = "slurm-nodeaddr"
	SourceHostname     Source = "hostname"
)

// IMDS is the part of the SDK's instance metadata client the resolver uses; *imds.Client satisfies it.
type IMDS interface {
	GetMetadata(ctx context.Context, params *imds.GetMetadataInput, optFns ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
	GetRegion(ctx context.Context, params *imds.GetRegionInput, optFns ...func(*imds.Options)) (*imds.GetRegionOutput, error)
}

// TagsAPI is the one EC2 call the resolver may make; *ec2.Client satisfies it.
type TagsAPI interface {
	DescribeTags(ctx context.Context, params *ec2.DescribeTagsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error)
}

var (
	_ IMDS    = (*imds.Client)(nil)
	_ TagsAPI = (*ec2.Client)(nil)
)

// SlurmNode is a Slurm node name and its NodeAddr.
type SlurmNode struct {
	Name, Addr string
	// PoweredDown is a node that is powered down or powering down: its NodeAddr is what its last
	// instance had, and EC2 may have given that address to this new instance since.
	PoweredDown bool
}

// Resolver finds this instance's node name. Only IMDS is required; a nil optional source is skipped.
type Resolver struct {
	IMDS IMDS
	// EC2 returns a DescribeTags client for a region; nil skips DescribeTags.
	EC2 func(ctx context.Context, region string) (TagsAPI, error)
	// SlurmNodes lists Slurm's nodes with their NodeAddr; nil skips the NodeAddr match.
	SlurmNodes func(ctx context.Context) ([]SlurmNode, error)
	// Hostname is the last resort once Wait is over; nil means no hostname fallback.
	Hostname func() (string, error)
	// Wait bounds how long the resolver polls for a name (0: one attempt).
	Wait time.Duration
	// Backoff is the first pause between attempts (default 500ms), doubled up to MaxBackoff (default 5s).
	Backoff, MaxBackoff time.Duration
	Logger              *slog.Logger
	// Sleep pauses between attempts; tests replace it. Default: a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for the deadline; default time.Now.
	Now func() time.Time
}

// Result is a node name and where it came from.
type Result struct {
	Name   string
	Source Source
}

// ErrNotFound is returned (wrapped, with the reasons) when no source gave a name in time.
var ErrNotFound = errors.New("no node name found")

// identity is what IMDS says about this instance.
type identity struct {
	instanceID, region, ipv4 string
}

// Resolve polls the sources until one gives a name or Wait is over.
func (r *Resolver) Resolve(ctx context.Context) (Result, error) {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	backoff, maxBackoff := r.Backoff, r.MaxBackoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	deadline := now().Add(r.Wait)

	var (
		id         identity
		tags       TagsAPI
		ec2Off     = r.EC2 == nil // disabled for good after a permission error
		reasons    []string
		lastReason = map[string]string{}
	)
	note := func(src, msg string) {
		if lastReason[src] != msg {
			log.Info("node name source gave nothing", "source", src, "reason", msg)
		}
		lastReason[src] = msg
	}
	for attempt := 1; ; attempt++ {
		if id.instanceID == "" {
			got, err := r.identity(ctx)
			if err != nil {
				note("imds", err.Error())
			} else {
				id = got
				log.Debug("instance identity", "instance-id", id.instanceID, "region", id.region, "local-ipv4", id.ipv4)
			}
		}
		if id.instanceID != "" {
			if name, err := r.imdsTag(ctx); err != nil {
				note(string(SourceIMDSTag), err.Error())
			} else if name != "" {
				return Result{name, SourceIMDSTag}, nil
			}
			if !ec2Off {
				if tags == nil {
					c, err := r.EC2(ctx, id.region)
					if err != nil {
						note(string(SourceDescribeTags), err.Error())
						ec2Off = true
					}
					tags = c
				}
				if tags != nil {
					name, err := describeNameTag(ctx, tags, id.instanceID)
					switch {
					case err != nil && isPermanent(err):
						note(string(SourceDescribeTags), err.Error()+" (not retried)")
						ec2Off = true
					case err != nil:
						note(string(SourceDescribeTags), err.Error())
					case name != "":
						return Result{name, SourceDescribeTags}, nil
					default:
						note(string(SourceDescribeTags), "instance "+id.instanceID+" has no Name tag yet")
					}
				}
			}
		}
		if r.SlurmNodes != nil && id.ipv4 != "" {
			nodes, err := r.SlurmNodes(ctx)
			if err != nil {
				note(string(SourceNodeAddr), err.Error())
			} else if name := matchAddr(nodes, id.ipv4); name != "" {
				return Result{name, SourceNodeAddr}, nil
			} else {
				note(string(SourceNodeAddr), "no Slurm node has NodeAddr="+id.ipv4)
			}
		}
		if ctx.Err() != nil || !now().Add(backoff).Before(deadline) {
			break
		}
		log.Debug("waiting for a node name", "attempt", attempt, "backoff", backoff)
		if err := sleep(ctx, backoff); err != nil {
			break
		}
		backoff = min(2*backoff, maxBackoff)
	}
	for _, src := range []string{"imds", string(SourceIMDSTag), string(SourceDescribeTags), string(SourceNodeAddr)} {
		if m, ok := lastReason[src]; ok {
			reasons = append(reasons, src+": "+m)
		}
	}
	if r.Hostname != nil {
		h, err := r.Hostname()
		if err == nil && h != "" {
			log.Warn("no node name from EC2 or Slurm; using the host name", "hostname", h, "waited", r.Wait.String())
			return Result{h, SourceHostname}, nil
		}
		if err != nil {
			reasons = append(reasons, "hostname: "+err.Error())
		}
	}
	if err := ctx.Err(); err != nil {
		reasons = append(reasons, err.Error())
	}
	return Result{}, fmt.Errorf("%w after %s: %s", ErrNotFound, r.Wait, strings.Join(reasons, "; "))
}

func (r *Resolver) identity(ctx context.Context) (identity, error) {
	var id identity
	var err error
	if id.instanceID, err = r.metadata(ctx, "instance-id"); err != nil {
		return id, err
	}
	if id.instanceID == "" {
		return id, errors.New("instance metadata returned an empty instance-id")
	}
	if id.region, err = r.metadata(ctx, "placement/region"); err != nil || id.region == "" {
		out, err2 := r.IMDS.GetRegion(ctx, &imds.GetRegionInput{})
		if err2 != nil {
			return identity{}, fmt.Errorf("reading the region from instance metadata: %w", err2)
		}
		id.region = out.Region
	}
	// A missing local-ipv4 (IPv6-only subnet) only disables the NodeAddr match.
	id.ipv4, _ = r.metadata(ctx, "local-ipv4")
	return id, nil
}

// imdsTag reads tags/instance/Name; "" without error means the tag (or tag access) is absent.
func (r *Resolver) imdsTag(ctx context.Context) (string, error) {
	name, err := r.metadata(ctx, "tags/instance/Name")
	if err != nil && httpStatus(err) == http.StatusNotFound {
		return "", errors.New("no Name tag in instance metadata (tag not set yet, or InstanceMetadataTags not enabled)")
	}
	return name, err
}

func (r *Resolver) metadata(ctx context.Context, path string) (string, error) {
	out, err := r.IMDS.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 4096))
	if err != nil {
		return "", fmt.Errorf("reading instance metadata %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func describeNameTag(ctx context.Context, api TagsAPI, instanceID string) (string, error) {
	out, err := api.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("resource-id"), Values: []string{instanceID}},
		{Name: aws.String("key"), Values: []string{"Name"}},
	}})
	if err != nil {
		return "", fmt.Errorf("ec2:DescribeTags for %s: %w", instanceID, err)
	}
	for _, t := range out.Tags {
		if aws.ToString(t.Key) == "Name" && aws.ToString(t.ResourceId) == instanceID {
			return strings.TrimSpace(aws.ToString(t.Value)), nil
		}
	}
	return "", nil
}

// matchAddr returns the node whose NodeAddr is ip, if exactly one has it. A NodeAddr equal to the
// node name (Slurm's default before resume sets it) never matches an IP, and neither does a
// powered-down node's: resume sets NodeAddr before this instance boots, so the node this instance
// is for is powering up, never powered down.
func matchAddr(nodes []SlurmNode, ip string) string {
	found := ""
	for _, n := range nodes {
		if n.Addr == ip && !n.PoweredDown {
			if found != "" {
				return "" // ambiguous: two nodes claim this address; wait for the Name tag
			}
			found = n.Name
		}
	}
	return found
}

func httpStatus(err error) int {
	var h interface{ HTTPStatusCode() int }
	if errors.As(err, &h) {
		return h.HTTPStatusCode()
	}
	return 0
}

// isPermanent reports errors that retrying cannot fix: missing permissions or credentials.
func isPermanent(err error) bool {
	var c interface{ ErrorCode() string }
	if errors.As(err, &c) {
		switch c.ErrorCode() {
		case "UnauthorizedOperation", "AuthFailure", "InvalidClientTokenId", "OptInRequired", "Blocked":
			return true
		}
	}
	s := httpStatus(err)
	return s == http.StatusForbidden || s == http.StatusUnauthorized
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
