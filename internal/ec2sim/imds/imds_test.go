package imds_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/google/go-cmp/cmp"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/imds"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// world is a fake Source whose instances can change while the handler runs.
type world struct {
	mu   sync.Mutex
	byID map[string]imds.Metadata
}

func (w *world) ByInstanceID(id string) (imds.Metadata, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	md, ok := w.byID[id]
	return md, ok
}

func (w *world) ByPrivateIP(ip string) (imds.Metadata, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, md := range w.byID {
		if md.LocalIPv4 == ip {
			return md, true
		}
	}
	return imds.Metadata{}, false
}

func (w *world) update(id string, f func(*imds.Metadata)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	md := w.byID[id]
	f(&md)
	w.byID[id] = md
}

func newWorld() *world {
	return &world{byID: map[string]imds.Metadata{
		"i-0aaaaaaaaaaaaaaa1": {
			InstanceID: "i-0aaaaaaaaaaaaaaa1", InstanceType: "c5.xlarge", ImageID: "ami-0123456789abcdef0",
			LocalIPv4: "10.0.1.17", LocalHostname: "ip-10-0-1-17.ec2.internal",
			AvailabilityZone: "us-east-1a", Region: "us-east-1", Lifecycle: "spot",
			Tags:        map[string]string{"Name": "aws-spot-7", "slurm-ec2:cluster": "demo", "bad/key": "x"},
			TagsEnabled: true, LaunchTime: t0.Add(-time.Hour),
		},
		"i-0bbbbbbbbbbbbbbb2": {
			InstanceID: "i-0bbbbbbbbbbbbbbb2", InstanceType: "t3.micro", ImageID: "ami-0123456789abcdef0",
			LocalIPv4: "127.0.0.1", LocalHostname: "ip-127-0-0-1.ec2.internal",
			AvailabilityZone: "eu-west-1b", Region: "eu-west-1",
			Tags: map[string]string{"Name": "hidden"}, // TagsEnabled false
		},
	}}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// asInstance is a RoundTripper that tags every request with the emulator's instance header.
type asInstance struct {
	id   string
	next http.RoundTripper
}

func (a asInstance) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(imds.HeaderInstanceID, a.id)
	return a.next.RoundTrip(r)
}

func setup(t *testing.T) (*world, *clock, *httptest.Server) {
	t.Helper()
	w, clk := newWorld(), &clock{t: t0}
	srv := httptest.NewServer(imds.NewHandler(w, clk.Now))
	t.Cleanup(srv.Close)
	return w, clk, srv
}

func sdkClient(srv *httptest.Server, instanceID string) *sdkimds.Client {
	var rt http.RoundTripper = http.DefaultTransport
	if instanceID != "" {
		rt = asInstance{id: instanceID, next: rt}
	}
	return sdkimds.New(sdkimds.Options{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: rt}})
}

