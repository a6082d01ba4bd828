package authz

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// TestJWKSIsRefreshedInTheBackground: with unknown-kid refetches throttled,
// a newly published key is still learned by the periodic refresh.
func TestJWKSIsRefreshedInTheBackground(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	cfg.Token.JWKSRefreshInterval = time.Second
	cfg.Token.JWKSMinRefetchInterval = time.Hour
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	next := newSigningKey(t, "ec-2", jwa.ES256)
	tok := sign(t, next, nil, claims(time.Now()))
	// This uses up the one refetch the interval allows.
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.reason != "invalid-token" {
		t.Fatalf("unpublished key: %s", r.reason)
	}
	jwks.setKeys(t, ec, next)
	waitUntil(t, "the background refresh to bring the new key", func() bool {
		return az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)).allowed
	})
}

// TestDiscoveryRefusesMetadataOfAnotherIssuer: RFC 8414 §3.3, the metadata's
// issuer must be the configured one, or its jwks_uri is not trusted.
func TestDiscoveryRefusesMetadataOfAnotherIssuer(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	var metaHits atomic.Int64
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": "https://impostor.test", "jwks_uri": jwks.URL})
		metaHits.Add(1)
	}))
	t.Cleanup(meta.Close)
	cfg := testConfig(t, "")
	cfg.Token.Issuer = meta.URL
	az := startAuthz(t, cfg, SystemClock{})
	cl := claims(time.Now())
	cl["iss"] = meta.URL
	tok := sign(t, ec, nil, cl)
	// Wait for discovery attempts, not for time.
	waitUntil(t, "two discovery attempts", func() bool { return metaHits.Load() >= 2 })
	if az.srv.Ready() {
		t.Fatal("ready with keys from another issuer's metadata")
	}
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.status != 503 {
		t.Fatalf("check: %d %s", r.status, r.reason)
	}
}

func TestAcceptJWTTypeSetting(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	cfg.Token.AcceptJWTType = true
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	for typ, want := range map[string]string{"JWT": "allowed", "at+jwt": "allowed", "id+jwt": "invalid-token"} {
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, ec, map[string]any{"typ": typ}, claims(time.Now())))); r.reason != want {
			t.Errorf("typ %q with accept_jwt_type: %s, want %s", typ, r.reason, want)
		}
	}
}
