package policy

import (
	"fmt"
	"strings"
	"testing"
)

func mustLoad(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := LoadBytes("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

const precedencePolicy = `
version: 1
routes:
  - {name: root, methods: [GET], path: /}
  - {name: everything, methods: [GET], path: /**}
  - {name: accounts, methods: [GET], path: /v1/accounts}
  - {name: accounts-slash, methods: [GET], path: /v1/accounts/}
  - {name: account, methods: [GET, DELETE], path: "/v1/accounts/{id}"}
  - {name: account-me, methods: [GET], path: /v1/accounts/me}
  - {name: account-any, methods: [GET, POST], path: /v1/accounts/*}
  - {name: account-sub, methods: [GET], path: "/v1/accounts/{id}/{sub}"}
  - {name: account-tx, methods: [GET], path: "/v1/accounts/{id}/transactions"}
  - {name: star-tx, methods: [GET], path: "/v1/*/{id}/transactions"}
  - {name: v1-rest, methods: [GET], path: /v1/**}
  - {name: head-only, methods: [HEAD], path: /v1/ping}
  - {name: get-ping, methods: [GET], path: /v1/ping}
  - {name: pair, methods: [PUT], path: "/v2/{a}/{b}"}
  - {name: files, methods: [GET], path: /v2/files/**}
`

func TestMatchPrecedence(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, precedencePolicy)
	tests := []struct {
		method, path string
		want         string // route name, "" for none
		params       map[string]string
	}{
		{"GET", "/", "root", nil},
		{"GET", "/anything/else", "everything", nil},
		{"GET", "/v1/accounts", "accounts", nil},
		{"GET", "/v1/accounts/", "accounts-slash", nil},
		{"GET", "/v1/accounts/me", "account-me", nil},
		{"GET", "/v1/accounts/42", "account", map[string]string{"id": "42"}},
		{"DELETE", "/v1/accounts/42", "account", map[string]string{"id": "42"}},
		// The param route does not allow POST, so the wildcard serves it.
		{"POST", "/v1/accounts/42", "account-any", nil},
		{"GET", "/v1/accounts/42/transactions", "account-tx", map[string]string{"id": "42"}},
		{"GET", "/v1/accounts/42/cards", "account-sub", map[string]string{"id": "42", "sub": "cards"}},
		// Literal "accounts" is tried first and fails deeper; the wildcard matches.
		{"GET", "/v1/cards/7/transactions", "star-tx", map[string]string{"id": "7"}},
		{"GET", "/v1/accounts/42/a/b", "v1-rest", nil},
		{"GET", "/v1", "v1-rest", nil}, // ** also matches nothing
		{"GET", "/V1/accounts", "everything", nil},
		// HEAD falls back to GET unless a route allows HEAD itself.
		{"HEAD", "/v1/accounts/42", "account", map[string]string{"id": "42"}},
		{"HEAD", "/v1/ping", "head-only", nil},
		{"GET", "/v1/ping", "get-ping", nil},
		{"PUT", "/v2/x/y", "pair", map[string]string{"a": "x", "b": "y"}},
		{"PUT", "/v2/x", "", nil},
		{"PUT", "/v2/x/y/z", "", nil},
		{"GET", "/v2/files/a/b/c.txt", "files", nil},
		{"POST", "/v2/files/a", "", nil},
		{"PATCH", "/v1/accounts/42", "", nil},
		{"BREW", "/v1/accounts", "", nil},
		{"get", "/v1/accounts", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var m Match
			p.Match(tt.method, tt.path, &m)
			got := ""
			if m.Route != nil {
				got = m.Route.Name
			}
			if got != tt.want {
				t.Fatalf("matched %q, want %q", got, tt.want)
			}
			if params := m.Params(); fmt.Sprint(params) != fmt.Sprint(tt.params) {
				t.Fatalf("params %v, want %v", params, tt.params)
			}
		})
	}
}

func TestEmptySegmentNeverBindsAParameter(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
version: 1
routes:
  - {name: account, methods: [GET], path: "/v1/accounts/{id}"}
  - {name: any, methods: [GET], path: /v1/accounts/*/x}
`)
	for _, path := range []string{"/v1/accounts/", "/v1/accounts//x"} {
		var m Match
		p.Match("GET", path, &m)
		if m.Route != nil {
			t.Errorf("%s matched %s", path, m.Route.Name)
		}
	}
}

func TestConflictsNameBothLocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		a, b     string
		conflict bool
	}{
		{"same params, different names", "/v1/accounts/{id}", "/v1/accounts/{accountId}", true},
		{"same literal", "/v1/accounts", "/v1/accounts", true},
		{"both double star", "/v1/**", "/v1/**", true},
		{"param vs star", "/v1/{id}", "/v1/*", false},
		{"literal vs param", "/v1/me", "/v1/{id}", false},
		{"trailing slash differs", "/v1/a", "/v1/a/", false},
		{"star vs double star", "/v1/*", "/v1/**", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf("version: 1\nroutes:\n  - name: first\n    methods: [GET, POST]\n    path: %s\n  - name: second\n    methods: [POST]\n    path: %s\n", tt.a, tt.b)
			_, err := LoadBytes("team.yaml", []byte(doc))
			if !tt.conflict {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("conflict not detected")
			}
			msg := err.Error()
			if !strings.Contains(msg, "team.yaml:6:5") || !strings.Contains(msg, "team.yaml:3:5") || !strings.Contains(msg, "POST") {
				t.Fatalf("conflict message should name both routes and the method: %s", msg)
			}
		})
	}
}

func TestConflictAcrossFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "version: 1\nroutes:\n  - {name: a, methods: [GET], path: '/v1/x/{id}'}\n")
	writeFile(t, dir, "b.yaml", "version: 1\nroutes:\n  - {name: b, methods: [GET], path: '/v1/x/{other}'}\n")
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "a.yaml:3:5") || !strings.Contains(err.Error(), "b.yaml:3:5") {
		t.Fatalf("error should name both files: %v", err)
	}
}

func TestSamplePolicyLoads(t *testing.T) {
	t.Parallel()
	p, err := Load("../examples/policy")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Routes()) < 15 || len(p.Files) != 4 {
		t.Fatalf("%d routes in %d files", len(p.Routes()), len(p.Files))
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p := mustLoad(t, precedencePolicy)
	for _, path := range []string{"/v1/accounts/me", "/v1/accounts/42/transactions"} {
		allocs := testing.AllocsPerRun(100, func() {
			var m Match
			p.Match("GET", path, &m)
			_, _ = m.Param("id")
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per match", path, allocs)
		}
	}
}
