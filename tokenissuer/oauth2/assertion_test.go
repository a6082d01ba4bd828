package oauth2_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
)

// clientKey is a key pair a client signs its assertions with (made by the
// test, for tests only).
type clientKey struct {
	private jwk.Key
	public  jwk.Key
	alg     jwa.SignatureAlgorithm
}

func newClientKey(t testing.TB, kid string, alg jwa.SignatureAlgorithm) clientKey {
	t.Helper()
	var raw any
	switch alg {
	case jwa.ES256:
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		raw = k
	case jwa.EdDSA:
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		raw = k
	}
	private, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	private.Set(jwk.KeyIDKey, kid)
	public, err := private.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{private: private, public: public, alg: alg}
}

// jwks is the public JWKS of keys.
func jwks(t testing.TB, keys ...clientKey) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		set.AddKey(k.public)
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertion is a client assertion for clientID at aud, changed by edit.
func assertion(t testing.TB, k clientKey, clientID, aud string, now time.Time, edit ...func(*jwt.Builder)) string {
	t.Helper()
	b := jwt.NewBuilder().Issuer(clientID).Subject(clientID).Audience([]string{aud}).IssuedAt(now).
		Expiration(now.Add(time.Minute)).JwtID(tokenissuer.RandomID(12))
	for _, e := range edit {
		e(b)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(k.alg, k.private))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func assertionForm(a string) string {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {oauth2.AssertionType}, "client_assertion": {a}}.Encode()
}

