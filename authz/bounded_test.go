package authz

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// paddedJWKS is a valid key set of keys, padded with whitespace to size
// bytes: only its size can make a verifier refuse it.
func paddedJWKS(t *testing.T, size int, keys ...signingKey) []byte {
	t.Helper()
	body := jwksBody(t, keys...)
	return append(body, bytes.Repeat([]byte(" "), size-len(body))...)
}

// TestOversizedJWKSIsRefusedAndKeysStay: a key set over token.jwks_max_bytes
// is refused, however it is framed, and the keys in use keep verifying.
func TestOversizedJWKSIsRefusedAndKeysStay(t *testing.T) {
	t.Parallel()
	for _, framing := range []string{"chunked", "content-length"} {
		t.Run(framing, func(t *testing.T) {
			t.Parallel()
			ec1, ec2 := newSigningKey(t, "ec-1", jwa.ES256), newSigningKey(t, "ec-2", jwa.ES256)
			jwks := newJWKSServer(t, ec1)
			cfg := testConfig(t, jwks.URL)
			cfg.Token.JWKSMaxBytes = 64 << 10
			az := startAuthz(t, cfg, SystemClock{})
			az.waitReady(t)

			// net/http frames a body this large as chunked unless told its length.
			jwks.mu.Lock()
			jwks.declareLength = framing == "content-length"
			jwks.mu.Unlock()
			jwks.setBody(http.StatusOK, paddedJWKS(t, 8<<20, ec1, ec2))
			// A token of ec-2 makes authz refetch for the unknown kid; the
			// 8 MiB answer would publish ec-2 if it were read.
			if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, ec2, nil, claims(time.Now())))); r.allowed || r.reason != "invalid-token" {
				t.Fatalf("key from an oversized JWKS: %d %s", r.status, r.reason)
			}
			if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, ec1, nil, claims(time.Now())))); !r.allowed {
				t.Fatalf("keys in use after an oversized JWKS: %d %s", r.status, r.reason)
			}
		})
	}
}

// TestOversizedUserServiceResponseIsRefused: a user record over
// users.max_response_bytes is an error (so the cache serves what it has),
// logged with the setting to change.
func TestOversizedUserServiceResponseIsRefused(t *testing.T) {
	t.Parallel()
	record := `{"id":"42","status":"active","tenant_id":"acme"}`
	svc := newUserService(t, map[string]string{
		"42":  record,
		"big": `{"id":"big","status":"active","tenant_id":"acme"}` + strings.Repeat(" ", 2<<20),
	})
	var logs bytes.Buffer
	d, err := NewHTTPDirectory(svc.URL+"/users/{id}", 5*time.Second, 4<<10, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.LookupUser(context.Background(), "42"); err != nil {
		t.Fatalf("a small record: %v", err)
	}
	_, err = d.LookupUser(context.Background(), "big")
	var tooLarge *ResponseTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Limit != 4<<10 {
		t.Fatalf("oversized record: %v", err)
	}
	if !strings.Contains(logs.String(), `"setting":"users.max_response_bytes"`) || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("log: %s", logs.String())
	}
}

func TestResponseLimitSettingsAreValidated(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	if cfg.Token.JWKSMaxBytes != 1<<20 || cfg.Users.MaxResponseBytes != 1<<20 {
		t.Fatalf("defaults: %d %d", cfg.Token.JWKSMaxBytes, cfg.Users.MaxResponseBytes)
	}
	cfg.Token.JWKSMaxBytes, cfg.Users.MaxResponseBytes = 10, 0
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "token.jwks_max_bytes") || !strings.Contains(err.Error(), "users.max_response_bytes") {
		t.Fatalf("%v", err)
	}
}
