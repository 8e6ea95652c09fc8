package ec2sim

import (
	"sort"
	"strconv"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// Spot request status codes, from "Get the status of a Spot Instance request" (EC2 user guide):
// a fulfilled one-time request is active/fulfilled; once EC2 decides to interrupt the instance
// it is active/marked-for-termination for the two-minute notice; after the interruption it is
// closed/instance-terminated-no-capacity, and closed/instance-terminated-by-user when its owner
// terminated the instance.
const (
	spotFulfilled         = "fulfilled"
	spotMarked            = "marked-for-termination"
	spotTerminatedNoCap   = "instance-terminated-no-capacity"
	spotTerminatedByOwner = "instance-terminated-by-user"
)

type xSpotStatus struct {
	Code       string `xml:"code"`
	Message    string `xml:"message"`
	UpdateTime string `xml:"updateTime"`
}

type xSpotRequest struct {
	SpotInstanceRequestID        string      `xml:"spotInstanceRequestId"`
	InstanceID                   string      `xml:"instanceId"`
	State                        string      `xml:"state"`
	Status                       xSpotStatus `xml:"status"`
	Type                         string      `xml:"type"`
	CreateTime                   string      `xml:"createTime"`
	LaunchedAvailabilityZone     string      `xml:"launchedAvailabilityZone"`
	ProductDescription           string      `xml:"productDescription"`
	InstanceInterruptionBehavior string      `xml:"instanceInterruptionBehavior"`
	Tags                         []xTag      `xml:"tagSet>item"`
}

type describeSpotRequestsResp struct {
	query.ResponseMeta
	Requests  []xSpotRequest `xml:"spotInstanceRequestSet>item"`
	NextToken string         `xml:"nextToken,omitempty"`
}

// spotStatus is the request state and status of a spot instance's one-time request.
func (s *Sim) spotStatus(c *call, in *instance) (state, code, msg, updated string) {
	// An interruption schedules the shutdown at the end of the notice: until then the request is
	// marked for termination.
	switch {
	case !in.shutdownAt.IsZero() && c.now.Before(in.shutdownAt) && !in.spotAction.IsZero():
		return "active", spotMarked, "Spot Instance is marked for termination and will be interrupted.", fmtTime(in.spotAction.Add(-s.opts.DefaultNotice))
	case !in.shutdownAt.IsZero() && in.reasonCode == ReasonSpot:
		return "closed", spotTerminatedNoCap, "Spot Instance terminated due to an interruption.", fmtTime(in.shutdownAt)
	case !in.shutdownAt.IsZero():
		return "closed", spotTerminatedByOwner, "Spot Instance terminated by user.", fmtTime(in.shutdownAt)
	}
	return "active", spotFulfilled, "Your spot request is fulfilled.", fmtTime(in.launch)
}

var spotRequestFilters = []string{"instance-id", "state", "status-code", "spot-instance-request-id", "launched-availability-zone", "tag:", "tag-key"}

// describeSpotInstanceRequests lists the one-time spot requests behind spot instances.
func (s *Sim) describeSpotInstanceRequests(c *call) (query.Body, error) {
	r, p := c.region, c.p
	ids := p.Strings("SpotInstanceRequestId")
	limit, err := maxResults(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, spotRequestFilters...)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		if !strings.HasPrefix(id, "sir-") {
			return nil, errorf("InvalidSpotInstanceRequestID.Malformed", "Invalid id: \"%s\"", id)
		}
		want[id] = true
	}
	start, err := r.pageFrom(p)
	if err != nil {
		return nil, err
	}
	resp := &describeSpotRequestsResp{}
	found := map[string]bool{}
	for _, in := range r.order[start:] {
		if in.removed || in.spotRequestID == "" || (len(want) > 0 && !want[in.spotRequestID]) {
			continue
		}
		found[in.spotRequestID] = true
		state, code, msg, updated := s.spotStatus(c, in)
		if !spotMatch(fs, in, state, code) {
			continue
		}
		if limit > 0 && len(resp.Requests) == limit {
			resp.NextToken = encodeToken(strconv.FormatUint(in.seq, 10))
			break
		}
		x := xSpotRequest{SpotInstanceRequestID: in.spotRequestID, InstanceID: in.id, State: state,
			Status: xSpotStatus{Code: code, Message: msg, UpdateTime: updated}, Type: "one-time",
			CreateTime: fmtTime(in.launch), LaunchedAvailabilityZone: in.az, ProductDescription: "Linux/UNIX",
			InstanceInterruptionBehavior: "terminate"}
		keys := make([]string, 0, len(in.tags))
		for k := range in.tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			x.Tags = append(x.Tags, xTag{Key: k, Value: in.tags[k]})
		}
		resp.Requests = append(resp.Requests, x)
	}
	for _, id := range ids {
		if !found[id] {
			return nil, errorf("InvalidSpotInstanceRequestID.NotFound", "The spot instance request ID '%s' does not exist", id)
		}
	}
	c.n = len(resp.Requests)
	return resp, nil
}

func spotMatch(fs []filter, in *instance, state, code string) bool {
	for _, f := range fs {
		var ok bool
		switch {
		case f.name == "instance-id":
			ok = f.any(in.id)
		case f.name == "state":
			ok = f.any(state)
		case f.name == "status-code":
			ok = f.any(code)
		case f.name == "spot-instance-request-id":
			ok = f.any(in.spotRequestID)
		case f.name == "launched-availability-zone":
			ok = f.any(in.az)
		default:
			ok = f.matchTags(in.tags)
		}
		if !ok {
			return false
		}
	}
	return true
}
