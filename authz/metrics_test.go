package authz

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestAdminEndpointsAndMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	f.az.check(t, "GET", "/v1/accounts/42", false)
	f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42"))
	f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42"))
	admin := "http://" + f.az.srv.AdminAddr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if s, _ := get("/healthz"); s != 200 {
		t.Fatalf("/healthz %d", s)
	}
	if s, body := get("/readyz"); s != 200 || !strings.Contains(body, "version: ") {
		t.Fatalf("/readyz %d %q: ready, and which build", s, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`portcullis_authz_checks_total{outcome="deny",reason="missing-token"} 1`,
		`portcullis_authz_checks_total{outcome="allow",reason="allowed"} 2`,
		`portcullis_authz_check_duration_seconds_count 3`,
		`portcullis_authz_token_verifications_total 1`,
		`portcullis_authz_jwks_fetches_total{result="success"}`,
		`portcullis_authz_user_lookups_total{result="found"} 1`,
		`portcullis_authz_user_lookups_total{result="hit"} 1`,
		`portcullis_authz_token_cache_hits_total 1`,
		`portcullis_authz_token_cache_misses_total 1`,
		`portcullis_authz_user_cache_hits_total 1`,
		`portcullis_authz_user_cache_misses_total 1`,
		`portcullis_policy_reloads_total{result="success"} 1`,
		`portcullis_policy_routes 22`,
		`portcullis_build_info{go_version="go1.`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
