package fleet

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TerminateBudget is EC2's resource bucket for instances terminated, per region ("Request
// throttling for the Amazon EC2 API": 1,000 instances, refilled at 20 a second).
var TerminateBudget = struct {
	PerSecond rate.Limit
	Burst     int
}{PerSecond: 20, Burst: MaxIDsPerCall}

// Terminate terminates the instances with these ids in one region, MaxIDsPerCall at a time.
// EC2 refuses a whole call when one id is unknown (InvalidInstanceID.NotFound); such a batch is
// split in halves until the unknown ids are isolated and skipped, so one stale id costs a few
// extra calls, not one per instance. It returns the ids EC2 accepted, and the ids EC2 does not know.
func Terminate(ctx context.Context, api EC2API, region string, ids []string) (terminated, unknown []string, err error) {
	// Batches after the first wait for EC2's terminate budget to refill, rather than being
	// throttled and backed off by the SDK past the moment it has.
	budget := rate.NewLimiter(TerminateBudget.PerSecond, TerminateBudget.Burst)
	for start := 0; start < len(ids); start += MaxIDsPerCall {
		batch := ids[start:min(start+MaxIDsPerCall, len(ids))]
		if err := budget.WaitN(ctx, len(batch)); err != nil {
			return terminated, unknown, fmt.Errorf("terminating instances in %s: %w", region, err)
		}
		t, u, err := terminateBatch(ctx, api, batch)
		terminated = append(terminated, t...)
		unknown = append(unknown, u...)
		if err != nil {
			return terminated, unknown, fmt.Errorf("terminating instances in %s: %w", region, err)
		}
	}
	return terminated, unknown, nil
}

func terminateBatch(ctx context.Context, api EC2API, ids []string) (terminated, unknown []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	_, err = api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err == nil {
		return ids, nil, nil
	}
	code := ErrorCode(err)
	if code != "InvalidInstanceID.NotFound" && code != "InvalidInstanceID.Malformed" {
		return nil, nil, err
	}
	if len(ids) == 1 {
		return nil, ids, nil
	}
	half := len(ids) / 2
	t1, u1, err := terminateBatch(ctx, api, ids[:half])
	if err != nil {
		return t1, u1, err
	}
	t2, u2, err := terminateBatch(ctx, api, ids[half:])
	return append(t1, t2...), append(u1, u2...), err
}