func getMetadata(ctx context.Context, t *testing.T, c *sdkimds.Client, path string) (string, error) {
	t.Helper()
	out, err := c.GetMetadata(ctx, &sdkimds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return string(b), err
}

// TestScheduledEvents reads events/maintenance/scheduled through the SDK: "[]" without events,
// then the documented fields and time layout.
func TestScheduledEvents(t *testing.T) {
	w, _, srv := setup(t)
	ctx := context.Background()
	c := sdkClient(srv, "i-0aaaaaaaaaaaaaaa1")
	got, err := getMetadata(ctx, t, c, "events/maintenance/scheduled")
	if err != nil || got != "[]" {
		t.Fatalf("no events: got %q, %v; want []", got, err)
	}
	w.update("i-0aaaaaaaaaaaaaaa1", func(md *imds.Metadata) {
		md.Events = []imds.ScheduledEvent{
			{Code: "instance-retirement", Description: "degraded hardware", EventID: "instance-event-0d59937288b749b32", State: "active",
				NotBefore: time.Date(2026, 3, 7, 9, 0, 43, 0, time.UTC)},
			{Code: "system-reboot", Description: "scheduled reboot", EventID: "instance-event-01234567890abcdef", State: "completed",
				NotBefore: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)},
		}
	})
	got, err = getMetadata(ctx, t, c, "events/maintenance/scheduled")
	if err != nil {
		t.Fatal(err)
	}
	var evs []map[string]string
	if err := json.Unmarshal([]byte(got), &evs); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, got)
	}
	want := []map[string]string{
		{"Code": "instance-retirement", "Description": "degraded hardware", "EventId": "instance-event-0d59937288b749b32",
			"NotBefore": "07 Mar 2026 09:00:43 GMT", "State": "active"},
		{"Code": "system-reboot", "Description": "scheduled reboot", "EventId": "instance-event-01234567890abcdef",
			"NotBefore": "01 Mar 2026 09:00:00 GMT", "NotAfter": "01 Mar 2026 11:00:00 GMT", "State": "completed"},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestSDKClient(t *testing.T) {
	w, _, srv := setup(t)
	ctx := context.Background()
	c := sdkClient(srv, "i-0aaaaaaaaaaaaaaa1")

	region, err := c.GetRegion(ctx, &sdkimds.GetRegionInput{})
	if err != nil || region.Region != "us-east-1" {
		t.Fatalf("GetRegion = %+v, %v; want us-east-1", region, err)
	}
	tests := map[string]string{
		"instance-id":                 "i-0aaaaaaaaaaaaaaa1",
		"instance-type":               "c5.xlarge",
		"ami-id":                      "ami-0123456789abcdef0",
		"local-ipv4":                  "10.0.1.17",
		"local-hostname":              "ip-10-0-1-17.ec2.internal",
		"hostname":                    "ip-10-0-1-17.ec2.internal",
		"placement/availability-zone": "us-east-1a",
		"placement/region":            "us-east-1",
		"instance-life-cycle":         "spot",
		"tags/instance/Name":          "aws-spot-7",
		"tags/instance":               "Name\nslurm-ec2:cluster",
		"placement/":                  "availability-zone\nregion",
		"":                            "ami-id\nevents/\nhostname\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\ntags/",
	}
	for path, want := range tests {
		t.Run(path, func(t *testing.T) {
			got, err := getMetadata(ctx, t, c, path)
			if err != nil {
				t.Fatalf("GetMetadata(%q): %v", path, err)
			}
			if got != want {
				t.Fatalf("GetMetadata(%q) = %q, want %q", path, got, want)
			}
		})
	}

	doc, err := c.GetInstanceIdentityDocument(ctx, &sdkimds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatalf("GetInstanceIdentityDocument: %v", err)
	}
	got := doc.InstanceIdentityDocument
	want := sdkimds.InstanceIdentityDocument{
		AvailabilityZone: "us-east-1a", PrivateIP: "10.0.1.17", Version: "2017-09-30", Region: "us-east-1",
		InstanceID: "i-0aaaaaaaaaaaaaaa1", InstanceType: "c5.xlarge", AccountID: "123456789012",
		PendingTime: t0.Add(-time.Hour), ImageID: "ami-0123456789abcdef0", Architecture: "x86_64",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity document (-want +got):\n%s", diff)
	}

	// No spot notice yet: 404, and no spot/ in the listing.
	if _, err := getMetadata(ctx, t, c, "spot/instance-action"); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("spot/instance-action before a notice: err = %v, want 404", err)
	}
	notice := time.Date(2026, 3, 4, 5, 8, 7, 0, time.UTC)
	w.update("i-0aaaaaaaaaaaaaaa1", func(md *imds.Metadata) {
		md.SpotAction = &imds.SpotAction{Action: "terminate", Time: notice}
	})
	body, err := getMetadata(ctx, t, c, "spot/instance-action")
	if err != nil {
		t.Fatalf("spot/instance-action after a notice: %v", err)
	}
	if want := `{"action":"terminate","time":"2026-03-04T05:08:07Z"}`; body != want {
		t.Fatalf("spot/instance-action = %s, want %s", body, want)
	}
	var parsed struct{ Action, Time string }
	if err := json.Unmarshal([]byte(body), &parsed); err != nil || parsed.Action != "terminate" {
		t.Fatalf("spot notice is not the documented JSON: %v %+v", err, parsed)
	}
	if list, _ := getMetadata(ctx, t, c, ""); !strings.Contains(list, "\nspot/\n") {
		t.Errorf("meta-data listing after a notice lacks spot/: %q", list)
	}
}

func TestTagsNotEnabledAndByIP(t *testing.T) {
	_, _, srv := setup(t)
	ctx := context.Background()
	// No header: the handler finds the instance by source IP 127.0.0.1.
	c := sdkClient(srv, "")
	id, err := getMetadata(ctx, t, c, "instance-id")
	if err != nil || id != "i-0bbbbbbbbbbbbbbb2" {
		t.Fatalf("instance-id by source IP = %q, %v; want i-0bbbbbbbbbbbbbbb2", id, err)
	}
	for _, p := range []string{"tags/instance", "tags/instance/Name", "tags/"} {
		if _, err := getMetadata(ctx, t, c, p); !isStatus(err, http.StatusNotFound) {
			t.Errorf("%s with tags not enabled: err = %v, want 404", p, err)
		}
	}
	if life, _ := getMetadata(ctx, t, c, "instance-life-cycle"); life != "on-demand" {
		t.Errorf("instance-life-cycle default = %q, want on-demand", life)
	}
}

// viaProxy adds X-Forwarded-For to every request, as a proxy would.
type viaProxy struct{ next http.RoundTripper }

func (v viaProxy) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	return v.next.RoundTrip(r)
}

