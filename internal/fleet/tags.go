package fleet

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// DefaultTagRate paces our CreateTags calls below EC2's CreateTags bucket (capacity 100, refill
// 10 per second), leaving room for other callers in the account; the SDK's adaptive retry absorbs
// the throttling that remains.
const (
	DefaultTagRate  = 9.0
	DefaultTagBurst = 50
)

// NewTagLimiter returns the pacing for CreateTags: perSecond calls a second (0 means the default).
func NewTagLimiter(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return rate.NewLimiter(DefaultTagRate, DefaultTagBurst)
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(1, min(DefaultTagBurst, int(perSecond))))
}

// TagSet is the tags of one set of instances.
type TagSet struct {
	InstanceIDs []string
	Tags        []types.Tag
}

// ApplyTags runs CreateTags for each set, paced by lim, a few at a time. Sets that share
// their tags should be merged by the caller (one call takes up to MaxTagResources ids). It
// returns the ids whose tagging failed, with the first error.
func ApplyTags(ctx context.Context, api EC2API, sets []TagSet, lim *rate.Limiter) (failed []string, err error) {
	var jobs []TagSet
	for _, s := range sets {
		for start := 0; start < len(s.InstanceIDs); start += MaxTagResources {
			jobs = append(jobs, TagSet{InstanceIDs: s.InstanceIDs[start:min(start+MaxTagResources, len(s.InstanceIDs))], Tags: s.Tags})
		}
	}
	errs := make([]error, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, j := range jobs {
		if err := lim.Wait(ctx); err != nil {
			errs[i] = err
			continue
		}
		g.Go(func() error {
			_, err := api.CreateTags(gctx, &ec2.CreateTagsInput{Resources: j.InstanceIDs, Tags: j.Tags})
			if err != nil {
				errs[i] = fmt.Errorf("tagging %d instances: %w", len(j.InstanceIDs), err)
			}
			return nil
		})
	}
	_ = g.Wait()
	for i, e := range errs {
		if e != nil {
			failed = append(failed, jobs[i].InstanceIDs...)
			if err == nil {
				err = e
			}
		}
	}
	return failed, err
}

// T builds an SDK tag.
func T(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
