package policy

import (
	"strings"
	"testing"
)

func TestDiffFindsEveryDecisionThatChanges(t *testing.T) {
	t.Parallel()
	old := mustLoad(t, `version: 1
routes:
  - {name: health, methods: [GET], path: /healthz, public: true}
  - {name: list-accounts, methods: [GET], path: /v1/accounts, scopes: [accounts:read]}
  - {name: get-account, methods: [GET], path: "/v1/accounts/{id}", scopes: [accounts:read]}
  - {name: close-account, methods: [DELETE], path: "/v1/accounts/{id}", scopes: [accounts:write, accounts:close], user: required}
  - {name: get-user, methods: [GET], path: "/v1/users/{id}", scopes: [users:read]}
  - {name: reports, methods: [GET], path: "/v1/reports/**", scopes: [reports:read]}
  - {name: legacy, methods: [POST], path: /v1/legacy, scopes: [legacy:write]}
`)
	new := mustLoad(t, `version: 1
routes:
  - {name: health, methods: [GET], path: /healthz, public: true}
  - {name: list-accounts, methods: [GET], path: /v1/accounts, scopes: [accounts:read]}
  - {name: get-account, methods: [GET], path: "/v1/accounts/{id}", scopes: [accounts:read, accounts:details]}
  - {name: close-account, methods: [DELETE], path: "/v1/accounts/{id}", scopes: [accounts:write], user: optional}
  - {name: get-user, methods: [GET], path: "/v1/users/{id}", scopes: [users:read]}
  - {name: me, methods: [GET], path: /v1/users/me, public: true}
  - {name: reports, methods: [GET], path: "/v1/reports/**", scopes: [reports:read]}
  - {name: export, methods: [GET], path: /v1/reports/export, scopes: [reports:export]}
`)
	changes := Diff(old, new)
	var got []string
	for _, c := range changes {
		got = append(got, string(c.Kind)+" "+c.Method+" "+c.Path+" "+c.OldRoute+">"+c.NewRoute)
		if (c.OldRoute != "" && c.OldLocation == "") || (c.NewRoute != "" && c.NewLocation == "") {
			t.Errorf("a change without its location: %+v", c)
		}
	}
	want := []string{
		"more-scopes GET /v1/accounts/{id} get-account>get-account",
		"fewer-scopes DELETE /v1/accounts/{id} close-account>close-account",
		"user-rule-changed DELETE /v1/accounts/{id} close-account>close-account",
		"no-longer-routed POST /v1/legacy legacy>",
		// A literal route added beside a parameter: the boundary is probed.
		"now-public GET /v1/users/me get-user>me",
		"scopes-changed GET /v1/reports/export reports>export",
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("missing change %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d changes, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	if len(Diff(old, old)) != 0 {
		t.Error("a policy differs from itself")
	}
	// Newly routed, the other way round.
	back := Diff(new, old)
	routed := false
	for _, c := range back {
		routed = routed || (c.Kind == NewlyRouted && c.Method == "POST" && c.Path == "/v1/legacy")
	}
	if !routed {
		t.Errorf("reverse diff lacks newly-routed POST /v1/legacy: %v", back)
	}
}