// TestSDKFallbackToV1Refused: through a proxy the token PUT is refused (403), so the SDK falls
// back to an IMDSv1 GET without a token, which an IMDSv2-only instance refuses (401).
func TestSDKFallbackToV1Refused(t *testing.T) {
	_, _, srv := setup(t)
	rt := viaProxy{next: asInstance{id: "i-0aaaaaaaaaaaaaaa1", next: http.DefaultTransport}}
	c := sdkimds.New(sdkimds.Options{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: rt}, Retryer: aws.NopRetryer{}})
	_, err := getMetadata(context.Background(), t, c, "instance-id")
	if !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("GetMetadata through a proxy: err = %v, want HTTP 401 (IMDSv1 refused)", err)
	}
	// With fallback disabled the SDK stops at the refused token request instead.
	c = sdkimds.New(sdkimds.Options{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: rt}, EnableFallback: aws.FalseTernary})
	if _, err := getMetadata(context.Background(), t, c, "instance-id"); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("GetMetadata through a proxy without fallback: err = %v, want HTTP 403", err)
	}
}

func isStatus(err error, code int) bool {
	var se interface{ HTTPStatusCode() int }
	if errors.As(err, &se) {
		return se.HTTPStatusCode() == code
	}
	// The SDK wraps a 401 that follows the token flow in an error type without Unwrap
	// (imds.retryableError, v1.20.9), so only its text carries the status.
	return err != nil && strings.Contains(err.Error(), fmt.Sprintf("StatusCode: %d,", code))
}

// TestRawProtocol checks the IMDSv2 rules on the wire.
func TestRawProtocol(t *testing.T) {
	_, clk, srv := setup(t)
	const inst = "i-0aaaaaaaaaaaaaaa1"
	do := func(method, path string, hdr map[string]string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	token := func(ttl string) string {
		t.Helper()
		code, body, h := do(http.MethodPut, "/latest/api/token", map[string]string{imds.HeaderTTL: ttl, imds.HeaderInstanceID: inst})
		if code != http.StatusOK || body == "" || h.Get(imds.HeaderTTL) != ttl {
			t.Fatalf("PUT token ttl=%s: %d %q ttl-header=%q", ttl, code, body, h.Get(imds.HeaderTTL))
		}
		return body
	}

	putTests := map[string]struct {
		hdr  map[string]string
		want int
	}{
		"ttl 1":            {map[string]string{imds.HeaderTTL: "1", imds.HeaderInstanceID: inst}, 200},
		"ttl 21600":        {map[string]string{imds.HeaderTTL: "21600", imds.HeaderInstanceID: inst}, 200},
		"ttl 0":            {map[string]string{imds.HeaderTTL: "0", imds.HeaderInstanceID: inst}, 400},
		"ttl 21601":        {map[string]string{imds.HeaderTTL: "21601", imds.HeaderInstanceID: inst}, 400},
		"ttl not a number": {map[string]string{imds.HeaderTTL: "6h", imds.HeaderInstanceID: inst}, 400},
		"ttl signed":       {map[string]string{imds.HeaderTTL: "+60", imds.HeaderInstanceID: inst}, 400},
		"ttl missing":      {map[string]string{imds.HeaderInstanceID: inst}, 400},
		"via a proxy":      {map[string]string{imds.HeaderTTL: "60", imds.HeaderInstanceID: inst, "X-Forwarded-For": "10.9.9.9"}, 403},
		"unknown instance": {map[string]string{imds.HeaderTTL: "60", imds.HeaderInstanceID: "i-nope"}, 404},
		"second instance":  {map[string]string{imds.HeaderTTL: "60", imds.HeaderInstanceID: "i-0bbbbbbbbbbbbbbb2"}, 200},
	}
	for name, tc := range putTests {
		t.Run("PUT "+name, func(t *testing.T) {
			if code, body, _ := do(http.MethodPut, "/latest/api/token", tc.hdr); code != tc.want {
				t.Fatalf("status %d (%s), want %d", code, body, tc.want)
			}
		})
	}

	tok := token("60")
	other := func() string {
		code, body, _ := do(http.MethodPut, "/latest/api/token", map[string]string{imds.HeaderTTL: "60", imds.HeaderInstanceID: "i-0bbbbbbbbbbbbbbb2"})
		if code != 200 {
			t.Fatalf("PUT token for second instance: %d", code)
		}
		return body
	}()
	getTests := map[string]struct {
		method, path string
		hdr          map[string]string
		want         int
		body         string
	}{
		"IMDSv1 refused":           {"GET", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst}, 401, ""},
		"bogus token":              {"GET", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: "bogus"}, 401, ""},
		"other instance's token":   {"GET", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: other}, 401, ""},
		"valid":                    {"GET", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 200, inst},
		"unknown path":             {"GET", "/latest/meta-data/nope", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 404, ""},
		"missing tag":              {"GET", "/latest/meta-data/tags/instance/Nope", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 404, ""},
		"tag key with slash":       {"GET", "/latest/meta-data/tags/instance/bad/key", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 404, ""},
		"directory without slash":  {"GET", "/latest/meta-data/placement", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 200, "availability-zone\nregion"},
		"latest":                   {"GET", "/latest/", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 200, "dynamic/\nmeta-data/"},
		"dynamic":                  {"GET", "/latest/dynamic/instance-identity/", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 200, "document"},
		"GET on token":             {"GET", "/latest/api/token", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 405, ""},
		"POST metadata":            {"POST", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 405, ""},
		"file with trailing slash": {"GET", "/latest/meta-data/instance-id/", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}, 404, ""},
	}
	for name, tc := range getTests {
		t.Run(name, func(t *testing.T) {
			code, body, _ := do(tc.method, tc.path, tc.hdr)
			if code != tc.want {
				t.Fatalf("status %d (%s), want %d", code, body, tc.want)
			}
			if tc.body != "" && body != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
		})
	}

	// Expiry: the token works until its TTL has passed, then 401.
	clk.Advance(59 * time.Second)
	code, _, h := do("GET", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok})
	if code != 200 || h.Get(imds.HeaderTTL) != "1" {
		t.Fatalf("at 59s of 60: status %d, remaining ttl %q; want 200 and 1", code, h.Get(imds.HeaderTTL))
	}
	clk.Advance(time.Second)
	if code, _, _ := do("GET", "/latest/meta-data/instance-id", map[string]string{imds.HeaderInstanceID: inst, imds.HeaderToken: tok}); code != 401 {
		t.Fatalf("at 60s of 60: status %d, want 401 (expired)", code)
	}
}

