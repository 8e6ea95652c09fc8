package fleet

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// SpotMarked returns the ids of the instances in a region whose spot request EC2 has marked for
// termination: the two-minute interruption notice as the head node can see it (the instance
// itself sees it in IMDS spot/instance-action). One paginated call per region, whatever the
// number of instances.
func SpotMarked(ctx context.Context, api EC2API, region string) (map[string]bool, error) {
	in := &ec2.DescribeSpotInstanceRequestsInput{
		MaxResults: aws.Int32(MaxIDsPerCall),
		Filters: []types.Filter{
			{Name: aws.String("status-code"), Values: []string{"marked-for-termination"}},
			{Name: aws.String("state"), Values: []string{"active"}},
		},
	}
	out := map[string]bool{}
	p := ec2.NewDescribeSpotInstanceRequestsPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing spot interruption notices in %s: %w", region, err)
		}
		for _, r := range page.SpotInstanceRequests {
			if id := aws.ToString(r.InstanceId); id != "" {
				out[id] = true
			}
		}
	}
	return out, nil
}
