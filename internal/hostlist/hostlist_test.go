package hostlist

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	tests := map[string]struct {
		in   string
		want []string
	}{
		"single":          {"aws-spot-7", []string{"aws-spot-7"}},
		"range":           {"aws-spot-[0-3]", []string{"aws-spot-0", "aws-spot-1", "aws-spot-2", "aws-spot-3"}},
		"list and ranges": {"n[1-3,7,10-11]", []string{"n1", "n2", "n3", "n7", "n10", "n11"}},
		"padding":         {"n[008-010]", []string{"n008", "n009", "n010"}},
		"padding grows":   {"n[98-100]", []string{"n98", "n99", "n100"}},
		"unpadded lo":     {"k[9-010]", []string{"k9", "k10"}},
		"product":         {"a[1-2]b[3-4]", []string{"a1b3", "a1b4", "a2b3", "a2b4"}},
		"top commas":      {"a,b[1-2],c", []string{"a", "b1", "b2", "c"}},
		"suffix":          {"n[1-2].ib", []string{"n1.ib", "n2.ib"}},
		"whitespace":      {"a b\tc", []string{"a", "b", "c"}},
		"empty items":     {"a,,b,", []string{"a", "b"}},
		"bare brackets":   {"[1-2]", []string{"1", "2"}},
		"several groups":  {"aws-ondemand-[0-1],aws-spot-7", []string{"aws-ondemand-0", "aws-ondemand-1", "aws-spot-7"}},
		"duplicates kept": {"n[1,1]", []string{"n1", "n1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Expand(tc.in)
			if err != nil {
				t.Fatalf("Expand(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Expand(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	tests := map[string]struct {
		in, wantMsg string
	}{
		"empty":         {"", "empty hostlist"},
		"only commas":   {" , ", "empty hostlist"},
		"open bracket":  {"n[1-2", "unbalanced '['"},
		"close bracket": {"n1-2]", "unbalanced ']'"},
		"nested":        {"n[1[2]]", "nest"},
		"reversed":      {"n[5-3]", "reversed range"},
		"empty bracket": {"n[]", "empty brackets"},
		"not a number":  {"n[a-b]", "not a number"},
		"missing bound": {"n[1-]", "missing number"},
		"too long":      {"n[1-1234567890123456789]", "digits"},
		"too many":      {"n[0-999999999]", "too many"},
		"product large": {"a[1-1000]b[1-1000]c[1-2]", "too many"},
		"space inside":  {"n[1, 2]", "whitespace inside"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Expand(tc.in)
			if err == nil {
				t.Fatalf("Expand(%q) = %v, want error containing %q", tc.in, got, tc.wantMsg)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Expand(%q) error %q, want it to contain %q", tc.in, err, tc.wantMsg)
			}
		})
	}
	if _, err := Expand("n[0-999999999]"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %v does not wrap ErrTooLarge", err)
	}
}

func TestCompress(t *testing.T) {
	tests := map[string]struct {
		in   []string
		want string
	}{
		"empty":         {nil, ""},
		"one":           {[]string{"aws-spot-3"}, "aws-spot-3"},
		"range":         {[]string{"aws-spot-3", "aws-spot-0", "aws-spot-1", "aws-spot-7", "aws-spot-2"}, "aws-spot-[0-3,7]"},
		"numeric order": {[]string{"n10", "n9", "n2"}, "n[2,9-10]"},
		"padding":       {[]string{"n008", "n009", "n010", "n011"}, "n[008-011]"},
		"mixed widths":  {[]string{"n100", "n010", "n011", "n9", "n10"}, "n[9-10,010-011,100]"},
		"no suffix":     {[]string{"login", "aws-a-1", "aws-a-0"}, "aws-a-[0-1],login"},
		"duplicates":    {[]string{"n3", "n3", "n4"}, "n[3-4]"},
		"groups":        {[]string{"aws-spot-1", "aws-ondemand-0", "aws-spot-0"}, "aws-ondemand-0,aws-spot-[0-1]"},
		"bare and num":  {[]string{"n", "n1"}, "n,n1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Compress(tc.in); got != tc.want {
				t.Errorf("Compress(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, expr := range []string{"aws-spot-[0-99]", "n[001-100],m[7,9-12],login", "a[1-3]b[01-02]"} {
		names, err := Expand(expr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Expand(Compress(names))
		if err != nil {
			t.Fatalf("Expand(Compress(%q)): %v", expr, err)
		}
		if !sameSet(names, again) {
			t.Errorf("round trip of %q changed the set: %q", expr, Compress(names))
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"aws-spot-[0-3,7]", "a[1-2]b[3-4]", "n[001-010],x", "n[", "n[5-3]", "a,,b", "[0-9]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := Expand(expr) // must not panic
		if err != nil {
			return
		}
		if len(names) > MaxNames {
			t.Fatalf("Expand(%q) returned %d names, over the cap", expr, len(names))
		}
		c := Compress(names)
		again, err := Expand(c)
		if err != nil {
			t.Fatalf("Expand(Compress(Expand(%q))) = Expand(%q): %v", expr, c, err)
		}
		if !sameSet(names, again) {
			t.Fatalf("set changed: %q -> %q", expr, c)
		}
	})
}

func FuzzCompress(f *testing.F) {
	f.Add("aws-spot-1,aws-spot-2,n007,n8,login")
	f.Fuzz(func(t *testing.T, csv string) {
		var names []string
		for _, n := range strings.Split(csv, ",") {
			if n == "" || strings.ContainsAny(n, "[] \t\r\n") {
				return // not a host name
			}
			names = append(names, n)
		}
		c := Compress(names)
		got, err := Expand(c)
		if err != nil {
			t.Fatalf("Expand(Compress(%q)) = Expand(%q): %v", names, c, err)
		}
		if !sameSet(names, got) {
			t.Fatalf("Compress(%q) = %q expands to %q", names, c, got)
		}
	})
}

func bigNames() []string {
	names := make([]string, 0, 100_000)
	for i := range 100_000 {
		names = append(names, fmt.Sprintf("aws-spot-%d", i))
	}
	return names
}

func BenchmarkExpand(b *testing.B) {
	for b.Loop() {
		if _, err := Expand("aws-spot-[0-99999]"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompress(b *testing.B) {
	names := bigNames()
	for b.Loop() {
		Compress(names)
	}
}
