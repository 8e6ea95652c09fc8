package fakeslurm

import (
	"fmt"
	"strconv"
	"strings"
)

// maxExpand bounds one expression so a typo cannot eat the machine.
const maxExpand = 1 << 20

// expand turns a Slurm hostlist expression ("aws-spot-[0-3,7],gpu-[01-02]")
// into names, in order. Several bracket groups in one name are expanded
// left to right. This is a small private copy for the fake; the product's
// parser lives in internal/hostlist.
func expand(expr string) ([]string, error) {
	var out []string
	for _, part := range splitTop(expr) {
		if part == "" {
			continue
		}
		names, err := expandOne(part)
		if err != nil {
			return nil, err
		}
		out = append(out, names...)
		if len(out) > maxExpand {
			return nil, fmt.Errorf("hostlist %q expands to more than %d names", expr, maxExpand)
		}
	}
	return out, nil
}

// splitTop splits at commas outside brackets.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func expandOne(s string) ([]string, error) {
	open := strings.IndexByte(s, '[')
	if open < 0 {
		if strings.ContainsRune(s, ']') {
			return nil, fmt.Errorf("unbalanced ']' in %q", s)
		}
		return []string{s}, nil
	}
	end := strings.IndexByte(s[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("unbalanced '[' in %q", s)
	}
	end += open
	prefix, body, suffix := s[:open], s[open+1:end], s[end+1:]
	if strings.ContainsAny(prefix, "]") || strings.ContainsAny(body, "[") {
		return nil, fmt.Errorf("unbalanced brackets in %q", s)
	}
	rests, err := expandOne(suffix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range strings.Split(body, ",") {
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, fmt.Errorf("bad range %q in %q", r, s)
		}
		if (b-a+1)*len(rests) > maxExpand {
			return nil, fmt.Errorf("range %q in %q is too large", r, s)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		for i := a; i <= b; i++ {
			num := strconv.Itoa(i)
			for len(num) < width {
				num = "0" + num
			}
			for _, rest := range rests {
				out = append(out, prefix+num+rest)
			}
		}
	}
	return out, nil
}
