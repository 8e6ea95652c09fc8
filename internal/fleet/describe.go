package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// AWS limits we batch to.
const (
	// MaxIDsPerCall is the most instance ids one TerminateInstances or DescribeInstances
	// (InstanceIds) call takes, and the largest DescribeInstances page (MaxResults 5..1000).
	MaxIDsPerCall = 1000
	// MaxFilterValues is the most values we put in one DescribeInstances filter.
	MaxFilterValues = 200
	// MaxTagResources is the most resources one CreateTags call takes.
	MaxTagResources = 1000
)

// Filter is one DescribeInstances filter.
type Filter struct {
	Name   string
	Values []string
}

// Describe returns every instance matching all filters, reading every page (MaxResults 1000).
// A filter with more than MaxFilterValues values is split into several queries whose results
// are merged (by instance id).
func Describe(ctx context.Context, api EC2API, region string, filters ...Filter) ([]Instance, error) {
	insts, _, err := DescribeAt(ctx, api, region, filters...)
	return insts, err
}

// DescribeAt is Describe, also returning EC2's clock as its answer's Date header gave it (zero
// if absent): launch times are EC2's, so ages must be measured against EC2's clock, not ours.
func DescribeAt(ctx context.Context, api EC2API, region string, filters ...Filter) ([]Instance, time.Time, error) {
	// Over the limit, split the filter with the most values (we never build two large ones).
	split, total := 0, 0
	for i, f := range filters {
		total += len(f.Values)
		if len(f.Values) > len(filters[split].Values) {
			split = i
		}
	}
	if total <= MaxFilterValues {
		return describePages(ctx, api, region, filters)
	}
	var at time.Time
	seen := map[string]bool{}
	var all []Instance
	vals := filters[split].Values
	// EC2 counts the values of every filter of a call against its limit (FilterLimitExceeded:
	// "The maximum number of filter values specified on a single call is 200"), so the split
	// filter gets what the others leave.
	room := MaxFilterValues
	for i, f := range filters {
		if i != split {
			room -= len(f.Values)
		}
	}
	if room < 1 {
		return nil, time.Time{}, fmt.Errorf("describing instances: the other filters use all %d values of a call", MaxFilterValues)
	}
	for start := 0; start < len(vals); start += room {
		end := min(start+room, len(vals))
		fs := append([]Filter(nil), filters...)
		fs[split] = Filter{Name: filters[split].Name, Values: vals[start:end]}
		got, t, err := describePages(ctx, api, region, fs)
		if err != nil {
			return nil, time.Time{}, err
		}
		if at.IsZero() {
			at = t
		}
		for _, in := range got {
			if !seen[in.ID] {
				seen[in.ID] = true
				all = append(all, in)
			}
		}
	}
	return all, at, nil
}

func describePages(ctx context.Context, api EC2API, region string, filters []Filter) ([]Instance, time.Time, error) {
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(MaxIDsPerCall)}
	for _, f := range filters {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String(f.Name), Values: f.Values})
	}
	var out []Instance
	var at time.Time
	p := ec2.NewDescribeInstancesPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("describing instances in %s: %w", region, err)
		}
		if at.IsZero() {
			at = serverTime(page.ResultMetadata)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out = append(out, fromSDK(region, i))
			}
		}
	}
	return out, at, nil
}

// serverTime reads the Date header of an SDK answer.
func serverTime(md middleware.Metadata) time.Time {
	resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	if !ok || resp == nil {
		return time.Time{}
	}
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}

// DescribeIDs returns the instances with these ids, in batches of MaxIDsPerCall. Ids that EC2
// does not know yet (eventual consistency right after a launch: InvalidInstanceID.NotFound) are
// asked again with backoff for up to wait.
func DescribeIDs(ctx context.Context, api EC2API, region string, ids []string, wait time.Duration) ([]Instance, error) {
	var out []Instance
	for start := 0; start < len(ids); start += MaxIDsPerCall {
		batch := ids[start:min(start+MaxIDsPerCall, len(ids))]
		deadline := time.Now().Add(wait)
		delay := 200 * time.Millisecond
		for {
			res, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: batch})
			if err == nil {
				for _, r := range res.Reservations {
					for _, i := range r.Instances {
						out = append(out, fromSDK(region, i))
					}
				}
				break
			}
			if ClassOf(ErrorCode(err)) != ClassNotFound || time.Now().After(deadline) {
				return out, fmt.Errorf("describing %d new instances in %s: %w", len(batch), region, err)
			}
			select {
			case <-ctx.Done():
				return out, errors.Join(err, ctx.Err())
			case <-time.After(delay):
			}
			delay = min(2*delay, 2*time.Second)
		}
	}
	return out, nil
}

// Regions lists the regions EC2 says the account can use (DescribeRegions without AllRegions:
// the enabled ones, "opt-in-not-required" or "opted-in"; regions not opted in hold no instances).
// Source: Amazon EC2 API Reference, DescribeRegions.
func Regions(ctx context.Context, api EC2API) ([]string, error) {
	out, err := api.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, fmt.Errorf("listing EC2 regions: %w", err)
	}
	var names []string
	for _, r := range out.Regions {
		if n := aws.ToString(r.RegionName); n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}
