// Package coverage checks a route policy against the API's own OpenAPI
// description: operations no route covers (every call would be 403 in
// production), routes that cover no operation (an endpoint removed, or a
// typo), and scopes that differ between an operation's OAuth2 security and
// the route that decides it.
package coverage

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/portcullis/portcullis/policy"
)

// Kind is what a finding says.
type Kind string

// Kinds of findings.
const (
	// Uncovered: no route decides the operation; authz would refuse every
	// call with 403 no-matching-route.
	Uncovered Kind = "uncovered-operation"
	// UnusedRoute: the route decides no operation of the document.
	UnusedRoute Kind = "unused-route"
	// ScopeMismatch: the operation's OAuth2 scopes differ from the route's.
	ScopeMismatch Kind = "scope-mismatch"
	// PublicMismatch: one side needs no token and the other does.
	PublicMismatch Kind = "public-mismatch"
)

// Finding is one disagreement between the document and the policy.
type Finding struct {
	Kind        Kind   `json:"kind"`
	Method      string `json:"method,omitempty"`
	Path        string `json:"path,omitempty"`
	OperationID string `json:"operation_id,omitempty"`
	Route       string `json:"route,omitempty"`
	// Location is where the route is defined (file:line:col).
	Location        string   `json:"location,omitempty"`
	OperationScopes []string `json:"operation_scopes,omitempty"`
	RouteScopes     []string `json:"route_scopes,omitempty"`
	Detail          string   `json:"detail"`
}

// Report is the outcome of a check.
type Report struct {
	Operations int       `json:"operations"`
	Routes     int       `json:"routes"`
	Findings   []Finding `json:"findings"`
}

// Options adjust a check.
type Options struct {
	// IgnoreRoutes are routes that serve no operation of the document on
	// purpose (health, the token endpoint): never reported as unused.
	IgnoreRoutes []string
}

// LoadDocument reads an OpenAPI 3.0 or 3.1 document and validates it.
func LoadDocument(ctx context.Context, path string) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := doc.Validate(ctx, openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("%s: not a valid OpenAPI document: %w", path, err)
	}
	return doc, nil
}

// Check maps every operation of doc to the route that would decide it.
func Check(doc *openapi3.T, pol *policy.Policy, opts Options) Report {
	rep := Report{Routes: len(pol.Routes()), Findings: []Finding{}}
	used := map[*policy.Route]bool{}
	paths := doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, template := range keys {
		item := paths[template]
		for _, method := range sortedMethods(item) {
			op := item.GetOperation(method)
			rep.Operations++
			full := joinPath(basePath(doc, item, op), template)
			var m policy.Match
			pol.Match(method, sample(full), &m)
			f := Finding{Method: method, Path: full, OperationID: op.OperationID}
			if m.Route == nil {
				f.Kind, f.Detail = Uncovered, "no route covers it: authz refuses every call with 403 no-matching-route"
				rep.Findings = append(rep.Findings, f)
				continue
			}
			used[m.Route] = true
			f.Route, f.Location, f.RouteScopes = m.Route.Name, m.Route.Source.String(), m.Route.Scopes
			public, scopes, declared := operationSecurity(doc, op)
			if !declared {
				continue
			}
			switch {
			case public && !m.Route.Public:
				f.Kind, f.Detail = PublicMismatch, "the operation needs no token, the route requires one"
			case !public && m.Route.Public:
				f.Kind, f.Detail = PublicMismatch, "the operation requires a token, the route is public"
			case !public && scopes != nil && !sameSet(scopes, m.Route.Scopes):
				f.Kind, f.OperationScopes = ScopeMismatch, scopes
				f.Detail = fmt.Sprintf("the operation asks for [%s], the route requires [%s]", strings.Join(scopes, " "), strings.Join(m.Route.Scopes, " "))
			default:
				continue
			}
			rep.Findings = append(rep.Findings, f)
		}
	}
	for _, r := range pol.Routes() {
		if used[r] || slices.Contains(opts.IgnoreRoutes, r.Name) {
			continue
		}
		rep.Findings = append(rep.Findings, Finding{Kind: UnusedRoute, Route: r.Name, Location: r.Source.String(), RouteScopes: r.Scopes,
			Detail: fmt.Sprintf("covers no operation of the document (%s %s)", strings.Join(r.Methods, ","), r.Path)})
	}
	return rep
}

func sortedMethods(item *openapi3.PathItem) []string {
	var out []string
	for method := range item.Operations() {
		out = append(out, strings.ToUpper(method))
	}
	sort.Strings(out)
	return out
}

// basePath is the path part of the server that serves op: the operation's
// own servers, the path's, or the document's; server variables take their
// defaults.
func basePath(doc *openapi3.T, item *openapi3.PathItem, op *openapi3.Operation) string {
	servers := doc.Servers
	if len(item.Servers) > 0 {
		servers = item.Servers
	}
	if op.Servers != nil && len(*op.Servers) > 0 {
		servers = *op.Servers
	}
	if len(servers) == 0 {
		return ""
	}
	s := servers[0]
	raw := s.URL
	for name, v := range s.Variables {
		raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

func joinPath(base, template string) string {
	if base == "" {
		return template
	}
	return base + "/" + strings.TrimPrefix(template, "/")
}

var param = regexp.MustCompile(`\{[^}/]+\}`)

// sample instantiates the path parameters of an OpenAPI template with a
// value no literal route uses, so the route that decides it is the one
// that decides any value.
func sample(template string) string {
	return param.ReplaceAllString(template, "portcullis-sample-value")
}

// operationSecurity reads the operation's security (its own, else the
// document's): public when an empty requirement is allowed, and the OAuth2
// scopes of the first requirement that names an OAuth2 or OpenID Connect
// scheme. declared is false when the document says nothing.
func operationSecurity(doc *openapi3.T, op *openapi3.Operation) (public bool, scopes []string, declared bool) {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	if reqs == nil {
		return false, nil, false
	}
	if len(reqs) == 0 {
		return true, nil, true
	}
	for _, req := range reqs {
		if len(req) == 0 {
			return true, nil, true
		}
	}
	for _, req := range reqs {
		for name, s := range req {
			ref := doc.Components.SecuritySchemes[name]
			if ref == nil || ref.Value == nil {
				continue
			}
			if t := ref.Value.Type; t == "oauth2" || t == "openIdConnect" {
				return false, append([]string{}, s...), true
			}
		}
	}
	return false, nil, true
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
