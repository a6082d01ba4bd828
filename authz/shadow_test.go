package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/portcullis/portcullis/policy"
)

// shadowPolicy is the sample policy with edits a reviewer might miss: a
// scope added, a route dropped, a route made public, a user rule changed.
func shadowPolicy(t testing.TB) string {
	dir := copyDir(t, "../examples/policy")
	edit := func(file, old, new string) {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), old) {
			t.Fatalf("%s has no %q", file, old)
		}
		os.WriteFile(filepath.Join(dir, file), []byte(strings.Replace(string(raw), old, new, 1)), 0o600)
	}
	edit("accounts.yaml", "    path: /v1/accounts/{accountId}\n    scopes: [accounts:read]", "    path: /v1/accounts/{accountId}\n    scopes: [accounts:read, accounts:details]")
	edit("cards.yaml", "  - name: list-cards\n    methods: [GET]\n    path: /v1/cards\n    scopes: [cards:read]\n", "")
	edit("users.yaml", "    path: /v1/users/{userId}\n    scopes: [users:read]", "    path: /v1/users/{userId}\n    public: true")
	edit("users.yaml", "    scopes: [users:read]\n    user: required", "    scopes: [users:read]\n    user: optional")
	return dir
}

func TestShadowPolicyIsEvaluatedButNeverDecides(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	f := newDeciderFixture(t, []string{"ES256"}, ec)
	shadow, err := policy.Load(shadowPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	f.decider.cfg.Shadow = staticPolicy{shadow}
	all := "accounts:read accounts:write users:read cards:read core.users:act-on-behalf-of"
	token := sign(t, ec, nil, func() map[string]any { c := claims(time.Now()); c["scope"] = all; return c }())
	for name, tc := range map[string]struct {
		method, path string
		token        bool
		obo          string
		live, shadow Reason
		shadowRoute  string
	}{
		"same outcome":                       {"GET", "/v1/accounts", true, "", ReasonAllowed, ReasonAllowed, "list-accounts"},
		"a scope added in the shadow":        {"GET", "/v1/accounts/42", true, "", ReasonAllowed, ReasonMissingScope, "get-account"},
		"a route dropped in the shadow":      {"GET", "/v1/cards", true, "", ReasonAllowed, ReasonNoMatchingRoute, ""},
		"made public in the shadow":          {"GET", "/v1/users/42", false, "", ReasonMissingToken, ReasonPublic, "get-user"},
		"a user rule relaxed in the shadow":  {"GET", "/v1/users/me", true, "", ReasonUserContextRequired, ReasonAllowed, "me"},
		"a bad token fails both":             {"GET", "/v1/accounts", false, "", ReasonMissingToken, ReasonMissingToken, "list-accounts"},
		"path safety is the same for both":   {"GET", "/v1/accounts/../x", true, "", ReasonInvalidPath, "", ""},
		"user steps are the live decision's": {"POST", "/v1/accounts", true, "user 43", ReasonUserBlocked, ReasonUserBlocked, "open-account"},
	} {
		req := Request{Method: tc.method, Path: tc.path}
		if tc.token {
			req.Authorization.Add("Bearer " + token)
		}
		if tc.obo != "" {
			req.OnBehalfOf.Add(tc.obo)
		}
		dec := f.decider.Decide(context.Background(), &req)
		routeName := ""
		if dec.ShadowRoute != nil {
			routeName = dec.ShadowRoute.Name
		}
		if dec.Reason != tc.live || dec.ShadowReason != tc.shadow || routeName != tc.shadowRoute {
			t.Errorf("%s: live %s, shadow %s (%s); want %s, %s (%s)", name, dec.Reason, dec.ShadowReason, routeName, tc.live, tc.shadow, tc.shadowRoute)
		}
	}
}

// TestShadowPolicyAddsNoAllocation: not parallel, as AllocsPerRun needs.
func TestShadowPolicyAddsNoAllocation(t *testing.T) {
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	f := newDeciderFixture(t, []string{"ES256"}, ec)
	shadow, err := policy.Load(shadowPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	c := claims(time.Now())
	c["scope"] = "accounts:read"
	req := Request{Method: "GET", Path: "/v1/accounts/42"}
	req.Authorization.Add("Bearer " + sign(t, ec, nil, c))
	decide := func() { f.decider.Decide(context.Background(), &req) }
	decide() // the token is verified and cached once
	without := testing.AllocsPerRun(200, decide)
	f.decider.cfg.Shadow = staticPolicy{shadow}
	if with := testing.AllocsPerRun(200, decide); with > without {
		t.Errorf("a shadow policy adds allocations: %.0f with, %.0f without", with, without)
	}
}

func TestShadowDisagreementsAreCounted(t *testing.T) {
	t.Parallel()
	iss := startRealIssuer(t, "ES256", nil)
	cfg := testConfig(t, "")
	cfg.Token.Issuer = iss.URL
	cfg.ShadowPolicy = shadowPolicy(t)
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	waitUntil(t, "the shadow policy to load", func() bool { return az.srv.Shadow.Current() != nil })
	tok := iss.Token(t, "accounts:read")
	for range 3 {
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
			t.Fatalf("the shadow decided: %s", r.reason)
		}
	}
	families, err := az.srv.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "portcullis_policy_shadow_disagreements_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["live_reason"] == "allowed" && labels["shadow_reason"] == "missing-scope" && m.GetCounter().GetValue() == 3 {
				return
			}
		}
		t.Fatalf("disagreements: %v", fam)
	}
	t.Fatal("no portcullis_policy_shadow_disagreements_total")
}
