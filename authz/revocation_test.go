package authz

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
	"github.com/portcullis/portcullis/tokenissuer/secretscan"
	"github.com/portcullis/portcullis/tokenissuer/secretscan/scantest"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// followerCredentials creates authz's own client at the issuer, allowed to
// read the revocation feed.
func followerCredentials(t *testing.T, iss *server.Server) (string, string) {
	t.Helper()
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, secret, err := iss.Admin().CreateClient(ctx, tokenissuer.NewClient{ID: "authz", Scopes: []string{revocation.ReadScope}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, secret
}

// followingAuthz is an authz that follows the issuer's revocation feed at
// feedURL (the issuer's own when empty).
func followingAuthz(t *testing.T, iss *issuertest.Issuer, id, secret, feedURL string, tweak ...func(*RevocationConfig)) *testAuthz {
	t.Helper()
	cfg := testConfig(t, "")
	cfg.Token.Issuer = iss.URL
	cfg.Revocation = RevocationConfig{Enabled: true, FeedURL: feedURL, ClientID: id, ClientSecret: secret,
		Wait: 5 * time.Second, MaxStaleness: time.Minute, OnStale: "serve", MaxBytes: 1 << 20}
	for _, f := range tweak {
		f(&cfg.Revocation)
	}
	return startAuthz(t, cfg, SystemClock{})
}

// revokeToken revokes a token at the issuer's RFC 7009 endpoint, as its
// client would.
func revokeToken(t *testing.T, issuerURL, clientID, secret, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, issuerURL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s", resp.Status)
	}
}

// untilAllDeny waits until every authz denies token as revoked, and returns
// how long each took from start.
func untilAllDeny(t *testing.T, start time.Time, token string, azs ...*testAuthz) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(azs))
	for i, az := range azs {
		waitUntil(t, "the revocation to reach authz", func() bool {
			return az.check(t, "GET", "/v1/accounts/42", false, bearer(token)).reason == string(ReasonTokenRevoked)
		})
		took[i] = time.Since(start)
	}
	return took
}

func tokenStatus(t *testing.T, iss *issuertest.Issuer) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, iss.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(iss.ClientID, iss.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRevocationReachesEveryAuthzInSeconds: three authz follow one issuer;
// a token revoked at /oauth2/revoke, then a disabled client, are refused by
// all three, cached tokens included, with no call to the issuer per check.
func TestRevocationReachesEveryAuthzInSeconds(t *testing.T) {
	t.Parallel()
	iss := startRealIssuer(t, "ES256", nil)
	id, secret := followerCredentials(t, iss.Server)
	azs := []*testAuthz{followingAuthz(t, iss, id, secret, ""), followingAuthz(t, iss, id, secret, ""), followingAuthz(t, iss, id, secret, "")}
	for _, az := range azs {
		az.waitReady(t)
	}
	leaked, other := iss.Token(t, ""), iss.Token(t, "")
	for _, az := range azs {
		for _, tok := range []string{leaked, other} {
			if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
				t.Fatalf("before any revocation: %s", r.reason)
			}
		}
	}

	start := time.Now()
	revokeToken(t, iss.URL, iss.ClientID, iss.ClientSecret, leaked)
	took := untilAllDeny(t, start, leaked, azs...)
	t.Logf("a token revoked at /oauth2/revoke was refused by the 3 authz after %v", took)
	r := azs[0].check(t, "GET", "/v1/accounts/42", false, bearer(leaked))
	if r.status != http.StatusUnauthorized || !strings.Contains(r.headers["www-authenticate"], `error="invalid_token"`) || !strings.Contains(string(r.body), "token-revoked") {
		t.Fatalf("revoked token: %d %v %s", r.status, r.headers, r.body)
	}
	if !strings.Contains(r.revocation, "oauth2.revoke") || strings.Contains(r.revocation, leaked) {
		t.Fatalf("the denial does not name the revocation (or shows the token): %q", r.revocation)
	}
	if r := azs[1].check(t, "GET", "/v1/accounts/42", false, bearer(other)); !r.allowed {
		t.Fatalf("revoking one token refused another: %s", r.reason)
	}

	// Disabling the client revokes every token it holds, and the token
	// endpoint refuses it.
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	start = time.Now()
	if _, err := iss.Server.Admin().SetStatus(ctx, iss.ClientID, tokenissuer.ClientDisabled); err != nil {
		t.Fatal(err)
	}
	took = untilAllDeny(t, start, other, azs...)
	t.Logf("a disabled client's cached token was refused by the 3 authz after %v", took)
	if r := azs[2].check(t, "GET", "/v1/accounts/42", false, bearer(other)); !strings.Contains(r.revocation, "client acme-app issued before") || !strings.Contains(r.revocation, "client.disable") {
		t.Fatalf("the denial does not name the client's revocation: %q", r.revocation)
	}
	if got := tokenStatus(t, iss); got == http.StatusOK {
		t.Fatal("a disabled client got a token")
	}

	// Enabled again: new tokens work everywhere (once the watermark's
	// second has passed), the old ones stay revoked.
	if _, err := iss.Server.Admin().SetStatus(ctx, iss.ClientID, tokenissuer.ClientActive); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a new token to be honoured after re-enabling", func() bool {
		fresh := iss.Token(t, "")
		for _, az := range azs {
			if !az.check(t, "GET", "/v1/accounts/42", false, bearer(fresh)).allowed {
				return false
			}
		}
		return true
	})
	for _, az := range azs {
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(other)); r.reason != string(ReasonTokenRevoked) {
			t.Fatalf("an old token after re-enabling: %s", r.reason)
		}
	}

	// authz's own feed token revoked: the followers get a new one and
	// carry on (they do not wait for the old one to expire).
	if err := iss.Server.Admin().RevokeClientTokens(ctx, id); err != nil {
		t.Fatal(err)
	}
	later := iss.Token(t, "")
	revokeToken(t, iss.URL, iss.ClientID, iss.ClientSecret, later)
	untilAllDeny(t, time.Now(), later, azs...)
}

