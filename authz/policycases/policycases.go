// Package policycases runs policy test cases (a YAML list of requests and
// expected outcomes) through the real authz decision, so platform engineers
// can test their route policy in CI as they would with `opa test`.
package policycases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/internal/configfile"
	"github.com/portcullis/portcullis/internal/suggest"
	"github.com/portcullis/portcullis/policy"
)

// File is a cases file.
type File struct {
	Version int    `yaml:"version"`
	Cases   []Case `yaml:"cases"`
}

// Case is one request and its expected outcome.
type Case struct {
	Name   string `yaml:"name"`
	Method string `yaml:"method"`
	// Path may carry a query string, as Envoy's :path does.
	Path string `yaml:"path"`
	// Token says whether a valid bearer token is sent (default true).
	Token *bool `yaml:"token"`
	// Scopes the token holds.
	Scopes []string `yaml:"scopes"`
	// TenantID is the token's tenant_id claim: a test tenant when unset,
	// none when set to "" (such a token acts for nobody, as in production
	// unless users.allow_tenantless_clients is on).
	TenantID *string `yaml:"tenant_id"`
	// OnBehalfOf is the raw X-On-Behalf-Of value, e.g. "user 42".
	OnBehalfOf string `yaml:"on_behalf_of"`
	// User describes the on-behalf-of user in the directory.
	User *CaseUser `yaml:"user"`
	// Expect is "allow", "public" (allowed by a public route) or the denial
	// reason, e.g. "missing-scope".
	Expect string `yaml:"expect"`
	// Status optionally pins the HTTP status (200 for allow).
	Status int `yaml:"status"`
	// Route optionally pins the name of the matched route.
	Route string `yaml:"route"`

	line int
}

// CaseUser is the directory entry of the on-behalf-of user.
type CaseUser struct {
	// Status is active (default), blocked, or unknown (not in the directory).
	Status   string `yaml:"status"`
	TenantID string `yaml:"tenant_id"`
}

// Line is the line of the cases file where the case begins.
func (c Case) Line() int { return c.line }

// Result is the outcome of one case.
type Result struct {
	Case   Case
	Passed bool
	// Got describes the actual outcome.
	Got string
	// Route is the route that decided the case (nil: none matched).
	Route *policy.Route
}

// expectations are what a case may expect: allow, public, or a reason.
func expectations() []string {
	out := []string{"allow", "public"}
	for _, r := range authz.DenialReasons() {
		out = append(out, string(r))
	}
	slices.Sort(out)
	return out
}

// Load reads and checks a cases file.
func Load(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Strictly, in the file's words: an unknown key with the closest known
	// one, a value of the wrong kind, each at its line and column.
	var f File
	if err := configfile.Decode(path, data, &f); err != nil {
		return nil, err
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: write `version: 1` at the top", path)
	}
	lines := caseLines(&doc)
	var errs []error
	for i := range f.Cases {
		c := &f.Cases[i]
		if i < len(lines) {
			c.line = lines[i]
		}
		where := fmt.Sprintf("%s:%d", path, c.line)
		if c.Name == "" {
			c.Name = fmt.Sprintf("case %d", i+1)
		}
		if c.Method == "" || c.Path == "" {
			errs = append(errs, fmt.Errorf("%s: case %q needs method and path", where, c.Name))
		}
		if c.Expect == "" {
			errs = append(errs, fmt.Errorf("%s: case %q needs expect: allow, or a denial reason such as missing-scope", where, c.Name))
		} else if !slices.Contains(expectations(), c.Expect) {
			msg := fmt.Sprintf("%s: case %q: expect %q is not allow, public or a denial reason", where, c.Name, c.Expect)
			if near := suggest.Closest(c.Expect, expectations()); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			errs = append(errs, errors.New(msg))
		}
		if c.User != nil {
			switch c.User.Status {
			case "", "active", "blocked", "unknown":
			default:
				errs = append(errs, fmt.Errorf("%s: case %q: user.status %q is not active, blocked or unknown", where, c.Name, c.User.Status))
			}
		}
	}
	return f.Cases, errors.Join(errs...)
}

