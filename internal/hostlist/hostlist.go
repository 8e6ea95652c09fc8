// Package hostlist expands and compresses Slurm hostlist expressions such as
// "aws-spot-[0-3,7]" or "a[1-2]b[01-02]", the way Slurm's scontrol does, without running it.
package hostlist

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxNames bounds the number of names one expression may expand to, so that a typo such as
// "n[0-999999999]" fails fast instead of exhausting memory.
const MaxNames = 1_000_000

// maxDigits keeps every number inside an int64 with room for arithmetic.
const maxDigits = 18

// ErrTooLarge is wrapped by Expand when an expression names more than MaxNames hosts.
var ErrTooLarge = errors.New("hostlist expands to too many names")

// Expand returns the host names of expr in Slurm's order: items separated by commas (or
// whitespace) outside brackets, and within an item the cartesian product of its bracket
// groups with the first group varying slowest ("a[1-2]b[3-4]" = a1b3 a1b4 a2b3 a2b4).
// A range keeps the zero padding of its lower bound ("n[08-10]" = n08 n09 n10).
func Expand(expr string) ([]string, error) {
	items, err := splitTop(expr)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("empty hostlist %q: give at least one node name", expr)
	}
	var out []string
	total := 0
	for _, item := range items {
		parts, err := parseItem(item)
		if err != nil {
			return nil, fmt.Errorf("hostlist %q: %w", expr, err)
		}
		n := 1
		for _, p := range parts {
			if p.nums != nil {
				c := p.count()
				if c > MaxNames || n*c > MaxNames {
					return nil, fmt.Errorf("hostlist %q: %w (limit %d)", expr, ErrTooLarge, MaxNames)
				}
				n *= c
			}
		}
		total += n
		if total > MaxNames {
			return nil, fmt.Errorf("hostlist %q: %w (limit %d)", expr, ErrTooLarge, MaxNames)
		}
		out = expandParts(out, "", parts)
	}
	return out, nil
}

// splitTop splits at commas and whitespace outside brackets, dropping empty items.
func splitTop(expr string) ([]string, error) {
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; c {
		case '[':
			if depth > 0 {
				return nil, fmt.Errorf("hostlist %q: nested '[' at offset %d: brackets cannot nest", expr, i)
			}
			depth++
		case ']':
			if depth == 0 {
				return nil, fmt.Errorf("hostlist %q: unbalanced ']' at offset %d", expr, i)
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				if i > start {
					items = append(items, expr[start:i])
				}
				start = i + 1
			} else if c != ',' {
				return nil, fmt.Errorf("hostlist %q: whitespace inside brackets at offset %d", expr, i)
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("hostlist %q: unbalanced '[': missing ']'", expr)
	}
	if start < len(expr) {
		items = append(items, expr[start:])
	}
	return items, nil
}

// rng is lo..hi inclusive, printed zero-padded to width.
type rng struct {
	lo, hi int64
	width  int
}

// part is literal text (nums == nil) or a bracket group.
type part struct {
	lit  string
	nums []rng
}

func (p part) count() int {
	n := 0
	for _, r := range p.nums {
		c := r.hi - r.lo + 1
		if c > MaxNames || int64(n)+c > MaxNames {
			return MaxNames + 1
		}
		n += int(c)
	}
	return n
}

func parseItem(item string) ([]part, error) {
	var parts []part
	for item != "" {
		i := strings.IndexByte(item, '[')
		if i < 0 {
			parts = append(parts, part{lit: item})
			break
		}
		if i > 0 {
			parts = append(parts, part{lit: item[:i]})
		}
		j := strings.IndexByte(item[i:], ']')
		if j < 0 { // splitTop guarantees balance; keep the check for direct callers
			return nil, fmt.Errorf("unbalanced '[' in %q", item)
		}
		nums, err := parseBracket(item[i+1 : i+j])
		if err != nil {
			return nil, fmt.Errorf("in %q: %w", item, err)
		}
		parts = append(parts, part{nums: nums})
		item = item[i+j+1:]
	}
	return parts, nil
}

func parseBracket(s string) ([]rng, error) {
	if s == "" {
		return nil, errors.New("empty brackets '[]': put a number or a range such as 0-3 inside")
	}
	var out []rng
	for _, el := range strings.Split(s, ",") {
		loS, hiS, isRange := strings.Cut(el, "-")
		lo, err := parseNum(loS)
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = parseNum(hiS); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, fmt.Errorf("reversed range %q: write the lower bound first", el)
			}
		}
		w := 0
		if len(loS) > 1 && loS[0] == '0' {
			w = len(loS)
		}
		out = append(out, rng{lo: lo, hi: hi, width: w})
	}
	return out, nil
}