func FuzzHandler(f *testing.F) {
	f.Add("PUT", "/latest/api/token", "60", false)
	f.Add("GET", "/latest/meta-data/tags/instance/Name", "21600", true)
	f.Add("GET", "/latest/meta-data/../dynamic/", "1", true)
	f.Add("GET", "//latest//meta-data/", "-1", true)
	f.Fuzz(func(t *testing.T, method, path, ttl string, withToken bool) {
		w, clk := newWorld(), &clock{t: t0}
		h := imds.NewHandler(w, clk.Now)
		put := httptest.NewRequest(http.MethodPut, "/latest/api/token", nil)
		put.Header.Set(imds.HeaderTTL, ttl)
		put.Header.Set(imds.HeaderInstanceID, "i-0aaaaaaaaaaaaaaa1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, put)
		switch rec.Code {
		case 200, 400:
		default:
			t.Fatalf("PUT token ttl %q: status %d", ttl, rec.Code)
		}
		tok := ""
		if rec.Code == 200 {
			tok = rec.Body.String()
		}
		req, err := http.NewRequest(method, "http://169.254.169.254/", nil)
		if err != nil {
			return
		}
		req.URL.Path = path
		req.Header.Set(imds.HeaderInstanceID, "i-0aaaaaaaaaaaaaaa1")
		if withToken {
			req.Header.Set(imds.HeaderToken, tok)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 200 && path != "/latest/api/token" && (!withToken || tok == "") {
			t.Fatalf("%s %q answered 200 without a valid token", method, path)
		}
	})
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGoldenTree renders every path of a fixed instance (with a spot notice and tags) into one
// text file, so a change in any body or listing shows up in review.
func TestGoldenTree(t *testing.T) {
	w, clk := newWorld(), &clock{t: t0}
	w.update("i-0aaaaaaaaaaaaaaa1", func(md *imds.Metadata) {
		md.SpotAction = &imds.SpotAction{Action: "terminate", Time: t0.Add(2 * time.Minute)}
	})
	h := imds.NewHandler(w, clk.Now)
	serve := func(method, path, tok string) (int, string) {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set(imds.HeaderInstanceID, "i-0aaaaaaaaaaaaaaa1")
		if tok != "" {
			req.Header.Set(imds.HeaderToken, tok)
		}
		if method == http.MethodPut {
			req.Header.Set(imds.HeaderTTL, "300")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	_, tok := serve(http.MethodPut, "/latest/api/token", "")
	var b strings.Builder
	var walk func(path string)
	walk = func(path string) {
		code, body := serve(http.MethodGet, path, tok)
		fmt.Fprintf(&b, "== GET %s -> %d\n%s\n", path, code, body)
		if code != 200 || !strings.HasSuffix(path, "/") {
			return
		}
		for _, e := range strings.Split(body, "\n") {
			if e != "" {
				walk(path + e)
			}
		}
	}
	walk("/")
	golden := filepath.Join("testdata", "tree.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("IMDS tree differs from %s (-want +got; go test -update rewrites it):\n%s", golden, diff)
	}
}