// TestPrivateKeyJWTClients: a client with registered keys and no secret
// gets tokens with assertions it signs; every assertion that is forged,
// replayed, expired, long-lived, for another audience or issuer, signed
// with HMAC (the public key as its secret) or not at all is refused as
// invalid_client; mixing methods is invalid_request.
func TestPrivateKeyJWTClients(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 100 // every refusal below is counted; none may be a 429
	ti := startIssuer(t, cfg, clock)
	key := newClientKey(t, "k1", jwa.ES256)
	c, secret := ti.createClient(tokenissuer.NewClient{ID: "signer", Scopes: []string{"a"}, Keys: tokenissuer.ClientKeys{JWKS: jwks(t, key), Only: true}})
	if secret != "" || len(c.Secrets) != 0 {
		t.Fatalf("a private_key_jwt-only client was given a secret: %q", secret)
	}
	if _, _, _, err := ti.admin.RotateSecret(operatorContext(), c.ID); err == nil {
		t.Fatal("a secret was made for a private_key_jwt-only client")
	}
	aud := ti.cfg.Issuer + "/oauth2/token"
	now := clock.Now()

	good := assertion(t, key, c.ID, aud, now)
	r := postToken(t, ti.http.URL, formType, assertionForm(good), "")
	if r.status != http.StatusOK {
		t.Fatalf("a good assertion: %d %v", r.status, r.body)
	}
	tok, _ := verifyToken(t, ti, r.body["access_token"].(string))
	if tok.Subject() != c.ID {
		t.Fatalf("the token's subject: %s", tok.Subject())
	}
	if r := postToken(t, ti.http.URL, formType, assertionForm(assertion(t, key, c.ID, ti.cfg.Issuer, now)), ""); r.status != http.StatusOK {
		t.Fatalf("an assertion for the issuer as audience: %d %v", r.status, r.body)
	}
	if err := ti.server.Usage.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := ti.store.Client(operatorContext(), c.ID); !got.KeysLastUsedAt["k1"].Equal(now) || !got.LastUsedAt.Equal(now) {
		t.Errorf("the key's last use: %v, the client's %v", got.KeysLastUsedAt, got.LastUsedAt)
	}

	forger := newClientKey(t, "k1", jwa.ES256)
	hmacWithPublicKey := func() string {
		pub, _ := json.Marshal(key.public)
		tok, _ := jwt.NewBuilder().Issuer(c.ID).Subject(c.ID).Audience([]string{aud}).Expiration(now.Add(time.Minute)).JwtID("h1").Build()
		signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, pub, jws.WithProtectedHeaders(headers(t, "k1"))))
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}()
	unsigned := func() string {
		tok, _ := jwt.NewBuilder().Issuer(c.ID).Subject(c.ID).Audience([]string{aud}).Expiration(now.Add(time.Minute)).JwtID("n1").Build()
		signed, err := jwt.Sign(tok, jwt.WithInsecureNoSignature())
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}()
	for _, tc := range []struct{ name, assertion string }{
		{"the same assertion again", good},
		{"signed by another key with the same kid", assertion(t, forger, c.ID, aud, now)},
		{"expired", assertion(t, key, c.ID, aud, now, func(b *jwt.Builder) { b.Expiration(now.Add(-time.Minute)) })},
		{"without exp", func() string {
			tok, _ := jwt.NewBuilder().Issuer(c.ID).Subject(c.ID).Audience([]string{aud}).JwtID("x1").Build()
			s, _ := jwt.Sign(tok, jwt.WithKey(key.alg, key.private))
			return string(s)
		}()},
		{"an hour long", assertion(t, key, c.ID, aud, now, func(b *jwt.Builder) { b.Expiration(now.Add(time.Hour)) })},
		{"for another audience", assertion(t, key, c.ID, "https://elsewhere.example/token", now)},
		{"for another client", assertion(t, key, "someone-else", aud, now, func(b *jwt.Builder) { b.Subject(c.ID) })},
		{"sub not the client", assertion(t, key, c.ID, aud, now, func(b *jwt.Builder) { b.Subject("someone-else") })},
		{"issued in the future", assertion(t, key, c.ID, aud, now, func(b *jwt.Builder) { b.IssuedAt(now.Add(time.Hour)) })},
		{"without jti", assertion(t, key, c.ID, aud, now, func(b *jwt.Builder) { b.JwtID("") })},
		{"HMAC with the public key as secret", hmacWithPublicKey},
		{"alg none", unsigned},
		{"garbage", "not.a.jwt"},
	} {
		if r := postToken(t, ti.http.URL, formType, assertionForm(tc.assertion), ""); r.status != http.StatusUnauthorized || r.body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v", tc.name, r.status, r.body)
		}
	}
	fresh := assertion(t, key, c.ID, aud, now)
	for name, tc := range map[string]struct{ body, auth string }{
		"an assertion and HTTP Basic":    {assertionForm(fresh), basic(c.ID, "x")},
		"an assertion and client_secret": {assertionForm(fresh) + "&client_secret=x", ""},
		"another assertion type":         {strings.Replace(assertionForm(fresh), "jwt-bearer", "saml2-bearer", 1), ""},
	} {
		if r := postToken(t, ti.http.URL, formType, tc.body, tc.auth); r.status != http.StatusBadRequest || r.body["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", name, r.status, r.body)
		}
	}
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials&client_id="+c.ID+"&client_secret=anything", ""); r.status != http.StatusUnauthorized {
		t.Errorf("a secret for a private_key_jwt-only client: %d", r.status)
	}
	// Failed assertions count towards the same limits as wrong secrets.
	strict := testConfig(t.TempDir())
	strict.RateLimit.MaxFailures = 3
	limited := startIssuer(t, strict, clock)
	lc, _ := limited.createClient(tokenissuer.NewClient{ID: "signer", Scopes: []string{"a"}, Keys: tokenissuer.ClientKeys{JWKS: jwks(t, key), Only: true}})
	statuses := []int{}
	for range 5 {
		statuses = append(statuses, postToken(t, limited.http.URL, formType, assertionForm(assertion(t, forger, lc.ID, limited.cfg.Issuer, now)), "").status)
	}
	if statuses[len(statuses)-1] != http.StatusTooManyRequests {
		t.Errorf("forged assertions from one address: %v, want the last refused with 429", statuses)
	}

	// RFC 8414 metadata says so.
	resp, err := http.Get(ti.http.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]any
	json.NewDecoder(resp.Body).Decode(&md)
	if !strings.Contains(fmt.Sprint(md["token_endpoint_auth_methods_supported"]), "private_key_jwt") || fmt.Sprint(md["token_endpoint_auth_signing_alg_values_supported"]) != "[ES256 EdDSA RS256 PS256]" {
		t.Errorf("metadata: %v", md)
	}
}

func headers(t testing.TB, kid string) jws.Headers {
	h := jws.NewHeaders()
	h.Set(jws.KeyIDKey, kid)
	return h
}