func parseNum(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing number in brackets: use forms like [1-3,7]")
	}
	if len(s) > maxDigits {
		return 0, fmt.Errorf("number %q has more than %d digits", s, maxDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a number: only digits, '-' and ',' may appear in brackets", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func expandParts(out []string, prefix string, parts []part) []string {
	if len(parts) == 0 {
		return append(out, prefix)
	}
	p := parts[0]
	if p.nums == nil {
		return expandParts(out, prefix+p.lit, parts[1:])
	}
	for _, r := range p.nums {
		for v := r.lo; v <= r.hi; v++ {
			out = expandParts(out, prefix+pad(v, r.width), parts[1:])
		}
	}
	return out
}

func pad(v int64, width int) string {
	s := strconv.FormatInt(v, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// member is one name split into a prefix and an optional numeric suffix.
type member struct {
	prefix string
	val    int64
	width  int // zero padding width; 0 means none
}

// Compress returns a hostlist expression for names: names that end in digits are grouped by
// the text before the digits, sorted numerically and written as ranges inside one bracket
// ("aws-spot-[0-3,7]"); zero padding is kept ("n[008-010]"); duplicates are dropped; a group
// of one name and names without a numeric suffix are written as they are. Groups appear in
// the order of their prefixes. Names must not contain brackets, commas or whitespace.
func Compress(names []string) string {
	type group struct {
		prefix string
		nums   []member
		plain  bool // the bare prefix itself is a name
	}
	byPrefix := map[string]*group{}
	var prefixes []string
	get := func(p string) *group {
		g := byPrefix[p]
		if g == nil {
			g = &group{prefix: p}
			byPrefix[p] = g
			prefixes = append(prefixes, p)
		}
		return g
	}
	for _, name := range names {
		if name == "" {
			continue
		}
		m, ok := split(name)
		if !ok {
			get(name).plain = true
			continue
		}
		g := get(m.prefix)
		g.nums = append(g.nums, m)
	}
	slices.Sort(prefixes)
	var items []string
	for _, p := range prefixes {
		g := byPrefix[p]
		if g.plain {
			items = append(items, p)
		}
		if len(g.nums) == 0 {
			continue
		}
		slices.SortFunc(g.nums, func(a, b member) int {
			if a.val != b.val {
				if a.val < b.val {
					return -1
				}
				return 1
			}
			return a.width - b.width
		})
		g.nums = slices.Compact(g.nums)
		if len(g.nums) == 1 {
			items = append(items, p+pad(g.nums[0].val, g.nums[0].width))
			continue
		}
		var b strings.Builder
		b.WriteString(p)
		b.WriteByte('[')
		for i := 0; i < len(g.nums); {
			j := i
			for j+1 < len(g.nums) && g.nums[j+1].width == g.nums[i].width && g.nums[j+1].val == g.nums[j].val+1 {
				j++
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pad(g.nums[i].val, g.nums[i].width))
			if j > i {
				b.WriteByte('-')
				b.WriteString(pad(g.nums[j].val, g.nums[j].width))
			}
			i = j + 1
		}
		b.WriteByte(']')
		items = append(items, b.String())
	}
	return strings.Join(items, ",")
}

// split separates the trailing digits of name. Names whose suffix has more digits than we
// can count, or whose padded form would not round-trip, are kept whole.
func split(name string) (member, bool) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	digits := name[i:]
	if digits == "" || len(digits) > maxDigits {
		return member{}, false
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return member{}, false
	}
	w := 0
	if len(digits) > 1 && digits[0] == '0' {
		w = len(digits)
	}
	return member{prefix: name[:i], val: v, width: w}, true
}
