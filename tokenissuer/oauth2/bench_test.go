package oauth2_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// BenchmarkTokenEndpoint measures full client credentials token requests over
// real HTTP with keep-alive and parallel clients, for each signing algorithm.
// Compare against BenchmarkSign to see how much of the cost is signing.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, alg := range keys.SupportedAlgorithms {
		b.Run(alg, func(b *testing.B) {
			cfg := testConfig(b.TempDir())
			cfg.Keys.Algorithm = alg
			cfg.ClientCacheTTL = server.DefaultConfig().ClientCacheTTL
			ti := startIssuer(b, cfg, tokenissuer.SystemClock{})
			c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"accounts:read", "accounts:write"}})
			benchTokenRequests(b, ti, func() string { return "grant_type=client_credentials" }, basic(c.ID, secret))
		})
	}
}

// benchTokenRequests sends token requests of body (and Authorization auth,
// when set) from parallel clients with keep-alive, each answered 200.
func benchTokenRequests(b *testing.B, ti *testIssuer, body func() string, auth string) {
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: transport}
	b.Cleanup(transport.CloseIdleConnections)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, ti.http.URL+"/oauth2/token", strings.NewReader(body()))
			req.Header.Set("Content-Type", formType)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkSign measures minting alone: the floor of the endpoint's cost.
func BenchmarkSign(b *testing.B) {
	for _, alg := range keys.SupportedAlgorithms {
		b.Run(alg, func(b *testing.B) {
			cfg := testConfig(b.TempDir())
			cfg.Keys.Algorithm = alg
			ti := startIssuer(b, cfg, tokenissuer.SystemClock{})
			c, _ := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := ti.server.Mint(c, c.Scopes, ti.clock.Now()); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkFailedAuthentication compares a wrong secret for a client that
// exists with any secret for a client ID that does not: the two must cost
// the same, or timing tells an attacker which client IDs exist. Both IDs
// are in the client cache (the known client's record, the unknown ID's
// absence) and both spend one keyed hash. The failure limit is off so that
// every request reaches authentication.
func BenchmarkFailedAuthentication(b *testing.B) {
	cfg := testConfig(b.TempDir())
	cfg.ClientCacheTTL = time.Hour
	cfg.RateLimit.MaxFailures = 0
	ti := startIssuer(b, cfg, tokenissuer.SystemClock{})
	c, _ := ti.createClient(tokenissuer.NewClient{ID: "known-client-0001", Scopes: []string{"a"}})
	h := ti.server.Handler()
	for _, tc := range []struct{ name, id string }{{"known client, wrong secret", c.ID}, {"unknown client", "nobody-client-001"}} {
		b.Run(tc.name, func(b *testing.B) {
			body := "grant_type=client_credentials&client_id=" + tc.id + "&client_secret=" + strings.Repeat("s", 43)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
				req.Header.Set("Content-Type", formType)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkClientAuthentication compares a token request authenticated
// with private_key_jwt (an EdDSA or ES256 assertion, a fresh jti each, its
// ID recorded in the store) against one with client_secret_basic, in the
// same run: the price of holding no shared secret.
func BenchmarkClientAuthentication(b *testing.B) {
	cfg := testConfig(b.TempDir())
	cfg.Keys.Algorithm = "EdDSA"
	cfg.ClientCacheTTL = server.DefaultConfig().ClientCacheTTL
	cfg.RateLimit.TokensPerMinute = 0
	ti := startIssuer(b, cfg, tokenissuer.SystemClock{})
	c, secret := ti.createClient(tokenissuer.NewClient{ID: "with-secret", Scopes: []string{"a"}})
	edKey, esKey := newClientKey(b, "ed", jwa.EdDSA), newClientKey(b, "es", jwa.ES256)
	signer, _ := ti.createClient(tokenissuer.NewClient{ID: "with-keys", Scopes: []string{"a"}, Keys: tokenissuer.ClientKeys{JWKS: jwks(b, edKey, esKey), Only: true}})
	b.Run("client_secret_basic", func(b *testing.B) {
		benchTokenRequests(b, ti, func() string { return "grant_type=client_credentials" }, basic(c.ID, secret))
	})
	for _, k := range []clientKey{edKey, esKey} {
		b.Run("private_key_jwt/"+k.alg.String(), func(b *testing.B) {
			// Signing the assertion is the client's work, timed here too:
			// the ratio is an upper bound of the issuer's extra cost.
			benchTokenRequests(b, ti, func() string { return assertionForm(assertion(b, k, signer.ID, ti.cfg.Issuer, time.Now())) }, "")
		})
	}
}
