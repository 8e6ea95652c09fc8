package ec2sim

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/imds"
)

func TestSigV4Verification(t *testing.T) {
	e := newEnv(t, Options{Credentials: map[string]string{"AKIDGOOD": "right-secret"}})
	e.clock = nil
	ctx := context.Background()
	mk := func(akid, secret string) *ec2.Client {
		return e.clientAs("us-east-1", akid, secret, aws.NopRetryer{})
	}
	if _, err := mk("AKIDGOOD", "right-secret").DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:a b"), Values: []string{"x y*"}}}}); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	if _, err := mk("AKIDGOOD", "wrong").DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); apiCode(t, err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := mk("AKIDOTHER", "x").DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); apiCode(t, err) != "AuthFailure" {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestIMDSSource(t *testing.T) {
	e := newEnv(t, Options{})
	out, err := e.client("us-east-1").CreateFleet(context.Background(), fleetInput(1, "spot", [2]string{"c5.xlarge", "subnet-11111111"}))
	if err != nil {
		t.Fatal(err)
	}
	id := fleetIDs(out)[0]
	h := imds.NewHandler(e.sim.IMDSSource(), e.clock.Now)
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://imds"+path, nil)
		if token == "" {
			req.Method = http.MethodPut
			req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
		} else {
			req.Header.Set("X-aws-ec2-metadata-token", token)
		}
		req.Header.Set(imds.HeaderInstanceID, id)
		rec := &recorder{h: http.Header{}}
		h.ServeHTTP(rec, req)
		return rec.code, string(rec.body)
	}
	_, tok := get("/latest/api/token", "")
	if code, body := get("/latest/meta-data/tags/instance/slurm-ec2:cluster", tok); code != 200 || body != "c1" {
		t.Fatalf("tag via IMDS: %d %q", code, body)
	}
	if code, _ := get("/latest/meta-data/spot/instance-action", tok); code != 404 {
		t.Fatalf("instance-action before notice: %d", code)
	}
	if err := e.sim.SpotInterrupt([]string{id}, -1); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/latest/meta-data/spot/instance-action", tok); code != 200 || body == "" {
		t.Fatalf("instance-action after notice: %d %q", code, body)
	}
}

type recorder struct {
	h    http.Header
	code int
	body []byte
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	r.body = append(r.body, b...)
	return len(b), nil
}
func (r *recorder) WriteHeader(c int) { r.code = c }

// BenchmarkDescribeInstancesPage measures one DescribeInstances page of 1,000 instances,
// filtered by tag, out of 10,000, over HTTP with the real SDK.
func BenchmarkDescribeInstancesPage(b *testing.B) {
	c := newClock()
	s := New(Options{Now: c.Now, Seed: 1})
	srvEnv := &env{sim: s, clock: c}
	srv := newServer(b, s)
	srvEnv.url = srv
	cl := srvEnv.client("us-east-1")
	ctx := context.Background()
	for range 10 {
		in := fleetInput(1000, "on-demand", [2]string{"c5.xlarge", "subnet-11111111"})
		if _, err := cl.CreateFleet(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000), Filters: []types.Filter{
		{Name: aws.String("tag:slurm-ec2:cluster"), Values: []string{"c1"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}}
	b.ResetTimer()
	for b.Loop() {
		out, err := cl.DescribeInstances(ctx, in)
		if err != nil || countInstances(out) != 1000 {
			b.Fatalf("%v", err)
		}
	}
}

func newServer(b *testing.B, h http.Handler) string {
	ln := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	l, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = ln.Serve(l) }()
	b.Cleanup(func() { _ = ln.Close() })
	return "http://" + l.Addr().String()
}

var _ = io.EOF
