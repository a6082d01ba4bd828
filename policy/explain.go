package policy

import (
	"fmt"
	"strings"
)

// Explanation tells why a request matched the route it did.
type Explanation struct {
	Method string
	Path   string
	// PathError is set when the path is refused before matching.
	PathError *PathError
	// Winner is the route that serves the request, nil if none does.
	Winner *Route
	Params map[string]string
	// Others are the other routes whose template matches the path, with
	// why each did not win.
	Others []Candidate
}

// Candidate is a route that matches the request's path but did not win.
type Candidate struct {
	Route *Route
	Why   string
}

// Explain matches method and rawPath (query allowed) like the authorizer
// does and describes the outcome. It is for tools, not the request path.
func (p *Policy) Explain(method, rawPath string) Explanation {
	path := SplitPath(rawPath)
	ex := Explanation{Method: method, Path: path}
	if ex.PathError = CheckPath(path); ex.PathError != nil {
		return ex
	}
	var m Match
	p.Match(method, path, &m)
	ex.Winner, ex.Params = m.Route, m.Params()
	for _, r := range p.routes {
		if r == ex.Winner || !templateMatches(r.segments, path) {
			continue
		}
		var why string
		switch {
		case !allowsMethod(r, method):
			why = fmt.Sprintf("does not allow %s (allows %s)", method, strings.Join(r.Methods, ", "))
		case ex.Winner != nil:
			why = precedenceReason(ex.Winner.segments, r.segments, path)
		default:
			why = "matches, but a more specific route was chosen"
		}
		ex.Others = append(ex.Others, Candidate{Route: r, Why: why})
	}
	return ex
}

func allowsMethod(r *Route, method string) bool {
	for _, m := range r.Methods {
		if m == method || (method == "HEAD" && m == "GET") {
			return true
		}
	}
	return false
}

// templateMatches reports whether segs match path, ignoring methods.
func templateMatches(segs []segment, path string) bool {
	parts := strings.Split(path[1:], "/")
	for i, s := range segs {
		if s.kind == segDoubleStar {
			return true
		}
		if i >= len(parts) {
			return false
		}
		switch s.kind {
		case segLiteral:
			if parts[i] != s.text {
				return false
			}
		default:
			if parts[i] == "" {
				return false
			}
		}
	}
	return len(parts) == len(segs)
}

// precedenceReason says where, from the left, the winner's template is more
// specific than the loser's.
func precedenceReason(winner, loser []segment, path string) string {
	parts := strings.Split(path[1:], "/")
	for i := 0; i < len(winner) && i < len(loser); i++ {
		w, l := winner[i], loser[i]
		if w.kind != l.kind {
			seg := ""
			if i < len(parts) {
				seg = parts[i]
			}
			return fmt.Sprintf("loses at segment %d (%q): %s beats %s", i+1, seg, w.describe(), l.describe())
		}
	}
	if len(winner) < len(loser) {
		return fmt.Sprintf("loses at segment %d: the path ends there, and an exact end beats %s", len(winner)+1, loser[len(winner)].String())
	}
	return "matches with lower precedence"
}

// String renders the explanation for people.
func (ex Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", ex.Method, ex.Path)
	if ex.PathError != nil {
		fmt.Fprintf(&b, "refused before matching: 400 invalid-path (%s)\n", ex.PathError.Detail)
		return b.String()
	}
	if ex.Winner == nil {
		fmt.Fprintf(&b, "no route matches: an authenticated request is denied 403 no-matching-route\n")
	} else {
		r := ex.Winner
		fmt.Fprintf(&b, "matched route %q (%s %s) at %s\n", r.Name, strings.Join(r.Methods, ","), r.Path, r.Source)
		for _, name := range r.paramNames {
			fmt.Fprintf(&b, "  param %s = %q\n", name, ex.Params[name])
		}
		if r.Public {
			fmt.Fprintf(&b, "  public: no token needed (trusted headers are still stripped)\n")
		} else {
			scopes := r.scopeHeader
			if scopes == "" {
				scopes = "(none: any valid token)"
			}
			fmt.Fprintf(&b, "  scopes required: %s\n", scopes)
			fmt.Fprintf(&b, "  user context: %s\n", r.User)
		}
	}
	if len(ex.Others) > 0 {
		fmt.Fprintf(&b, "other routes whose path matches:\n")
		for _, c := range ex.Others {
			fmt.Fprintf(&b, "  %q (%s %s) at %s: %s\n", c.Route.Name, strings.Join(c.Route.Methods, ","), c.Route.Path, c.Route.Source, c.Why)
		}
	}
	return b.String()
}
