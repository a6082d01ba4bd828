package authz

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"google.golang.org/grpc/codes"
)

func TestDecisionTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	readOnly := f.token(t, withScope("accounts:read"))
	noScopes := f.token(t, withScope(""))
	admin := f.token(t, withScope("users:admin core.users:act-on-behalf-of"))
	noTenant := f.token(t, func(cl map[string]any) { delete(cl, "tenant_id") })

	tests := []struct {
		name       string
		method     string
		path       string
		headers    [][2]string
		raw        bool
		wantStatus int
		wantReason string
	}{
		// path safety
		{"safe path allowed", "GET", "/v1/accounts/42", [][2]string{bearer(tok)}, false, 200, "allowed"},
		{"query string ignored for matching", "GET", "/v1/accounts/42?x=/../admin&y=%2F", [][2]string{bearer(tok)}, false, 200, "allowed"},
		{"dot-dot segment", "GET", "/v1/../admin", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"encoded slash", "GET", "/v1/accounts%2F42", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"encoded dot", "GET", "/v1/accounts/%2e%2e/x", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"double slash", "GET", "//v1/accounts", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"backslash", "GET", "/v1\\accounts", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"relative path", "GET", "v1/accounts", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"path parameter", "GET", "/v1/accounts/42;x=1", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"encoded semicolon", "GET", "/v1/accounts/42%3Bx=1", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"control byte", "GET", "/v1/accounts/4\x002", [][2]string{bearer(tok)}, false, 400, "invalid-path"},
		{"invalid path beats missing token", "GET", "/v1/../admin", nil, false, 400, "invalid-path"},
		// public routes
		{"public route without token", "GET", "/healthz", nil, false, 200, "public"},
		{"public route with a bad token", "GET", "/healthz", [][2]string{bearer("garbage")}, false, 200, "public"},
		{"public prefix route", "GET", "/.well-known/jwks.json", nil, false, 200, "public"},
		// token present
		{"no token", "GET", "/v1/accounts/42", nil, false, 401, "missing-token"},
		{"Basic scheme", "GET", "/v1/accounts/42", [][2]string{{"authorization", "Basic dXNlcjpwYXNz"}}, false, 401, "malformed-token"},
		{"empty bearer", "GET", "/v1/accounts/42", [][2]string{{"authorization", "Bearer "}}, false, 401, "malformed-token"},
		{"scheme only", "GET", "/v1/accounts/42", [][2]string{{"authorization", "Bearer"}}, false, 401, "malformed-token"},
		{"lower-case scheme accepted", "GET", "/v1/accounts/42", [][2]string{{"authorization", "bearer " + tok}}, false, 200, "allowed"},
		{"two Authorization headers (merged)", "GET", "/v1/accounts/42", [][2]string{bearer(tok), bearer(tok)}, false, 401, "malformed-token"},
		{"two Authorization headers (header_map)", "GET", "/v1/accounts/42", [][2]string{bearer(tok), bearer(tok)}, true, 401, "malformed-token"},
		{"token in header_map", "GET", "/v1/accounts/42", [][2]string{bearer(tok)}, true, 200, "allowed"},
		{"token with a space inside", "GET", "/v1/accounts/42", [][2]string{{"authorization", "Bearer ab cd"}}, false, 401, "malformed-token"},
		{"huge token", "GET", "/v1/accounts/42", [][2]string{bearer(strings.Repeat("a", 10<<10))}, false, 401, "malformed-token"},
		// route known
		{"authenticated request, no route", "GET", "/v1/unknown", [][2]string{bearer(tok)}, false, 403, "no-matching-route"},
		{"unauthenticated request, no route", "GET", "/v1/unknown", nil, false, 401, "missing-token"},
		{"method not routed", "PATCH", "/v1/cards", [][2]string{bearer(tok)}, false, 403, "no-matching-route"},
		{"case matters", "GET", "/V1/accounts/42", [][2]string{bearer(tok)}, false, 403, "no-matching-route"},
		// scopes
		{"scope held", "GET", "/v1/accounts", [][2]string{bearer(readOnly)}, false, 200, "allowed"},
		{"scope missing", "PUT", "/v1/accounts/42", [][2]string{bearer(readOnly)}, false, 403, "missing-scope"},
		{"no scopes at all", "GET", "/v1/accounts", [][2]string{bearer(noScopes)}, false, 403, "missing-scope"},
		{"all of several scopes needed", "GET", "/v1/accounts/42/transactions", [][2]string{bearer(tok)}, false, 403, "missing-scope"},
		// on-behalf-of
		{"user required, absent", "POST", "/v1/accounts", [][2]string{bearer(tok)}, false, 400, "user-context-required"},
		{"user required, present", "POST", "/v1/accounts", [][2]string{bearer(tok), obo("user 42")}, false, 200, "allowed"},
		{"user optional, absent", "GET", "/v1/accounts/42", [][2]string{bearer(tok)}, false, 200, "allowed"},
		{"user forbidden, present", "POST", "/v1/users/42/block", [][2]string{bearer(admin), obo("user 42")}, false, 400, "user-context-not-allowed"},
		{"user forbidden, absent", "POST", "/v1/users/42/block", [][2]string{bearer(admin)}, false, 200, "allowed"},
		{"on-behalf-of without the scope", "GET", "/v1/accounts", [][2]string{bearer(readOnly), obo("user 42")}, false, 403, "missing-scope"},
		{"obo: no id", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user")}, false, 400, "invalid-on-behalf-of"},
		{"obo: two spaces", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user  42")}, false, 400, "invalid-on-behalf-of"},
		{"obo: capital User", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("User 42")}, false, 400, "invalid-on-behalf-of"},
		{"obo: space in id", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 4 2")}, false, 400, "invalid-on-behalf-of"},
		{"obo: CR LF", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 42\r\nx-auth-user-id: 1")}, false, 400, "invalid-on-behalf-of"},
		{"obo: 10 KB id", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user " + strings.Repeat("9", 10<<10))}, false, 400, "invalid-on-behalf-of"},
		{"obo: two headers (merged)", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 42"), obo("user 43")}, false, 400, "invalid-on-behalf-of"},
		{"obo: two headers (header_map)", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 42"), obo("user 42")}, true, 400, "invalid-on-behalf-of"},
		{"obo: other kind", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("client 42")}, false, 400, "invalid-on-behalf-of"},
		// user directory
		{"unknown user", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 999")}, false, 403, "unknown-user"},
		{"user of another tenant", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user usr_7")}, false, 403, "unknown-user"},
		{"user without tenant is unknown to a tenant's token", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 44")}, false, 403, "unknown-user"},
		{"token without tenant acts for nobody", "GET", "/v1/accounts/42", [][2]string{bearer(noTenant), obo("user usr_7")}, false, 403, "unknown-user"},
		{"token without tenant, user without tenant", "GET", "/v1/accounts/42", [][2]string{bearer(noTenant), obo("user 44")}, false, 403, "unknown-user"},
		{"token without tenant, no on-behalf-of", "GET", "/v1/accounts/42", [][2]string{bearer(noTenant)}, false, 200, "allowed"},
		// blocked user
		{"blocked user GET", "GET", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 43")}, false, 200, "allowed"},
		{"blocked user HEAD", "HEAD", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 43")}, false, 200, "allowed"},
		{"blocked user POST", "POST", "/v1/accounts", [][2]string{bearer(tok), obo("user 43")}, false, 409, "user-blocked"},
		{"blocked user PUT", "PUT", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 43")}, false, 409, "user-blocked"},
		{"blocked user PATCH", "PATCH", "/v1/accounts/42", [][2]string{bearer(tok), obo("user 43")}, false, 409, "user-blocked"},
		{"blocked user DELETE", "DELETE", "/v1/accounts/42", [][2]string{bearer(f.token(t, withScope("accounts:write accounts:close core.users:act-on-behalf-of"))), obo("user 43")}, false, 409, "user-blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.az.check(t, tt.method, tt.path, tt.raw, tt.headers...)
			f.az.sameAnswerDecoded(t, tt.method, tt.path, tt.raw, tt.headers...)
			if r.status != tt.wantStatus || r.reason != tt.wantReason {
				t.Fatalf("got %d %s, want %d %s (body %s)", r.status, r.reason, tt.wantStatus, tt.wantReason, r.body)
			}
			if r.allowed {
				if r.grpcCode != codes.OK {
					t.Errorf("allow with gRPC code %v", r.grpcCode)
				}
				return
			}
			var body struct {
				Code    string   `json:"code"`
				Message string   `json:"message"`
				Reasons []string `json:"reasons"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || len(body.Reasons) != 1 || body.Reasons[0] != tt.wantReason || body.Message == "" {
				t.Errorf("denial body %q", r.body)
			}
			if r.headers["content-type"] != "application/json" || r.headers["cache-control"] != "no-store" {
				t.Errorf("denial headers %v", r.headers)
			}
			wantCode := map[int]codes.Code{400: codes.InvalidArgument, 401: codes.Unauthenticated, 403: codes.PermissionDenied, 409: codes.FailedPrecondition}[tt.wantStatus]
			if r.grpcCode != wantCode {
				t.Errorf("gRPC code %v, want %v", r.grpcCode, wantCode)
			}
			for _, h := range tt.headers {
				if strings.Contains(r.body, strings.TrimPrefix(h[1], "Bearer ")) && len(h[1]) > 20 {
					t.Errorf("denial body echoes a request header")
				}
			}
		})
	}
}

func TestBlockedUserBodyIsExact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.az.check(t, "POST", "/v1/accounts", false, bearer(f.token(t, nil)), obo("user 43"))
	want := `{
  "code": "operation-not-allowed",
  "message": "The current status of the user does not allow calling this endpoint",
  "reasons": ["user-blocked"]
}`
	if r.status != 409 || r.body != want || r.headers["content-type"] != "application/json" {
		t.Fatalf("got %d %q %v", r.status, r.body, r.headers)
	}
}

func TestUnknownAndCrossTenantUsersLookIdentical(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	unknown := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 999"))
	other := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user usr_7"))
	if unknown.status != other.status || unknown.body != other.body || unknown.grpcCode != other.grpcCode || len(unknown.headers) != len(other.headers) {
		t.Fatalf("responses differ:\n%+v\n%+v", unknown, other)
	}
}

func TestTenantlessClientsActForUsersOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	f := &fixture{}
	f.ec = newSigningKey(t, "ec-1", jwa.ES256)
	f.jwks = newJWKSServer(t, f.ec)
	cfg := testConfig(t, f.jwks.URL)
	cfg.Users.AllowTenantlessClients = true
	f.az = startAuthz(t, cfg, SystemClock{})
	f.az.waitReady(t)
	noTenant := f.token(t, func(cl map[string]any) { delete(cl, "tenant_id") })
	for _, user := range []string{"user usr_7", "user 42", "user 44"} {
		if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(noTenant), obo(user)); r.status != 200 || r.headers["x-auth-user-id"] != strings.TrimPrefix(user, "user ") {
			t.Errorf("%s: %d %s %v", user, r.status, r.reason, r.headers)
		}
	}
	// The setting does not loosen tenant-bound tokens.
	tok := f.token(t, nil)
	for _, user := range []string{"user usr_7", "user 44"} {
		if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo(user)); r.status != 403 || r.reason != "unknown-user" {
			t.Errorf("tenant token for %s: %d %s", user, r.status, r.reason)
		}
	}
}

func TestChallenges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	missing := f.az.check(t, "GET", "/v1/accounts/42", false)
	if got := missing.headers["www-authenticate"]; got != `Bearer realm="api"` {
		t.Errorf("missing token challenge %q (RFC 6750 §3.1: no error attribute)", got)
	}
	expired := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(f.token(t, func(cl map[string]any) {
		cl["exp"] = time.Now().Add(-time.Hour).Unix()
		cl["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	})))
	if got := expired.headers["www-authenticate"]; !strings.HasPrefix(got, `Bearer realm="api", error="invalid_token", error_description="`) {
		t.Errorf("expired token challenge %q", got)
	}
	scope := f.az.check(t, "GET", "/v1/accounts/42/transactions", false, bearer(f.token(t, nil)))
	if got := scope.headers["www-authenticate"]; got != `Bearer realm="api", error="insufficient_scope", scope="accounts:read transactions:read"` {
		t.Errorf("insufficient scope challenge %q", got)
	}
	oboScope := f.az.check(t, "GET", "/v1/accounts", false, bearer(f.token(t, withScope("accounts:read"))), obo("user 42"))
	if got := oboScope.headers["www-authenticate"]; !strings.Contains(got, `scope="core.users:act-on-behalf-of"`) {
		t.Errorf("on-behalf-of scope challenge %q", got)
	}
}

func TestTrustedHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	spoofed := [][2]string{bearer(tok), {"x-auth-user-id", "1"}, {"x-auth-client-id", "admin"}, {"x-auth-tenant-id", "globex"}, {"x-auth-scopes", "everything"}}

	t.Run("allow without user strips user header", func(t *testing.T) {
		r := f.az.check(t, "GET", "/v1/accounts/42", false, spoofed...)
		want := map[string]string{"x-auth-client-id": "client-1", "x-auth-scopes": "accounts:read accounts:write users:read core.users:act-on-behalf-of", "x-auth-tenant-id": "acme"}
		for k, v := range want {
			if r.headers[k] != v || r.setCount[k] != 1 {
				t.Errorf("%s = %q (set %d times), want %q", k, r.headers[k], r.setCount[k], v)
			}
		}
		if !containsAll(r.removed, "x-auth-user-id", "x-on-behalf-of") || len(r.removed) != 2 {
			t.Errorf("removed %v", r.removed)
		}
	})
	t.Run("on-behalf-of rewrites to the user header", func(t *testing.T) {
		r := f.az.check(t, "POST", "/v1/accounts", false, append(spoofed, obo("user 42"))...)
		if r.headers["x-auth-user-id"] != "42" || r.setCount["x-auth-user-id"] != 1 {
			t.Errorf("user header %v", r.headers)
		}
		if len(r.removed) != 1 || r.removed[0] != "x-on-behalf-of" {
			t.Errorf("removed %v", r.removed)
		}
	})
	t.Run("public route strips every trusted header", func(t *testing.T) {
		r := f.az.check(t, "GET", "/healthz", false, append(spoofed, obo("user 42"))...)
		if len(r.headers) != 0 || !containsAll(r.removed, "x-auth-user-id", "x-auth-client-id", "x-auth-tenant-id", "x-auth-scopes", "x-on-behalf-of") {
			t.Errorf("set %v removed %v", r.headers, r.removed)
		}
	})
	// CGI, WSGI and Rack-style upstreams read x_auth_user_id as
	// x-auth-user-id: underscore spellings are removed like the real names,
	// on every route, from headers and header_map alike.
	underscored := [][2]string{{"x_auth_user_id", "1"}, {"X_Auth_Tenant_Id", "globex"}, {"x_on_behalf_of", "user 42"}, {"x-auth_scopes", "everything"}, {"x_request_id", "kept"}}
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("underscore spellings removed (raw %v)", raw), func(t *testing.T) {
			for _, path := range []string{"/v1/accounts/42", "/healthz"} {
				r := f.az.check(t, "GET", path, raw, append([][2]string{bearer(tok)}, underscored...)...)
				if raw { // from the headers map, the names come in the map's order
					f.az.sameAnswerDecoded(t, "GET", path, raw, append([][2]string{bearer(tok)}, underscored...)...)
				}
				if !r.allowed || !containsAll(r.removed, "x_auth_user_id", "x_auth_tenant_id", "x_on_behalf_of", "x-auth_scopes") || containsAll(r.removed, "x_request_id") {
					t.Errorf("%s: allowed %v, removed %v", path, r.allowed, r.removed)
				}
			}
		})
	}
	t.Run("an on-behalf-of spelt with underscores is not read as one", func(t *testing.T) {
		r := f.az.check(t, "POST", "/v1/accounts", false, bearer(tok), [2]string{"x_on_behalf_of", "user 42"})
		if r.status != 400 || r.reason != "user-context-required" {
			t.Errorf("%d %s", r.status, r.reason)
		}
	})
	t.Run("token without tenant removes the tenant header", func(t *testing.T) {
		r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(f.token(t, func(cl map[string]any) { delete(cl, "tenant_id") })), [2]string{"x-auth-tenant-id", "globex"})
		if _, set := r.headers["x-auth-tenant-id"]; set || !containsAll(r.removed, "x-auth-tenant-id") {
			t.Errorf("set %v removed %v", r.headers, r.removed)
		}
	})
}
