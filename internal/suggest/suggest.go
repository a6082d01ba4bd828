// Package suggest finds the name a person most likely meant when they wrote
// an unknown one: "did you mean ...?" in configuration and policy errors.
package suggest

import "strings"

// Closest returns the candidate nearest to name (case-insensitive edit
// distance at most 2, or one a prefix of the other), or "" when none is
// near. Ties go to the candidate sharing more letters with name, so "listn"
// means "listen" rather than "list".
func Closest(name string, candidates []string) string {
	lower := strings.ToLower(name)
	best, bestDist, bestCommon := "", 3, 0
	for _, c := range candidates {
		d := editDistance(lower, strings.ToLower(c))
		if strings.HasPrefix(c, lower) || strings.HasPrefix(lower, c) {
			d = min(d, 2)
		}
		common := len(lower) + len(c) - d
		if d < bestDist || (d == bestDist && (common > bestCommon || (common == bestCommon && c < best))) {
			best, bestDist, bestCommon = c, d, common
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
