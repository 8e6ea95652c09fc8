// Package imds emulates the EC2 Instance Metadata Service, IMDSv2 only (as on an instance
// launched with HttpTokens=required), as an http.Handler.
//
// Behaviour follows the EC2 user guide ("Use the Instance Metadata Service to access instance
// metadata", "How Instance Metadata Service Version 2 works"):
//   - A session starts with PUT /latest/api/token carrying X-aws-ec2-metadata-token-ttl-seconds,
//     an integer from 1 to 21600 (six hours); a missing or invalid TTL is answered 400. The
//     response body is the token; the TTL is echoed in the same header.
//   - A PUT carrying X-Forwarded-For is refused with 403: IMDSv2 does not hand tokens to
//     requests that went through a proxy.
//   - Every GET must carry the token in X-aws-ec2-metadata-token; missing (an IMDSv1 request),
//     expired, unknown or another instance's token is answered 401.
//   - Unknown paths are 404; spot/instance-action is 404 until an interruption notice exists;
//     tags/instance is 404 unless the instance allows tags in metadata.
//   - events/maintenance/scheduled is a JSON array of the instance's scheduled events, "[]" when
//     there is none; each has NotBefore, NotAfter (when the event has an end), Code, Description,
//     EventId and State (active, completed or canceled), with times as "21 Jan 2019 09:00:43 GMT"
//     (EC2 User Guide, "View scheduled events", instance metadata example).
//
// The instance a request comes from is found by the X-Ec2sim-Instance-Id header (for tests and
// for processes that share one network namespace) or else by the request's source IP, matched
// against the instances' private IPs.
package imds

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names, as documented for IMDSv2, plus the emulator's own instance selector.
const (
	HeaderTTL        = "X-aws-ec2-metadata-token-ttl-seconds"
	HeaderToken      = "X-aws-ec2-metadata-token"
	HeaderInstanceID = "X-Ec2sim-Instance-Id"
	MaxTTL           = 21600 // seconds: six hours
)

// Metadata is what IMDS knows about one instance.
type Metadata struct {
	InstanceID, InstanceType, ImageID, LocalIPv4, LocalHostname, AvailabilityZone, Region, Lifecycle string

	Tags        map[string]string // served under tags/instance/ only if TagsEnabled
	TagsEnabled bool              // launch template MetadataOptions.InstanceMetadataTags == enabled
	SpotAction  *SpotAction       // non-nil once a spot interruption notice exists
	Events      []ScheduledEvent  // events/maintenance/scheduled

	AccountID    string    // identity document accountId; "123456789012" when empty
	Architecture string    // identity document architecture; "x86_64" when empty
	LaunchTime   time.Time // identity document pendingTime
}

// SpotAction is a spot interruption notice: Action is "terminate", "stop" or "hibernate" and
// Time is when it will happen.
type SpotAction struct {
	Action string
	Time   time.Time
}

// ScheduledEvent is one entry of events/maintenance/scheduled. NotAfter may be zero.
type ScheduledEvent struct {
	Code, Description, EventID, State string
	NotBefore, NotAfter               time.Time
}

// imdsEventTime is the time layout of events/maintenance/scheduled.
const imdsEventTime = "02 Jan 2006 15:04:05 GMT"

func scheduledJSON(evs []ScheduledEvent) string {
	type entry struct {
		NotBefore   string `json:"NotBefore"`
		Code        string `json:"Code"`
		Description string `json:"Description"`
		EventID     string `json:"EventId"`
		NotAfter    string `json:"NotAfter,omitempty"`
		State       string `json:"State"`
	}
	out := make([]entry, 0, len(evs))
	for _, e := range evs {
		en := entry{NotBefore: e.NotBefore.UTC().Format(imdsEventTime), Code: e.Code, Description: e.Description, EventID: e.EventID, State: e.State}
		if !e.NotAfter.IsZero() {
			en.NotAfter = e.NotAfter.UTC().Format(imdsEventTime)
		}
		out = append(out, en)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return string(b)
}

// Source finds instances.
type Source interface {
	ByInstanceID(id string) (Metadata, bool)
	ByPrivateIP(ip string) (Metadata, bool)
}

// Handler serves IMDSv2. Build it with NewHandler.
type Handler struct {
	src Source
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]session
}

