package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ChangeKind says how the decision for a request changes between two
// policies.
type ChangeKind string

// Kinds of change, from the caller's side.
const (
	// NewlyRouted: no route covered it (403 no-matching-route); one does now.
	NewlyRouted ChangeKind = "newly-routed"
	// NoLongerRouted: a route covered it; none does now (403).
	NoLongerRouted ChangeKind = "no-longer-routed"
	// NowPublic: it needed a token; it needs none now.
	NowPublic ChangeKind = "now-public"
	// NoLongerPublic: it needed no token; it needs one now.
	NoLongerPublic ChangeKind = "no-longer-public"
	// FewerScopes: the new route requires a subset of the old one's scopes:
	// some tokens are newly allowed.
	FewerScopes ChangeKind = "fewer-scopes"
	// MoreScopes: the new route requires more scopes: some tokens are newly
	// denied.
	MoreScopes ChangeKind = "more-scopes"
	// OtherScopes: the scopes changed both ways.
	OtherScopes ChangeKind = "scopes-changed"
	// UserRuleChanged: the on-behalf-of rule changed.
	UserRuleChanged ChangeKind = "user-rule-changed"
)

// Change is a (method, path) whose decision differs between two policies,
// with the routes that decide it in each.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Method string     `json:"method"`
	// Path is the template the request was derived from, parameters
	// written {name} and wildcards as written.
	Path        string `json:"path"`
	OldRoute    string `json:"old_route,omitempty"`
	OldLocation string `json:"old_location,omitempty"`
	NewRoute    string `json:"new_route,omitempty"`
	NewLocation string `json:"new_location,omitempty"`
	Old         string `json:"old"`
	New         string `json:"new"`
}

func (c Change) String() string {
	s := fmt.Sprintf("%s %s: %s: %s → %s", c.Method, c.Path, c.Kind, c.Old, c.New)
	if c.OldRoute != "" {
		s += fmt.Sprintf("\n    old: %s (%s)", c.OldRoute, c.OldLocation)
	}
	if c.NewRoute != "" {
		s += fmt.Sprintf("\n    new: %s (%s)", c.NewRoute, c.NewLocation)
	}
	return s
}

// probe is one request derived from the templates: the concrete path to
// match and how to show it.
type probe struct{ path, shown string }

// sampleSegment is what a parameter or wildcard is instantiated with: no
// literal of a policy equals it.
const sampleSegment = "portcullis-sample"

// Diff reports every (method, path) whose decision changes from old to new.
// The requests are derived from both policies' templates, not sampled: each
// route's template with its parameters and wildcards instantiated (a
// trailing ** also as nothing and as two segments), and, at each position,
// with every literal any route has there, which are the boundaries between
// overlapping routes. Every method either policy names is tried.
func Diff(old, new *Policy) []Change {
	routes := append(slices.Clone(old.routes), new.routes...)
	literals := map[int][]string{}
	methods := map[string]bool{}
	for _, r := range routes {
		for i, s := range r.segments {
			if s.kind == segLiteral && !slices.Contains(literals[i], s.text) {
				literals[i] = append(literals[i], s.text)
			}
		}
		for _, m := range r.Methods {
			methods[m] = true
		}
	}
	seen := map[string]bool{}
	var probes []probe
	add := func(p probe) {
		if !seen[p.path] {
			seen[p.path] = true
			probes = append(probes, p)
		}
	}
	for _, r := range routes {
		for _, p := range instantiate(r.segments, literals) {
			add(p)
		}
	}
	sortedMethods := make([]string, 0, len(methods))
	for m := range methods {
		sortedMethods = append(sortedMethods, m)
	}
	sort.Strings(sortedMethods)

	var changes []Change
	reported := map[string]bool{}
	for _, p := range probes {
		for _, method := range sortedMethods {
			var mo, mn Match
			old.Match(method, p.path, &mo)
			new.Match(method, p.path, &mn)
			for _, c := range compare(mo.Route, mn.Route) {
				c.Method, c.Path = method, p.shown
				// One line per change of a pair of routes and method.
				key := fmt.Sprintf("%s|%s|%s|%p|%p", c.Kind, method, c.Old+c.New, mo.Route, mn.Route)
				if reported[key] {
					continue
				}
				reported[key] = true
				changes = append(changes, c)
			}
		}
	}
	sort.SliceStable(changes, func(i, j int) bool {
		if changes[i].Path != changes[j].Path {
			return changes[i].Path < changes[j].Path
		}
		return changes[i].Method < changes[j].Method
	})
	return changes
}

// instantiate derives the probes of one template.
func instantiate(segs []segment, literals map[int][]string) []probe {
	base := make([]string, len(segs))
	shown := make([]string, len(segs))
	for i, s := range segs {
		switch s.kind {
		case segLiteral:
			base[i], shown[i] = s.text, s.text
		case segParam:
			base[i], shown[i] = sampleSegment, "{"+s.text+"}"
		case segStar:
			base[i], shown[i] = sampleSegment, "*"
		case segDoubleStar:
			base[i], shown[i] = sampleSegment, "**"
		}
	}
	join := func(parts []string) string { return "/" + strings.Join(parts, "/") }
	out := []probe{{join(base), join(shown)}}
	for i, s := range segs {
		if s.kind == segLiteral {
			continue
		}
		for _, lit := range literals[i] {
			p, q := slices.Clone(base), slices.Clone(shown)
			p[i], q[i] = lit, lit
			out = append(out, probe{join(p), join(q)})
		}
		if s.kind == segDoubleStar {
			// ** also covers its prefix, and any depth.
			out = append(out, probe{join(base[:i]), join(shown[:i])})
			deeper := append(slices.Clone(base), sampleSegment)
			out = append(out, probe{join(deeper), join(append(slices.Clone(shown), "…"))})
		}
	}
	return out
}

// compare says how the decision changes from route a to route b (nil: no
// route).
func compare(a, b *Route) []Change {
	c := Change{Old: describe(a), New: describe(b)}
	if a != nil {
		c.OldRoute, c.OldLocation = a.Name, a.Source.String()
	}
	if b != nil {
		c.NewRoute, c.NewLocation = b.Name, b.Source.String()
	}
	one := func(k ChangeKind) []Change { c.Kind = k; return []Change{c} }
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		return one(NewlyRouted)
	case b == nil:
		return one(NoLongerRouted)
	case !a.Public && b.Public:
		return one(NowPublic)
	case a.Public && !b.Public:
		return one(NoLongerPublic)
	case a.Public && b.Public:
		return nil
	}
	var out []Change
	oldScopes, newScopes := sortedSet(a.Scopes), sortedSet(b.Scopes)
	if !slices.Equal(oldScopes, newScopes) {
		kind := OtherScopes
		switch {
		case subset(newScopes, oldScopes):
			kind = FewerScopes
		case subset(oldScopes, newScopes):
			kind = MoreScopes
		}
		c.Kind = kind
		out = append(out, c)
	}
	if a.User != b.User {
		c.Kind = UserRuleChanged
		out = append(out, c)
	}
	return out
}

func describe(r *Route) string {
	switch {
	case r == nil:
		return "no route (403)"
	case r.Public:
		return "public"
	}
	return fmt.Sprintf("scopes [%s], user %s", strings.Join(sortedSet(r.Scopes), " "), r.User)
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func subset(small, big []string) bool {
	for _, s := range small {
		if !slices.Contains(big, s) {
			return false
		}
	}
	return true
}
