package policy

import "strings"

// Match is the result of matching a request against the policy. It is a
// value with fixed-size storage so that matching never allocates.
type Match struct {
	// Route is nil when no route covers the request.
	Route *Route
	path  string
	spans [maxSegments][2]int32
}

// Param returns the value of the named path parameter of the matched route.
func (m *Match) Param(name string) (string, bool) {
	if m.Route == nil {
		return "", false
	}
	for i, n := range m.Route.paramNames {
		if n == name {
			return m.path[m.spans[i][0]:m.spans[i][1]], true
		}
	}
	return "", false
}

// Params returns every path parameter of the matched route by name.
func (m *Match) Params() map[string]string {
	if m.Route == nil || len(m.Route.paramNames) == 0 {
		return nil
	}
	out := make(map[string]string, len(m.Route.paramNames))
	for i, n := range m.Route.paramNames {
		out[n] = m.path[m.spans[i][0]:m.spans[i][1]]
	}
	return out
}

// Match finds the route for method and path. The path must already be
// safe (see CheckPath): absolute, without query, dot segments, empty
// interior segments or encoded separators. Matching is byte-exact and
// case-sensitive. Where several routes match, the one whose segments are more
// specific, compared from the left, wins: literal > {param} > * > **.
// A HEAD request matches a route that allows GET unless a route allows HEAD
// itself.
func (p *Policy) Match(method, path string, m *Match) {
	m.Route, m.path = nil, path
	mi := methodIndex(method)
	if mi < 0 || len(path) == 0 || path[0] != '/' {
		return
	}
	m.Route = p.root.match(path, 1, false, mi, m, 0)
}

// match walks the trie depth first in precedence order, so the first full
// match found is the most specific one. pos is where the current segment
// starts; ended means the whole path has been consumed.
func (n *node) match(path string, pos int, ended bool, mi int, m *Match, nparams int) *Route {
	if ended {
		if r := n.end.lookup(mi); r != nil {
			return r
		}
		// ** also matches nothing: /v1/** covers /v1.
		return n.doubleStar.lookup(mi)
	}
	end, nextEnded := len(path), true
	if i := strings.IndexByte(path[pos:], '/'); i >= 0 {
		end, nextEnded = pos+i, false
	}
	seg := path[pos:end]
	if child := n.literals[seg]; child != nil {
		if r := child.match(path, end+1, nextEnded, mi, m, nparams); r != nil {
			return r
		}
	}
	if seg != "" {
		if n.param != nil && nparams < maxSegments {
			m.spans[nparams] = [2]int32{int32(pos), int32(end)}
			if r := n.param.match(path, end+1, nextEnded, mi, m, nparams+1); r != nil {
				return r
			}
		}
		if n.star != nil {
			if r := n.star.match(path, end+1, nextEnded, mi, m, nparams); r != nil {
				return r
			}
		}
	}
	return n.doubleStar.lookup(mi)
}
