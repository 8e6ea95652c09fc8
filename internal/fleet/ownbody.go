package fleet

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// OwnBody wraps the SDK's HTTP client so that net/http sends a copy of each request body that
// the SDK cannot close under it.
//
// Once http.Client.Do returns, smithy-go closes the request body it handed net/http (smithy-go
// transport/http/client.go; aws/smithy-go#226), and a closed body's WriteTo then returns io.EOF.
// net/http's write loop, after sending Content-Length bytes, reads the body once more to check
// that nothing is left over. When EC2 answers within that window (an endpoint on the same host:
// ec2sim, a VPC endpoint under little load) the check fails with io.EOF and the transport closes
// the connection while the SDK is still reading the answer: "deserialization failed, failed to
// decode response body, ... use of closed network connection" on a 200 answer
// (aws/aws-sdk-go-v2#2737). The SDK's retryer retries it, so it costs one more request, which for
// CreateFleet and TerminateInstances is one more call against EC2's request budget and an
// answer we did not need to wait for. Our bodies are form-encoded queries of at most a few tens
// of KiB (1,000 instance ids), so the copy is cheap.
func OwnBody(next aws.HTTPClient) aws.HTTPClient { return ownBody{next} }

type ownBody struct{ next aws.HTTPClient }

func (c ownBody) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	b, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	own := r.Clone(r.Context())
	own.Body = io.NopCloser(bytes.NewReader(b))
	own.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return c.next.Do(own)
}
