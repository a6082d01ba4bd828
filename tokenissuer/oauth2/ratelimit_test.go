package oauth2_test

import (
	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"

	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestGuessingAtAClientNeverLocksItsOwnerOut: a client ID is public (the
// sample configs name authz's), so failures for it from anywhere must not
// refuse its right secret. Past the limit, failures are slowed instead.
func TestGuessingAtAClientNeverLocksItsOwnerOut(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.Window = time.Minute
	cfg.RateLimit.FailureDelay = time.Millisecond
	cfg.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	ti := startIssuer(t, cfg, fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{ID: "authz", Scopes: []string{"a"}})
	// 100 wrong secrets from 100 addresses, each under its own limit.
	for i := range 100 {
		if s := postTokenFrom(t, ti, fmt.Sprintf("203.0.113.%d", i), basic(c.ID, "guess"+strconv.Itoa(i))); s != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, s)
		}
	}
	if got := counter(t, ti.server.RateLimited("client")); got != 100-3 {
		t.Fatalf("%v failures slowed down, want the 97 past the limit", got)
	}
	// The owner, from yet another address, gets a token at once.
	if s := postTokenFrom(t, ti, "198.51.100.7", basic(c.ID, secret)); s != http.StatusOK {
		t.Fatalf("the right secret after others' failures: %d", s)
	}
	// Even from an address that shares the attack's client ID limit.
	if s := postTokenFrom(t, ti, "203.0.113.5", basic(c.ID, secret)); s != http.StatusOK {
		t.Fatalf("the right secret from an address with one failure: %d", s)
	}
}

// TestUnknownClientIDsAreSlowedAlike: failures past the limit are slowed
// for an ID no client has as for a real one, so that slowness tells
// nobody which IDs exist.
func TestUnknownClientIDsAreSlowedAlike(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.FailureDelay = time.Millisecond
	cfg.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	ti := startIssuer(t, cfg, fakeclock.New())
	c, _ := ti.createClient(tokenissuer.NewClient{ID: "real-app", Scopes: []string{"a"}})
	slowed := ti.server.RateLimited("client")
	for _, id := range []string{c.ID, "no-such-app"} {
		before := counter(t, slowed)
		for i := range 5 {
			if s := postTokenFrom(t, ti, fmt.Sprintf("203.0.113.%d", i), basic(id, "guess")); s != http.StatusUnauthorized {
				t.Fatalf("%s, failure %d: %d", id, i, s)
			}
		}
		if got := counter(t, slowed) - before; got != 2 {
			t.Errorf("%s: %v of 5 failures slowed, want the 2 past the limit", id, got)
		}
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestFailedAuthenticationsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 5
	ti := startIssuer(t, cfg, fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	// Spraying many client IDs from one address trips the address limit.
	for i := 0; i < 5; i++ {
		postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(fmt.Sprintf("victim-%d", i), "guess"))
	}
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("address limit: %d %v", r.status, r.body)
	}
}

func TestAddressLimitUsesTheProxysForwardedFor(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	ti := startIssuer(t, cfg, fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	post := func(xff, auth string) int { return postTokenFrom(t, ti, xff, auth) }
	// The attacker forges the first entries; the proxy appends the real
	// address last, and that is what counts.
	for i := 0; i < 3; i++ {
		post(fmt.Sprintf("10.0.0.%d, 203.0.113.7", i), basic(fmt.Sprintf("spray-%d", i), "guess"))
	}
	if s := post("10.9.9.9, 203.0.113.7", basic(c.ID, secret)); s != http.StatusTooManyRequests {
		t.Fatalf("attacker's address not limited: %d", s)
	}
	if s := post("198.51.100.4", basic(c.ID, secret)); s != http.StatusOK {
		t.Fatalf("another client behind the same proxy was locked out: %d", s)
	}
}

// TestForwardedForIsBelievedOnlyFromTrustedProxies: a client that reaches
// the issuer directly cannot choose its address with X-Forwarded-For, so it
// can neither dodge the per-address limit nor lock out someone else's.
func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.TrustedProxies = []string{"192.0.2.10"} // not the test client
	ti := startIssuer(t, cfg, fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	for i := 0; i < 3; i++ {
		r := postTokenFrom(t, ti, fmt.Sprintf("203.0.113.%d", i), basic(fmt.Sprintf("spray-%d", i), "guess"))
		if r != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, r)
		}
	}
	if s := postTokenFrom(t, ti, "198.51.100.99", basic(c.ID, secret)); s != http.StatusTooManyRequests {
		t.Fatalf("a rotated X-Forwarded-For dodged the limit: %d", s)
	}
}