func caseLines(doc *yaml.Node) []int {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "cases" {
			var lines []int
			for _, item := range root.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

// Run decides every case against pol.
func Run(ctx context.Context, pol *policy.Policy, cases []Case) []Result {
	results := make([]Result, 0, len(cases))
	for _, c := range cases {
		results = append(results, runCase(ctx, pol, c))
	}
	return results
}

// caseTenant is the token's tenant when a case names none; the case's user
// belongs to it unless the case says otherwise.
const caseTenant = "policy-test-tenant"

// caseToken is the bearer token a case sends; the case's verifier knows it.
const caseToken = "policy-test-token"

func runCase(ctx context.Context, pol *policy.Policy, c Case) Result {
	tenant := caseTenant
	if c.TenantID != nil {
		tenant = *c.TenantID
	}
	verifier := caseVerifier{claims: authz.Claims{ClientID: "policy-test-client", Scope: strings.Join(c.Scopes, " "), Scopes: c.Scopes, TenantID: tenant, Expiry: time.Now().Add(time.Hour)}}
	decider := authz.NewDecider(staticPolicy{pol}, verifier, caseDirectory{c.User, tenant}, authz.DeciderConfig{Headers: authz.DefaultHeaderNames(), Realm: "api"})
	req := authz.Request{Method: c.Method, Path: c.Path}
	if c.Token == nil || *c.Token {
		req.Authorization.Add("Bearer " + caseToken)
	}
	if c.OnBehalfOf != "" {
		req.OnBehalfOf.Add(c.OnBehalfOf)
	}
	dec := decider.Decide(ctx, &req)
	got, status := string(dec.Reason), 200
	if dec.Allowed() && dec.Reason != authz.ReasonPublic {
		got = "allow"
	}
	if !dec.Allowed() {
		status = dec.Denial.Status
	}
	routeName := ""
	if dec.Route != nil {
		routeName = dec.Route.Name
	}
	// "allow" accepts any allow; "public" only an allow by a public route.
	passed := got == c.Expect || (c.Expect == "allow" && dec.Allowed())
	if c.Status != 0 && c.Status != status {
		passed = false
	}
	if c.Route != "" && c.Route != routeName {
		passed = false
	}
	desc := fmt.Sprintf("%d %s", status, got)
	if routeName != "" {
		desc += " (route " + routeName + ")"
	} else {
		desc += " (no route)"
	}
	return Result{Case: c, Passed: passed, Got: desc, Route: dec.Route}
}

// Unexercised returns the routes of pol that decided none of the cases, in
// the policy's order: the routes a change could break unnoticed.
func Unexercised(pol *policy.Policy, results []Result) []*policy.Route {
	hit := map[*policy.Route]bool{}
	for _, r := range results {
		if r.Route != nil {
			hit[r.Route] = true
		}
	}
	var out []*policy.Route
	for _, route := range pol.Routes() {
		if !hit[route] {
			out = append(out, route)
		}
	}
	return out
}

// ReportCoverage writes which routes no case exercises, with where each is
// defined, and returns how many.
func ReportCoverage(w io.Writer, pol *policy.Policy, results []Result) int {
	missed := Unexercised(pol, results)
	total := len(pol.Routes())
	fmt.Fprintf(w, "coverage: %d of %d routes exercised\n", total-len(missed), total)
	for _, r := range missed {
		fmt.Fprintf(w, "  not exercised: %s %s %s (%s)\n", r.Name, strings.Join(r.Methods, ","), r.Path, r.Source)
	}
	return len(missed)
}

// Report writes a readable report and returns the failure count.
func Report(w io.Writer, casesPath string, results []Result) int {
	failed := 0
	for _, r := range results {
		if r.Passed {
			fmt.Fprintf(w, "PASS  %s\n", r.Case.Name)
			continue
		}
		failed++
		want := r.Case.Expect
		if r.Case.Status != 0 {
			want = fmt.Sprintf("%d %s", r.Case.Status, want)
		}
		if r.Case.Route != "" {
			want += " (route " + r.Case.Route + ")"
		}
		fmt.Fprintf(w, "FAIL  %s\n      %s:%d: %s %s: want %s, got %s\n", r.Case.Name, casesPath, r.Case.line, r.Case.Method, r.Case.Path, want, r.Got)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	return failed
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Current() *policy.Policy { return s.p }

// caseVerifier accepts exactly the case's token, with the case's claims.
type caseVerifier struct{ claims authz.Claims }

func (v caseVerifier) Verify(_ context.Context, token string) (authz.Claims, error) {
	if token != caseToken {
		return authz.Claims{}, &authz.TokenError{Reason: authz.ReasonInvalidToken, Cause: errors.New("not the case's token")}
	}
	return v.claims, nil
}

// caseDirectory holds the case's on-behalf-of user, whatever its ID.
type caseDirectory struct {
	user        *CaseUser
	tokenTenant string
}

func (d caseDirectory) LookupUser(_ context.Context, id string) (authz.User, error) {
	u := authz.User{ID: id, Status: authz.UserActive, TenantID: d.tokenTenant}
	if u.TenantID == "" {
		// A tenantless token's case user belongs to some tenant.
		u.TenantID = caseTenant
	}
	if d.user != nil {
		switch d.user.Status {
		case "unknown":
			return authz.User{}, authz.ErrUserNotFound
		case "blocked":
			u.Status = authz.UserBlocked
		}
		if d.user.TenantID != "" {
			u.TenantID = d.user.TenantID
		}
	}
	return u, nil
}
