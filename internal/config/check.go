package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// checker collects every problem of one file instead of stopping at the first.
type checker struct {
	file     string
	problems []Problem
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: c.file, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func (c *checker) wrongType(path string, n *node, want string) {
	c.add(path, "must be %s, not %s", want, n.kind)
}

// object checks that n is an object whose keys are all in known (reporting unknown and
// duplicate keys) and returns its members by key.
func (c *checker) object(n *node, path string, known []string) (map[string]*node, bool) {
	if n.kind != kObject {
		c.wrongType(path, n, "an object")
		return nil, false
	}
	out := make(map[string]*node, len(n.obj))
	for _, m := range n.obj {
		if !contains(known, m.key) {
			c.add(join(path, m.key), "%s", unknownKeyMsg(m.key, known))
			continue
		}
		if _, dup := out[m.key]; dup {
			c.add(join(path, m.key), "key given twice: keep one")
			continue
		}
		out[m.key] = m.val
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns the string at m[key]; required keys that are missing are problems.
func (c *checker) str(m map[string]*node, path, key string, required bool) (string, bool) {
	n, ok := m[key]
	if !ok {
		if required {
			c.add(join(path, key), "missing: this key is required")
		}
		return "", false
	}
	if n.kind != kString {
		c.wrongType(join(path, key), n, "a string")
		return "", false
	}
	if required && n.str == "" {
		c.add(join(path, key), "empty: give a value")
		return "", false
	}
	return n.str, true
}

// integer returns the integer at m[key] if present and within [lo, hi].
func (c *checker) integer(m map[string]*node, path, key string, lo, hi int64, required bool) (int, bool) {
	n, ok := m[key]
	p := join(path, key)
	if !ok {
		if required {
			c.add(p, "missing: this key is required (an integer)")
		}
		return 0, false
	}
	if n.kind != kNumber {
		c.wrongType(p, n, "an integer")
		return 0, false
	}
	v, err := strconv.ParseInt(n.str, 10, 64)
	if err != nil {
		c.add(p, "must be a whole number, not %s", n.str)
		return 0, false
	}
	if v < lo || v > hi {
		c.add(p, "%d is out of range: use a value from %d to %d", v, lo, hi)
		return 0, false
	}
	return int(v), true
}

func (c *checker) boolean(m map[string]*node, path, key string) (bool, bool) {
	n, ok := m[key]
	if !ok {
		return false, false
	}
	if n.kind != kBool {
		c.wrongType(join(path, key), n, "true or false")
		return false, false
	}
	return n.b, true
}

var slurmKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// kvs reads an object of Slurm settings whose values may be strings, numbers or booleans,
// in file order. Values that would break a slurm.conf line are problems. reserved keys are
// written by slurm-ec2 itself and may not be given.
func (c *checker) kvs(n *node, path string, reserved ...string) []KV {
	if n.kind != kObject {
		c.wrongType(path, n, "an object of Slurm settings")
		return nil
	}
	var out []KV
	seen := map[string]bool{}
	for _, m := range n.obj {
		p := join(path, m.key)
		if !slurmKeyRE.MatchString(m.key) {
			c.add(p, "%q is not a Slurm parameter name: use letters, digits and '_' only", m.key)
			continue
		}
		lk := strings.ToLower(m.key)
		if seen[lk] {
			c.add(p, "given twice (Slurm keys are case-insensitive): keep one")
			continue
		}
		seen[lk] = true
		isReserved := false
		for _, r := range reserved {
			if strings.EqualFold(r, m.key) {
				isReserved = true
			}
		}
		if isReserved {
			c.add(p, "%s is written by slurm-ec2 itself: remove it", m.key)
			continue
		}
		var v string
		switch m.val.kind {
		case kString, kNumber:
			v = m.val.str
		case kBool:
			v = strconv.FormatBool(m.val.b)
		default:
			c.wrongType(p, m.val, "a string, a number or a boolean")
			continue
		}
		if strings.ContainsAny(v, " \t\r\n#\"'") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			c.add(p, "value %q contains whitespace, a quote or '#', which would corrupt slurm.conf: remove them", v)
			continue
		}
		out = append(out, KV{Key: m.key, Value: v})
	}
	return out
}

func isInt(n *node) bool {
	if n.kind != kNumber {
		return false
	}
	_, err := strconv.ParseInt(n.str, 10, 64)
	return err == nil
}

func isFloat(n *node) bool {
	if n.kind != kNumber {
		return false
	}
	f, err := strconv.ParseFloat(n.str, 64)
	return err == nil && !math.IsInf(f, 0)
}