// gatedFeed is a proxy in front of the issuer's feed that can go down.
type gatedFeed struct {
	*httptest.Server
	down atomic.Bool
}

func newGatedFeed(t *testing.T, issuerURL string) *gatedFeed {
	target, _ := url.Parse(issuerURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	g := &gatedFeed{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.CloseClientConnections() // long polls in flight end now
		g.Close()
	})
	return g
}

// goDown makes the feed unreachable: new requests fail, and the streams
// and polls in flight are cut, as when the issuer goes away.
func (g *gatedFeed) goDown() {
	g.down.Store(true)
	g.CloseClientConnections()
}

func stalenessMetric(t *testing.T, az *testAuthz) float64 {
	t.Helper()
	families, err := az.srv.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "portcullis_authz_revocation_staleness_seconds" {
			return gaugeValue(f.GetMetric())
		}
	}
	t.Fatal("no portcullis_authz_revocation_staleness_seconds metric")
	return 0
}

func gaugeValue(ms []*dto.Metric) float64 {
	if len(ms) == 0 {
		return 0
	}
	return ms[0].GetGauge().GetValue()
}

// TestRevocationFeedOutages: authz is not ready before it holds the live
// set; when the feed goes down it keeps deciding with the last set and its
// staleness grows; with on_stale: not-ready it stops serving past
// max_staleness.
func TestRevocationFeedOutages(t *testing.T) {
	t.Parallel()
	iss := startRealIssuer(t, "ES256", nil)
	id, secret := followerCredentials(t, iss.Server)
	feed := newGatedFeed(t, iss.URL)
	feed.down.Store(true)
	revoked := iss.Token(t, "")
	revokeToken(t, iss.URL, iss.ClientID, iss.ClientSecret, revoked)

	az := followingAuthz(t, iss, id, secret, feed.URL+revocation.FeedPath, func(c *RevocationConfig) { c.Wait = time.Second })
	waitUntil(t, "the policy and keys to load", func() bool { return az.srv.Policies.Current() != nil && az.srv.Keys.Ready() })
	if az.srv.Ready() {
		t.Fatal("ready without the revocation live set")
	}
	resp, err := http.Get("http://" + az.srv.AdminAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "revocation") {
		t.Fatalf("/readyz before the live set: %d %s", resp.StatusCode, body)
	}

	feed.down.Store(false)
	az.waitReady(t)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(revoked)); r.reason != string(ReasonTokenRevoked) {
		t.Fatalf("a token revoked before authz started: %s", r.reason)
	}

	// The feed goes down: the last set still decides, the staleness grows.
	good := iss.Token(t, "")
	feed.goDown()
	waitUntil(t, "the staleness to grow", func() bool { return stalenessMetric(t, az) > 2 })
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(revoked)); r.reason != string(ReasonTokenRevoked) {
		t.Fatalf("during the outage, the revoked token: %s", r.reason)
	}
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(good)); !r.allowed {
		t.Fatalf("during the outage, a good token: %s", r.reason)
	}
	if !az.srv.Ready() {
		t.Fatal("on_stale: serve stopped serving")
	}
	feed.down.Store(false)
	waitUntil(t, "the feed to be followed again", func() bool { return stalenessMetric(t, az) < 2 })

	// on_stale: not-ready: past max_staleness, NOT_SERVING.
	strict := followingAuthz(t, iss, id, secret, feed.URL+revocation.FeedPath, func(c *RevocationConfig) {
		c.Wait, c.MaxStaleness, c.OnStale = time.Second, 2*time.Second, "not-ready"
	})
	strict.waitReady(t)
	feed.goDown()
	waitUntil(t, "a stale authz to stop serving", func() bool { return !strict.srv.Ready() })
	feed.down.Store(false)
	strict.waitReady(t)
}

