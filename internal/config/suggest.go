package config

import (
	"fmt"
	"strings"
)

// suggest returns the known key nearest to key, if it is near enough to be a likely typo.
func suggest(key string, known []string) (string, bool) {
	best, bestD := "", -1
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k, true
		}
		d := distance(strings.ToLower(key), strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := max(2, len(key)/3)
	if bestD >= 0 && bestD <= limit {
		return best, true
	}
	return "", false
}

// unknownKeyMsg explains an unknown key and how to fix it.
func unknownKeyMsg(key string, known []string) string {
	if s, ok := suggest(key, known); ok {
		if strings.EqualFold(s, key) {
			return fmt.Sprintf("unknown key %q: did you mean %q? (keys are case-sensitive)", key, s)
		}
		return fmt.Sprintf("unknown key %q: did you mean %q?", key, s)
	}
	return fmt.Sprintf("unknown key %q: remove it; valid keys here are %s", key, strings.Join(known, ", "))
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