func postTokenFrom(t *testing.T, ti *testIssuer, xff, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ti.http.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestClientAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer, forwarded ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, last entry", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9", "192.0.2.1"}, "198.51.100.1"},
		{"garbage entry stops the walk", "10.1.2.3:5000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"huge garbage", "10.1.2.3:5000", []string{strings.Repeat("x", 16<<10)}, "10.1.2.3"},
		{"no header from a trusted peer", "192.0.2.1:80", nil, "192.0.2.1"},
		{"IPv6 counted by its /64", "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:203.0.113.9]:443", nil, "203.0.113.9"},
		{"forwarded IPv6 from loopback proxy", "[::1]:443", []string{"2001:db8::1"}, "2001:db8::/64"},
		{"only trusted entries: the leftmost", "10.1.2.3:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		got, err := oauth2.LimiterKeyBehind([]string{"10.0.0.0/8", "192.0.2.1", "::1"}, r)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if _, err := oauth2.LimiterKeyBehind([]string{"envoy"}, &http.Request{}); err == nil {
		t.Error("a host name is not a trusted proxy")
	}
}

// TestTrustForwardedForIsRetired: the old setting names its replacement.
func TestTrustForwardedForIsRetired(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.TrustForwardedFor = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "rate_limit.trusted_proxies") {
		t.Fatalf("%v", err)
	}
}

// TestFailedRequestsLeaveLimiterMemoryBounded sends 100,000 failed token
// requests with distinct 7 KB client IDs and distinct forwarded values (half
// valid addresses, half 15 KB of garbage) through a trusted proxy, with the
// default limits. A malformed ID never becomes a limiter key, a
// well-formed one (known or not) is at most 128 bytes, and an address key is at most 43
// bytes: the heap grows by a few megabytes (an address entry costs ~200
// bytes), not the ~2 GB long keys held before. Not parallel: it measures the
// heap.
func TestFailedRequestsLeaveLimiterMemoryBounded(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	cfg.ClientCacheTTL = 5 * time.Second
	ti := startIssuer(t, cfg, fakeclock.New())
	h := ti.server.Handler()

	const requests = 100_000
	longID := strings.Repeat("i", 7<<10)
	garbage := strings.Repeat("g", 15<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	send := func(i int) error {
		id := fmt.Sprintf("%s-%d", longID, i)
		xff := fmt.Sprintf("%d.%d.%d.%d", 10+i>>16&0xff, i>>8&0xff, i&0xff, 7)
		if i%2 == 1 {
			xff = fmt.Sprintf("%s-%d", garbage, i)
		}
		if i%10 == 0 {
			id = fmt.Sprintf("unknown-client-%d", i) // valid grammar, no such client
		}
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader("grant_type=client_credentials&client_id="+id+"&client_secret=guess"))
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("Content-Type", formType)
		req.Header.Set("X-Forwarded-For", xff)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusTooManyRequests {
			return fmt.Errorf("request %d: %d %s", i, rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), longID[:64]) {
			return errors.New("the response echoes the client ID")
		}
		return nil
	}
	const workers = 4
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := w; i < requests; i += workers {
				if err := send(i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	addressKeys, clientKeys := ti.server.LimiterSizes()
	t.Logf("heap growth after %d failed requests: %.1f MB; %d address keys, %d client keys", requests, float64(growth)/(1<<20), addressKeys, clientKeys)
	if n := clientKeys; n > requests/10 {
		t.Errorf("%d per-client keys, more than the %d well-formed IDs sent", n, requests/10)
	}
	if n := addressKeys; n > requests/2+1 {
		t.Errorf("%d address keys", n)
	}
	if growth > 32<<20 {
		t.Errorf("heap grew by %d MB", growth>>20)
	}
}

// countingStore counts client lookups that reach the real store.
type countingStore struct {
	tokenissuer.Store
	lookups atomic.Int64
}

func (s *countingStore) Client(ctx context.Context, id string) (*tokenissuer.Client, error) {
	s.lookups.Add(1)
	return s.Store.Client(ctx, id)
}

// ListenChanges announces nothing: the counts are of the cache alone, not
// of the forgetting that the file's watch does when it starts or sees a
// commit (at moments the scheduler picks).
func (s *countingStore) ListenChanges(ctx context.Context, _ func(topic, subject string)) error {
	<-ctx.Done()
	return nil
}

// TestUnknownClientIDsAreCachedLikeKnownOnes: within client_cache_ttl a
// repeated unknown ID is answered from the cache, as a known one is, so the
// store's round trip does not tell them apart.
func TestUnknownClientIDsAreCachedLikeKnownOnes(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.ClientCacheTTL = time.Hour
	cfg.RateLimit.MaxFailures = 0
	sqlite, err := sqlstore.OpenSQLite(context.Background(), cfg.Store.SQLitePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlite.Close() })
	store := &countingStore{Store: sqlite}
	ti := startIssuerOn(t, cfg, fakeclock.New(), store)
	c, _ := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	for _, id := range []string{c.ID, "no-such-client"} {
		before := store.lookups.Load()
		for i := 0; i < 5; i++ {
			if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(id, "guess")); r.status != http.StatusUnauthorized {
				t.Fatalf("%s: %d", id, r.status)
			}
			ti.server.WaitForClientCache()
		}
		if n := store.lookups.Load() - before; n != 1 {
			t.Errorf("%s: %d store lookups for 5 requests, want 1", id, n)
		}
	}
}