// TestRevocationCrossesPostgresReplicas: a token revoked through one issuer
// replica is refused by an authz that follows another, woken by
// LISTEN/NOTIFY.
func TestRevocationCrossesPostgresReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	a := startRealIssuer(t, "ES256", func(c *server.Config) {
		c.Store.Driver, c.Store.PostgresDSN = "postgres", dsn
		c.Store.SecretHashKey = "dGVzdC1vbmx5LXNlY3JldC1oYXNoLWtleS0zMi1ieXRlcyE" // for tests only
		c.Keys.EncryptionKey = "dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI"      // for tests only
	})
	cfg := a.Server.Config()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	b, err := server.NewServer(context.Background(), cfg, tokenissuer.SystemClock{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	bURL := "http://" + b.Addr().String()

	id, secret := followerCredentials(t, a.Server)
	az := followingAuthz(t, a, id, secret, bURL+revocation.FeedPath, func(c *RevocationConfig) { c.TokenURL = bURL + "/oauth2/token" })
	az.waitReady(t)
	tok := a.Token(t, "")
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
		t.Fatalf("before: %s", r.reason)
	}
	start := time.Now()
	revokeToken(t, a.URL, a.ClientID, a.ClientSecret, tok)
	took := untilAllDeny(t, start, tok, az)
	t.Logf("revoked at replica A, refused by an authz following replica B after %v", took[0])
}

// TestALeakedSecretReportReachesAuthz: GitHub reports the client's secret
// found in a public repository; the issuer revokes it and the client's
// tokens, and a running authz following the feed refuses the token the
// client held, within seconds.
func TestALeakedSecretReportReachesAuthz(t *testing.T) {
	t.Parallel()
	github := scantest.NewReporter(t, "github-key-1")
	iss := startRealIssuer(t, "EdDSA", func(c *server.Config) { c.SecretScanning.KeysFile = github.WriteKeysFile(t, t.TempDir()) })
	id, secret := followerCredentials(t, iss.Server)
	az := followingAuthz(t, iss, id, secret, "")
	az.waitReady(t)
	held := iss.Token(t, "")
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(held)); !r.allowed {
		t.Fatalf("before the report: %s", r.reason)
	}
	start := time.Now()
	if status, raw := github.Send(t, iss.URL+secretscan.Path, scantest.Match{Token: iss.ClientSecret, Type: "portcullis_client_secret", URL: "https://github.com/acme/app/blob/main/.env", Source: "content"}); status != http.StatusOK {
		t.Fatalf("the report: %d %s", status, raw)
	}
	took := untilAllDeny(t, start, held, az)
	t.Logf("a token of a client whose secret was reported leaked was refused by authz after %v", took[0])
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(held)); !strings.Contains(r.revocation, "client.secret_leaked") {
		t.Fatalf("the denial does not name the leak: %q", r.revocation)
	}
	if got := tokenStatus(t, iss); got != http.StatusUnauthorized {
		t.Fatalf("the leaked secret still gets tokens: %d", got)
	}
}
