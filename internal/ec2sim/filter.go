package ec2sim

import (
	"fmt"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/query"
)

// MaxFilterValues is EC2's limit on filter values in one call (FilterLimitExceeded).
const MaxFilterValues = 200

// filter is one Filter.N: a name and values (OR-ed); filters are AND-ed.
type filter struct {
	name   string
	values []matcher
}

// matcher matches one filter value; EC2 allows * (any run) and ? (one character) wildcards.
type matcher struct {
	exact string
	glob  bool
}

func newMatcher(v string) matcher {
	return matcher{exact: v, glob: strings.ContainsAny(v, "*?")}
}

func (m matcher) match(s string) bool {
	if !m.glob {
		return m.exact == s
	}
	return globMatch(m.exact, s)
}

// globMatch matches * and ? (a backslash escapes the next character, as EC2 documents).
func globMatch(pat, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			c := pat[px]
			switch {
			case c == '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case c == '?' && sx < len(s):
				px++
				sx++
				continue
			case c == '\\' && px+1 < len(pat) && sx < len(s) && pat[px+1] == s[sx]:
				px += 2
				sx++
				continue
			case c != '\\' && c != '?' && sx < len(s) && s[sx] == c:
				px++
				sx++
				continue
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

func (f filter) any(s string) bool {
	for _, m := range f.values {
		if m.match(s) {
			return true
		}
	}
	return false
}

func isTagFilter(name string) bool {
	return strings.HasPrefix(name, "tag:") || name == "tag-key" || name == "tag-value"
}

// matchTags applies a tag filter (tag:KEY, tag-key, tag-value) to a resource's tags; any other
// filter does not match.
func (f filter) matchTags(tags map[string]string) bool {
	switch {
	case strings.HasPrefix(f.name, "tag:"):
		v, has := tags[f.name[4:]]
		return has && f.any(v)
	case f.name == "tag-key":
		for k := range tags {
			if f.any(k) {
				return true
			}
		}
	case f.name == "tag-value":
		for _, v := range tags {
			if f.any(v) {
				return true
			}
		}
	}
	return false
}

// parseFilters reads Filter.N.Name / Filter.N.Value.M, checks names against allowed (a
// name ending in ":" allows any suffix, as tag:KEY) and the total value count.
func parseFilters(p *query.Node, allowed ...string) ([]filter, error) {
	var out []filter
	total := 0
	for _, fn := range p.List("Filter") {
		name := fn.String("Name")
		if name == "" {
			return nil, query.ErrMissingParameter("Filter.Name")
		}
		ok := false
		for _, a := range allowed {
			if name == a || (strings.HasSuffix(a, ":") && strings.HasPrefix(name, a) && len(name) > len(a)) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		vals := fn.Strings("Value")
		total += len(vals)
		if total > MaxFilterValues {
			return nil, errorf("FilterLimitExceeded", "The maximum number of filter values specified on a single call is %d", MaxFilterValues)
		}
		f := filter{name: name}
		for _, v := range vals {
			f.values = append(f.values, newMatcher(v))
		}
		out = append(out, f)
	}
	return out, nil
}

var instanceFilters = []string{"instance-id", "instance-state-name", "instance-state-code", "tag:", "tag-key", "tag-value",
	"subnet-id", "availability-zone", "instance-type", "private-ip-address", "private-dns-name", "instance-lifecycle",
	"image-id", "reservation-id", "vpc-id", "client-token", "launch-time", "state-reason-code"}

// matchInstance applies instance filters; st is the instance's current state.
func matchInstance(fs []filter, in *instance, st string) bool {
	for _, f := range fs {
		var ok bool
		switch {
		case f.name == "instance-id":
			ok = f.any(in.id)
		case f.name == "instance-state-name":
			ok = f.any(st)
		case f.name == "instance-state-code":
			ok = f.any(fmt.Sprint(stateCodes[st]))
		case isTagFilter(f.name):
			ok = f.matchTags(in.tags)
		case f.name == "subnet-id":
			ok = f.any(in.subnet)
		case f.name == "availability-zone":
			ok = f.any(in.az)
		case f.name == "instance-type":
			ok = f.any(in.itype)
		case f.name == "private-ip-address":
			ok = st != StateTerminated && f.any(in.ip)
		case f.name == "private-dns-name":
			ok = st != StateTerminated && f.any(in.dns)
		case f.name == "instance-lifecycle":
			// EC2 sets instanceLifecycle only for spot (and scheduled) instances.
			ok = in.lifecycle == "spot" && f.any("spot")
		case f.name == "image-id":
			ok = f.any(in.image)
		case f.name == "reservation-id":
			ok = f.any(in.reservation)
		case f.name == "client-token":
			ok = f.any(in.clientToken)
		case f.name == "launch-time":
			ok = f.any(fmtTime(in.launch))
		case f.name == "state-reason-code":
			ok = f.any(in.reasonCode)
		case f.name == "vpc-id":
			ok = true // one VPC per region
		}
		if !ok {
			return false
		}
	}
	return true
}
