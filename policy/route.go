package policy

import (
	"fmt"
	"strings"
)

// UserRule says whether a route needs a user context (X-On-Behalf-Of).
type UserRule string

// User rules.
const (
	UserOptional  UserRule = "optional"
	UserRequired  UserRule = "required"
	UserForbidden UserRule = "forbidden"
)

// Route is one compiled route of the policy. It is immutable once loaded.
type Route struct {
	// Name is the route's name, or "METHODS PATH" when the file gives none.
	Name    string
	Methods []string
	Path    string
	Scopes  []string
	User    UserRule
	Public  bool
	// Source is where the route is defined.
	Source Location

	segments   []segment
	paramNames []string
	// scopeHeader is Scopes joined by spaces, for WWW-Authenticate.
	scopeHeader string
}

// ScopeString returns the required scopes separated by spaces.
func (r *Route) ScopeString() string { return r.scopeHeader }

// Params returns the names of the route's path parameters, in order.
func (r *Route) Params() []string { return r.paramNames }

func (r *Route) finish() {
	for _, s := range r.segments {
		if s.kind == segParam {
			r.paramNames = append(r.paramNames, s.text)
		}
	}
	r.scopeHeader = strings.Join(r.Scopes, " ")
	if r.Name == "" {
		r.Name = strings.Join(r.Methods, ",") + " " + r.Path
	}
}

// methods the policy knows, in a fixed order that indexes per-node tables.
var knownMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

const (
	methodGET  = 0
	methodHEAD = 1
)

// methodIndex returns the index of method in knownMethods, or -1.
func methodIndex(method string) int {
	switch method {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "TRACE":
		return 7
	case "CONNECT":
		return 8
	}
	return -1
}

// CheckMethod reports whether method is one a route can name, in the words
// the loader uses for a route's methods.
func CheckMethod(method string) error {
	switch {
	case methodIndex(method) >= 0:
		return nil
	case methodIndex(strings.ToUpper(method)) >= 0:
		return fmt.Errorf("method %q must be upper-case: %s", method, strings.ToUpper(method))
	}
	return fmt.Errorf("unknown method %q; use one of %s", method, strings.Join(knownMethods[:], ", "))
}
