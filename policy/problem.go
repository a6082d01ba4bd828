// Package policy loads, compiles and matches the route policy that platform
// engineers write in YAML, and keeps it current as the files change.
package policy

import (
	suggestpkg "github.com/portcullis/portcullis/internal/suggest"

	"fmt"
	"sort"
	"strings"
)

// Location is a place in a policy file.
type Location struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (l Location) String() string {
	return fmt.Sprintf("%s:%d:%d", l.File, l.Line, l.Col)
}

// Problem is one error in a policy, at a location, with a hint on what to do.
type Problem struct {
	Location
	Message string
}

func (p Problem) Error() string { return p.Location.String() + ": " + p.Message }

// LoadError holds every problem of a load, sorted by file and line.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// problems collects problems during a load.
type problems []Problem

func (ps *problems) add(loc Location, format string, args ...any) {
	*ps = append(*ps, Problem{Location: loc, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	sorted := append([]Problem(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &LoadError{Problems: sorted}
}

// suggest returns " (did you mean "x"?)" when one of candidates is close to s.
func suggest(s string, candidates []string) string {
	best := suggestpkg.Closest(s, candidates)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