type session struct {
	instanceID string
	expires    time.Time
}

// NewHandler returns the IMDSv2 handler. It picks the instance by header X-Ec2sim-Instance-Id,
// else by the request's source IP (RemoteAddr host). now is the clock; nil means time.Now.
func NewHandler(src Source, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{src: src, now: now, tokens: make(map[string]session)}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "EC2ws")
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", http.MethodPut)
			fail(w, http.StatusMethodNotAllowed)
			return
		}
		h.putToken(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed)
		return
	}
	h.get(w, r)
}

// instance resolves the caller.
func (h *Handler) instance(r *http.Request) (Metadata, bool) {
	if id := r.Header.Get(HeaderInstanceID); id != "" {
		return h.src.ByInstanceID(id)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return h.src.ByPrivateIP(host)
}

func (h *Handler) putToken(w http.ResponseWriter, r *http.Request) {
	if len(r.Header.Values("X-Forwarded-For")) > 0 {
		fail(w, http.StatusForbidden)
		return
	}
	ttl, ok := parseTTL(r.Header.Get(HeaderTTL))
	if !ok {
		fail(w, http.StatusBadRequest)
		return
	}
	md, ok := h.instance(r)
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	tok, err := newToken()
	if err != nil {
		fail(w, http.StatusInternalServerError)
		return
	}
	now := h.now()
	h.mu.Lock()
	for k, s := range h.tokens { // sweep expired sessions; maps stay small in an emulator
		if !now.Before(s.expires) {
			delete(h.tokens, k)
		}
	}
	h.tokens[tok] = session{instanceID: md.InstanceID, expires: now.Add(time.Duration(ttl) * time.Second)}
	h.mu.Unlock()
	w.Header().Set(HeaderTTL, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

// parseTTL accepts only a plain decimal integer in [1, MaxTTL].
func parseTTL(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxTTL {
		return 0, false
	}
	return n, true
}

func newToken() (string, error) {
	b := make([]byte, 42)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating IMDS token: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get(HeaderToken)
	if tok == "" {
		fail(w, http.StatusUnauthorized) // IMDSv1 request on an IMDSv2-only instance
		return
	}
	now := h.now()
	h.mu.Lock()
	s, ok := h.tokens[tok]
	if ok && !now.Before(s.expires) {
		delete(h.tokens, tok)
		ok = false
	}
	h.mu.Unlock()
	if !ok {
		fail(w, http.StatusUnauthorized)
		return
	}
	md, found := h.instance(r)
	if !found || md.InstanceID != s.instanceID {
		// Tokens are bound to the instance that asked for them.
		fail(w, http.StatusUnauthorized)
		return
	}
	body, ok := lookup(md, r.URL.Path)
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	remaining := int(math.Ceil(s.expires.Sub(now).Seconds()))
	w.Header().Set(HeaderTTL, strconv.Itoa(remaining))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

// fail writes an error answer with a short HTML body, as IMDS does.
func fail(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	title := fmt.Sprintf("%d - %s", code, http.StatusText(code))
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>%s</title></head><body><h1>%s</h1></body></html>\n", title, title)
}

// lookup returns the body for path: a file's value, or a directory's listing (entries one per
// line, subdirectories with a trailing slash).
func lookup(md Metadata, path string) (string, bool) {
	files, dirs := tree(md)
	p := strings.TrimSuffix(path, "/")
	if v, ok := files[p]; ok && !strings.HasSuffix(path, "/") {
		return v, true
	}
	if !dirs[p] {
		return "", false
	}
	seen := map[string]bool{}
	var entries []string
	prefix := p + "/"
	if p == "" {
		prefix = "/"
	}
	add := func(full string, isDir bool) {
		rest, ok := strings.CutPrefix(full, prefix)
		if !ok || rest == "" {
			return
		}
		name, _, deeper := strings.Cut(rest, "/")
		if deeper || isDir {
			name += "/"
		}
		if !seen[name] {
			seen[name] = true
			entries = append(entries, name)
		}
	}
	for f := range files {
		add(f, false)
	}
	for d := range dirs {
		add(d, true)
	}
	sort.Strings(entries)
	return strings.Join(entries, "\n"), true
}

// tree lays md out as IMDS paths: files (path → value) and directories (paths without the
// trailing slash; "" is the root).
func tree(md Metadata) (files map[string]string, dirs map[string]bool) {
	const m = "/latest/meta-data/"
	lifecycle := md.Lifecycle
	if lifecycle == "" {
		lifecycle = "on-demand"
	}
	files = map[string]string{
		m + "ami-id":                                 md.ImageID,
		m + "hostname":                               md.LocalHostname,
		m + "instance-id":                            md.InstanceID,
		m + "instance-life-cycle":                    lifecycle,
		m + "instance-type":                          md.InstanceType,
		m + "local-hostname":                         md.LocalHostname,
		m + "local-ipv4":                             md.LocalIPv4,
		m + "placement/availability-zone":            md.AvailabilityZone,
		m + "placement/region":                       md.Region,
		m + "events/maintenance/scheduled":           scheduledJSON(md.Events),
		"/latest/dynamic/instance-identity/document": identityDocument(md),
	}
	dirs = map[string]bool{}
	if md.SpotAction != nil {
		b, _ := json.Marshal(struct {
			Action string `json:"action"`
			Time   string `json:"time"`
		}{md.SpotAction.Action, md.SpotAction.Time.UTC().Format(time.RFC3339)})
		files[m+"spot/instance-action"] = string(b)
	}
	if md.TagsEnabled {
		dirs[m+"tags/instance"] = true
		for k, v := range md.Tags {
			if validTagKey(k) {
				files[m+"tags/instance/"+k] = v
			}
		}
	}
	// Every ancestor of a file or directory is a directory.
	mark := func(p string) {
		for {
			i := strings.LastIndex(p, "/")
			if i < 0 {
				return
			}
			p = p[:i]
			dirs[p] = true
			if p == "" {
				return
			}
		}
	}
	for f := range files {
		mark(f)
	}
	for d := range dirs {
		mark(d)
	}
	return files, dirs
}

// validTagKey reports whether IMDS can serve a tag key: the user guide says keys available in
// instance metadata may not contain "/" or spaces and may not be "." or "..".
func validTagKey(k string) bool {
	return k != "" && k != "." && k != ".." && !strings.ContainsAny(k, "/ ")
}

func identityDocument(md Metadata) string {
	account := md.AccountID
	if account == "" {
		account = "123456789012"
	}
	arch := md.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	doc := struct {
		AccountID               string    `json:"accountId"`
		Architecture            string    `json:"architecture"`
		AvailabilityZone        string    `json:"availabilityZone"`
		BillingProducts         []string  `json:"billingProducts"`
		DevpayProductCodes      []string  `json:"devpayProductCodes"`
		MarketplaceProductCodes []string  `json:"marketplaceProductCodes"`
		ImageID                 string    `json:"imageId"`
		InstanceID              string    `json:"instanceId"`
		InstanceType            string    `json:"instanceType"`
		KernelID                *string   `json:"kernelId"`
		PendingTime             time.Time `json:"pendingTime"`
		PrivateIP               string    `json:"privateIp"`
		RamdiskID               *string   `json:"ramdiskId"`
		Region                  string    `json:"region"`
		Version                 string    `json:"version"`
	}{
		AccountID:        account,
		Architecture:     arch,
		AvailabilityZone: md.AvailabilityZone,
		ImageID:          md.ImageID,
		InstanceID:       md.InstanceID,
		InstanceType:     md.InstanceType,
		PendingTime:      md.LaunchTime.UTC().Truncate(time.Second),
		PrivateIP:        md.LocalIPv4,
		Region:           md.Region,
		Version:          "2017-09-30",
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}
