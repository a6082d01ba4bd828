package authz

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/tokenissuer/issuertest"
	issuerkeys "github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

func startRealIssuer(t *testing.T, alg string, configure func(*server.Config)) *issuertest.Issuer {
	return issuertest.Start(t, issuertest.Options{Algorithm: alg, Audience: testAudience, TenantID: "acme",
		Scopes: []string{"accounts:read", "accounts:write", ActOnBehalfOfScope}, Configure: configure})
}

func TestTokensFromTheRealIssuer(t *testing.T) {
	t.Parallel()
	for _, alg := range issuerkeys.SupportedAlgorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			iss := startRealIssuer(t, alg, nil)
			cfg := testConfig(t, "") // JWKS URL discovered from RFC 8414 metadata
			cfg.Token.Issuer = iss.URL
			az := startAuthz(t, cfg, SystemClock{})
			az.waitReady(t)
			full := iss.Token(t, "")
			if r := az.check(t, "POST", "/v1/accounts", false, bearer(full), obo("user 42")); !r.allowed || r.headers["x-auth-client-id"] != "acme-app" || r.headers["x-auth-tenant-id"] != "acme" || r.headers["x-auth-user-id"] != "42" {
				t.Fatalf("issued token: %d %s %v", r.status, r.reason, r.headers)
			}
			narrowed := iss.Token(t, "accounts:read")
			if r := az.check(t, "PUT", "/v1/accounts/42", false, bearer(narrowed)); r.reason != "missing-scope" {
				t.Fatalf("narrowed token on a write route: %s", r.reason)
			}
		})
	}
}

// TestIssuerKeyRotationWithoutFailedRequests rotates the issuer's key while
// clients keep getting tokens and calling: no check may fail.
func TestIssuerKeyRotationWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	iss := startRealIssuer(t, "ES256", func(c *server.Config) {
		c.Keys.JWKSMaxAge, c.Keys.PublishDelay, c.Keys.ReloadInterval = time.Second, 1500*time.Millisecond, 100*time.Millisecond
	})
	cfg := testConfig(t, "")
	cfg.Token.Issuer = iss.URL
	cfg.Token.JWKSMinRefetchInterval = time.Second
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)

	kidOf := func(tok string) string {
		hdr, _, _ := strings.Cut(tok, ".")
		raw, _ := decodeB64(hdr)
		var h struct{ Kid string }
		json.Unmarshal(raw, &h)
		return h.Kid
	}
	oldKID := kidOf(iss.Token(t, ""))
	newKey, err := iss.Server.Keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Request tokens and checks until the new key has signed a few times;
	// the deadline only catches a key that never signs.
	seenNew, newSigned := false, 0
	deadline := time.Now().Add(time.Minute)
	for i := 0; newSigned < 5; i++ {
		if time.Now().After(deadline) {
			break
		}
		tok := iss.Token(t, "")
		kid := kidOf(tok)
		if kid != oldKID && kid != newKey.KID {
			t.Fatalf("token signed by unexpected kid %s", kid)
		}
		if kid == newKey.KID {
			seenNew = true
			newSigned++
		}
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
			t.Fatalf("request %d (kid %s) failed during rotation: %d %s", i, kid, r.status, r.reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !seenNew {
		t.Fatal("the new key never signed")
	}
}
