// Package query decodes EC2 Query protocol requests (form-encoded, flattened lists and maps)
// into a tree and encodes EC2's XML responses and error envelopes.
package query

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Limits that keep a hostile request from making the decoder allocate without bound.
const (
	MaxBodyBytes  = 4 << 20 // larger than any request the SDK sends for the actions we serve
	MaxParams     = 20000
	MaxPathDepth  = 12
	MaxListIndex  = 100000
	APIVersion    = "2016-11-15"
	XMLNamespace  = "http://ec2.amazonaws.com/doc/2016-11-15/"
	formMediaType = "application/x-www-form-urlencoded"
)

// Node is one element of a decoded request: a scalar Value, children by name, or both.
// List members are children whose names are the 1-based indexes "1", "2", ...
type Node struct {
	Value    string
	Children map[string]*Node
}

// Request is a decoded EC2 Query request.
type Request struct {
	Action  string
	Version string
	Params  *Node
}

// ReadRequest reads Action and parameters from an HTTP request: the POST body
// (application/x-www-form-urlencoded) or, for GET, the URL query.
func ReadRequest(r *http.Request) (*Request, []byte, error) {
	var raw string
	var body []byte
	switch r.Method {
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil {
			return nil, nil, fmt.Errorf("reading request body: %w", err)
		}
		if len(b) > MaxBodyBytes {
			return nil, nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge", Message: "Request body is larger than the service accepts."}
		}
		body = b
		raw = string(b)
		if raw == "" {
			raw = r.URL.RawQuery
		}
	case http.MethodGet:
		raw = r.URL.RawQuery
	default:
		return nil, nil, &Error{Status: http.StatusMethodNotAllowed, Code: "InvalidHttpRequest", Message: "Only GET and POST are supported."}
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, body, ErrMalformedQueryString(err.Error())
	}
	req, err := Parse(vals)
	return req, body, err
}

// Parse builds the tree from decoded form values. Keys are dot-separated paths; numeric
// segments are list indexes and must be 1 or more.
func Parse(vals url.Values) (*Request, error) {
	if len(vals) > MaxParams {
		return nil, ErrMalformedQueryString(fmt.Sprintf("too many parameters (%d, at most %d)", len(vals), MaxParams))
	}
	req := &Request{Params: &Node{}}
	for key, vs := range vals {
		if len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1]
		switch key {
		case "Action":
			req.Action = v
			continue
		case "Version":
			req.Version = v
			continue
		}
		parts := strings.Split(key, ".")
		if len(parts) > MaxPathDepth {
			return nil, ErrMalformedQueryString(fmt.Sprintf("parameter %q nests deeper than %d levels", key, MaxPathDepth))
		}
		n := req.Params
		for _, p := range parts {
			if p == "" {
				return nil, ErrMalformedQueryString(fmt.Sprintf("parameter %q has an empty path segment", key))
			}
			if isDigits(p) {
				i, err := strconv.Atoi(p)
				if err != nil || i < 1 || i > MaxListIndex || p[0] == '0' {
					return nil, ErrMalformedQueryString(fmt.Sprintf("parameter %q has list index %q; indexes run from 1 to %d", key, p, MaxListIndex))
				}
			}
			if n.Children == nil {
				n.Children = make(map[string]*Node)
			}
			c := n.Children[p]
			if c == nil {
				c = &Node{}
				n.Children[p] = c
			}
			n = c
		}
		n.Value = v
	}
	if req.Action == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "MissingAction", Message: "The request must contain the parameter Action."}
	}
	return req, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Get walks a dotted path ("TargetCapacitySpecification.TotalTargetCapacity"); nil if absent.
func (n *Node) Get(path string) *Node {
	if n == nil {
		return nil
	}
	cur := n
	for p := range strings.SplitSeq(path, ".") {
		if cur.Children == nil {
			return nil
		}
		cur = cur.Children[p]
		if cur == nil {
			return nil
		}
	}
	return cur
}

// Has reports whether the path is present.
func (n *Node) Has(path string) bool { return n.Get(path) != nil }

// String returns the scalar at path, "" if absent.
func (n *Node) String(path string) string {
	if c := n.Get(path); c != nil {
		return c.Value
	}
	return ""
}

// List returns the members of the flattened list at path (path.1, path.2, ...) ordered by
// index. Gaps are allowed, as the SDK never sends them but other clients may.
func (n *Node) List(path string) []*Node {
	c := n.Get(path)
	if c == nil || len(c.Children) == 0 {
		return nil
	}
	type ent struct {
		i int
		n *Node
	}
	ents := make([]ent, 0, len(c.Children))
	for k, v := range c.Children {
		if !isDigits(k) {
			continue
		}
		i, _ := strconv.Atoi(k)
		ents = append(ents, ent{i, v})
	}
	sort.Slice(ents, func(a, b int) bool { return ents[a].i < ents[b].i })
	out := make([]*Node, len(ents))
	for i, e := range ents {
		out[i] = e.n
	}
	return out
}

// Strings returns the scalar members of the list at path.
func (n *Node) Strings(path string) []string {
	l := n.List(path)
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, c := range l {
		out[i] = c.Value
	}
	return out
}

// Int returns the integer at path; ok=false if absent. A present but non-integer value is
// an InvalidParameterValue error naming the parameter.
func (n *Node) Int(path string) (v int, ok bool, err error) {
	c := n.Get(path)
	if c == nil {
		return 0, false, nil
	}
	i, perr := strconv.Atoi(strings.TrimSpace(c.Value))
	if perr != nil {
		return 0, true, ErrInvalidParameterValue(fmt.Sprintf("Value (%s) for parameter %s is invalid. Expected an integer.", c.Value, path))
	}
	return i, true, nil
}

// Float returns the decimal at path; ok=false if absent.
func (n *Node) Float(path string) (v float64, ok bool, err error) {
	c := n.Get(path)
	if c == nil {
		return 0, false, nil
	}
	f, perr := strconv.ParseFloat(strings.TrimSpace(c.Value), 64)
	if perr != nil {
		return 0, true, ErrInvalidParameterValue(fmt.Sprintf("Value (%s) for parameter %s is invalid. Expected a number.", c.Value, path))
	}
	return f, true, nil
}

// Bool returns the boolean at path ("true"/"false", case-insensitive); false if absent.
func (n *Node) Bool(path string) (bool, error) {
	c := n.Get(path)
	if c == nil {
		return false, nil
	}
	switch strings.ToLower(c.Value) {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, ErrInvalidParameterValue(fmt.Sprintf("Value (%s) for parameter %s is invalid. Expected true or false.", c.Value, path))
}

// Flatten writes the tree back as dotted key=value pairs in sorted order: a canonical form
// used for fingerprints (ClientToken idempotency) and golden tests.
func (n *Node) Flatten() []string {
	var out []string
	var walk func(prefix string, n *Node)
	walk = func(prefix string, n *Node) {
		if n.Children == nil || n.Value != "" {
			out = append(out, prefix+"="+n.Value)
		}
		for k, c := range n.Children {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, c)
		}
	}
	if n != nil {
		for k, c := range n.Children {
			walk(k, c)
		}
	}
	sort.Strings(out)
	return out
}