// TestAClientsRotatedKeyWorksThroughItsJWKSURI: a client publishes its keys
// at a URL; when it rotates to a new key, an assertion with the new kid
// makes the issuer fetch the document again, at most once per 30 s.
func TestAClientsRotatedKeyWorksThroughItsJWKSURI(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	cfg := testConfig(t.TempDir())
	cfg.Tenants.JWKSURIPrivateNetworks = true // the keys are served on loopback
	ti := startIssuer(t, cfg, clock)
	k1, k2 := newClientKey(t, "k1", jwa.ES256), newClientKey(t, "k2", jwa.EdDSA)
	var published atomic.Pointer[[]byte]
	doc := jwks(t, k1)
	published.Store(&doc)
	var fetches atomic.Int32
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*published.Load())
	}))
	t.Cleanup(keys.Close)
	c, _ := ti.createClient(tokenissuer.NewClient{ID: "published", Scopes: []string{"a"}, Keys: tokenissuer.ClientKeys{JWKSURI: keys.URL, Only: true}})
	aud := ti.cfg.Issuer
	if r := postToken(t, ti.http.URL, formType, assertionForm(assertion(t, k1, c.ID, aud, clock.Now())), ""); r.status != http.StatusOK {
		t.Fatalf("the first key: %d %v", r.status, r.body)
	}
	rotated := jwks(t, k2)
	published.Store(&rotated)
	for range 5 { // a flood of an unknown kid costs no fetch within 30 s
		postToken(t, ti.http.URL, formType, assertionForm(assertion(t, k2, c.ID, aud, clock.Now())), "")
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the document was fetched %d times within 30 s", n)
	}
	clock.Advance(31 * time.Second)
	if r := postToken(t, ti.http.URL, formType, assertionForm(assertion(t, k2, c.ID, aud, clock.Now())), ""); r.status != http.StatusOK {
		t.Fatalf("the rotated key: %d %v", r.status, r.body)
	}
}

// TestAJWKSURIIsNeverFetchedFromAnInternalAddress: a tenant cannot make the
// issuer reach into its own network through a client's jwks_uri. The URL
// below names a loopback server; it was registered while the operator
// allowed private networks (or its name later came to resolve there).
// With them disallowed, an assertion is invalid_client and the server
// hears nothing.
func TestAJWKSURIIsNeverFetchedFromAnInternalAddress(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	ti := startIssuer(t, testConfig(t.TempDir()), clock)
	k := newClientKey(t, "k1", jwa.ES256)
	var asked atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Write(jwks(t, k))
	}))
	t.Cleanup(internal.Close)
	nc := tokenissuer.NewClient{ID: "prober", Scopes: []string{"a"}, Keys: tokenissuer.ClientKeys{JWKSURI: internal.URL + "/jwks.json", Only: true}}
	if _, _, err := ti.admin.CreateClient(operatorContext(), nc); err == nil {
		t.Fatal("a loopback jwks_uri was registered with private networks disallowed")
	}
	permissive := tokenissuer.NewAdmin(ti.store, ti.hasher, clock, tokenissuer.AdminLimits{JWKSURIPrivateNetworks: true})
	c, _, err := permissive.CreateClient(operatorContext(), nc)
	if err != nil {
		t.Fatal(err)
	}
	r := postToken(t, ti.http.URL, formType, assertionForm(assertion(t, k, c.ID, ti.cfg.Issuer, clock.Now())), "")
	if r.status != http.StatusUnauthorized || r.body["error"] != "invalid_client" {
		t.Fatalf("an assertion whose keys are internal: %d %v", r.status, r.body)
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the internal server was asked %d times", n)
	}
}

// TestAnAssertionIsGoodOnceAcrossReplicas: two issuer replicas on one
// PostgreSQL database share the record of the assertions used.
func TestAnAssertionIsGoodOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	clock := fakeclock.New()
	a, b := startReplica(t, dsn, clock, nil), startReplica(t, dsn, clock, nil)
	key := newClientKey(t, "k1", jwa.EdDSA)
	c, _ := a.createClient(tokenissuer.NewClient{ID: "replicated", Scopes: []string{"a"}, Keys: tokenissuer.ClientKeys{JWKS: jwks(t, key), Only: true}})
	// Both replicas' issuer URLs name their own listener; an assertion for
	// one is for that one's token endpoint.
	one := assertion(t, key, c.ID, a.cfg.Issuer, clock.Now(), func(b *jwt.Builder) { b.Audience([]string{a.cfg.Issuer, "https://unused"}) })
	if r := postToken(t, a.http.URL, formType, assertionForm(one), ""); r.status != http.StatusOK {
		t.Fatalf("replica A: %d %v", r.status, r.body)
	}
	replay := assertion(t, key, c.ID, b.cfg.Issuer, clock.Now(), func(bd *jwt.Builder) { bd.Audience([]string{a.cfg.Issuer, b.cfg.Issuer}).JwtID("shared-jti") })
	if r := postToken(t, a.http.URL, formType, assertionForm(replay), ""); r.status != http.StatusOK {
		t.Fatalf("replica A, second assertion: %d %v", r.status, r.body)
	}
	if r := postToken(t, b.http.URL, formType, assertionForm(replay), ""); r.status != http.StatusUnauthorized {
		t.Fatalf("the same assertion at replica B: %d %v", r.status, r.body)
	}
}
