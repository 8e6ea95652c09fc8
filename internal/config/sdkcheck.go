package config

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

var (
	timeType         = reflect.TypeFor[time.Time]()
	instanceTypeType = reflect.TypeFor[types.InstanceType]()
	// New instance types appear faster than SDK releases, so InstanceType is checked by
	// shape rather than against the SDK's list.
	instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)
)

// fieldNames returns the exported field names of struct type t, which the SDK names after
// the EC2 API's members.
func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			out = append(out, f.Name)
		}
	}
	return out
}

// sdk checks n against the SDK type t: key names (exact case), JSON types, enum values.
// It returns false if it reported a problem.
func (c *checker) sdk(n *node, t reflect.Type, path string) bool {
	before := len(c.problems)
	c.sdkValue(n, t, path)
	return len(c.problems) == before
}

func (c *checker) sdkValue(n *node, t reflect.Type, path string) {
	if n.kind == kNull {
		return // unset
	}
	if t == timeType {
		if n.kind != kString {
			c.wrongType(path, n, "a date-time string")
		} else if _, err := time.Parse(time.RFC3339, n.str); err != nil {
			c.add(path, "%q is not a date-time: use RFC 3339, e.g. 2030-01-02T15:04:05Z", n.str)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		c.sdkValue(n, t.Elem(), path)
	case reflect.Struct:
		known := fieldNames(t)
		m, ok := c.object(n, path, known)
		if !ok {
			return
		}
		for _, name := range known {
			if v, ok := m[name]; ok {
				f, _ := t.FieldByName(name)
				c.sdkValue(v, f.Type, join(path, name))
			}
		}
	case reflect.Slice:
		if n.kind != kArray {
			c.wrongType(path, n, "an array")
			return
		}
		for i, v := range n.arr {
			c.sdkValue(v, t.Elem(), index(path, i))
		}
	case reflect.Map:
		if n.kind != kObject {
			c.wrongType(path, n, "an object")
			return
		}
		for _, mem := range n.obj {
			c.sdkValue(mem.val, t.Elem(), join(path, mem.key))
		}
	case reflect.String:
		if n.kind != kString {
			c.wrongType(path, n, "a string")
			return
		}
		c.enum(n.str, t, path)
	case reflect.Bool:
		if n.kind != kBool {
			c.wrongType(path, n, "true or false")
		}
	case reflect.Int32, reflect.Int64, reflect.Int:
		if !isInt(n) {
			c.wrongType(path, n, "an integer")
			return
		}
		v, _ := strconv.ParseInt(n.str, 10, 64)
		if t.Kind() == reflect.Int32 && (v < math.MinInt32 || v > math.MaxInt32) {
			c.add(path, "%d does not fit a 32-bit integer", v)
		}
	case reflect.Float32, reflect.Float64:
		if !isFloat(n) {
			c.wrongType(path, n, "a number")
		}
	default:
		// document.Interface and the like: accepted as given.
	}
}

// enum checks s against the Values() of an SDK enum type t (a named string type).
func (c *checker) enum(s string, t reflect.Type, path string) {
	if t == instanceTypeType {
		if !instanceTypeRE.MatchString(s) {
			c.add(path, "%q is not an instance type: use a name such as c5.xlarge", s)
		}
		return
	}
	m, ok := t.MethodByName("Values")
	if !ok || t.PkgPath() == "" {
		return
	}
	vals := m.Func.Call([]reflect.Value{reflect.Zero(t)})[0]
	var allowed []string
	for i := range vals.Len() {
		v := vals.Index(i).String()
		if v == s {
			return
		}
		allowed = append(allowed, v)
	}
	if len(allowed) == 0 {
		return
	}
	msg := "%q is not a valid %s: use one of %s"
	if sug, ok := suggest(s, allowed); ok {
		c.add(path, msg+" (did you mean %q?)", s, t.Name(), strings.Join(allowed, ", "), sug)
		return
	}
	c.add(path, msg, s, t.Name(), strings.Join(allowed, ", "))
}

// decodeSDK checks n against the type of dst (a pointer) and, if it is valid, fills dst.
func (c *checker) decodeSDK(n *node, dst any, path string) bool {
	if !c.sdk(n, reflect.TypeOf(dst).Elem(), path) {
		return false
	}
	var buf bytes.Buffer
	n.marshal(&buf)
	if err := json.Unmarshal(buf.Bytes(), dst); err != nil {
		c.add(path, "cannot be read: %v", err)
		return false
	}
	return true
}
