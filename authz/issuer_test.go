package authz

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// realIssuer runs the real token issuer on loopback.
type realIssuer struct {
	svc            *tokenissuer.Service
	url            string
	clientID       string
	clientSecret   string
	cancel         context.CancelFunc
	done           chan error
	tokenEndpoints atomic.Int64
}

func startRealIssuer(t *testing.T, alg string, mutate func(*tokenissuer.Config)) *realIssuer {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := tokenissuer.DefaultConfig()
	cfg.Listen, cfg.Issuer, cfg.Audience = addr, "http://"+addr, testAudience
	cfg.Store.SQLitePath = filepath.Join(dir, "issuer.db")
	cfg.Store.SecretHashKeyFile = filepath.Join(dir, "hash.key")
	cfg.Keys.Algorithm = alg
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := tokenissuer.NewService(context.Background(), cfg, tokenissuer.SystemClock{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	admin := tokenissuer.NewAdmin(svc.Store, svc.Hasher, tokenissuer.SystemClock{})
	c, secret, err := admin.CreateClient(context.Background(), tokenissuer.NewClient{ID: "acme-app", TenantID: "acme",
		Scopes: []string{"accounts:read", "accounts:write", ActOnBehalfOfScope}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ri := &realIssuer{svc: svc, url: cfg.Issuer, clientID: c.ID, clientSecret: secret, cancel: cancel, done: make(chan error, 1)}
	go func() { ri.done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ri.done })
	return ri
}

func (ri *realIssuer) token(t *testing.T, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest(http.MethodPost, ri.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ri.clientID, ri.clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("token request: %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

func TestTokensFromTheRealIssuer(t *testing.T) {
	t.Parallel()
	for _, alg := range tokenissuer.SupportedAlgorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			iss := startRealIssuer(t, alg, nil)
			cfg := testConfig(t, "") // JWKS URL discovered from RFC 8414 metadata
			cfg.Token.Issuer = iss.url
			az := startAuthz(t, cfg, SystemClock{})
			az.waitReady(t)
			full := iss.token(t, "")
			if r := az.check(t, "POST", "/v1/accounts", false, bearer(full), obo("user 42")); !r.allowed || r.headers["x-auth-client-id"] != "acme-app" || r.headers["x-auth-tenant-id"] != "acme" || r.headers["x-auth-user-id"] != "42" {
				t.Fatalf("issued token: %d %s %v", r.status, r.reason, r.headers)
			}
			narrowed := iss.token(t, "accounts:read")
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
	iss := startRealIssuer(t, "ES256", func(c *tokenissuer.Config) {
		c.Keys.JWKSMaxAge, c.Keys.PublishDelay, c.Keys.ReloadInterval = time.Second, 1500*time.Millisecond, 100*time.Millisecond
	})
	cfg := testConfig(t, "")
	cfg.Token.Issuer = iss.url
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
	oldKID := kidOf(iss.token(t, ""))
	newKey, err := iss.svc.Keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seenNew := false
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		tok := iss.token(t, "")
		kid := kidOf(tok)
		if kid != oldKID && kid != newKey.KID {
			t.Fatalf("token signed by unexpected kid %s", kid)
		}
		seenNew = seenNew || kid == newKey.KID
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
			t.Fatalf("request %d (kid %s) failed during rotation: %d %s", i, kid, r.status, r.reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !seenNew {
		t.Fatal("the new key never signed")
	}
}
