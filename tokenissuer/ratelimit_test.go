package tokenissuer

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFailedAuthenticationsAreRateLimitedPerClient(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.Window = time.Minute
	clock := newFakeClock()
	ti := startIssuer(t, cfg, clock)
	c, secret := ti.createClient(NewClient{Scopes: []string{"a"}})
	for i := 0; i < 3; i++ {
		if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, "guess"+strconv.Itoa(i))); r.status != 401 {
			t.Fatalf("failure %d: %d", i, r.status)
		}
	}
	// Now even the right secret is refused: otherwise guessing could go on.
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d %v, want 429", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra <= 0 || ra > 60 {
		t.Fatalf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	clock.Advance(time.Minute)
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)); r.status != 200 {
		t.Fatalf("after the window: %d %v", r.status, r.body)
	}
}

func TestFailedAuthenticationsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 5
	ti := startIssuer(t, cfg, newFakeClock())
	c, secret := ti.createClient(NewClient{Scopes: []string{"a"}})
	// Spraying many client IDs from one address trips the address limit.
	for i := 0; i < 5; i++ {
		postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(fmt.Sprintf("victim-%d", i), "guess"))
	}
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("address limit: %d %v", r.status, r.body)
	}
}

func TestFailureLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := NewFailureLimiter(2, time.Minute, 100, clock)
	for i := 0; i < 10_000; i++ {
		l.Fail(context.Background(), fmt.Sprintf("attacker-%d", i))
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("tracking %d keys, bound is 100", n)
	}
	// A recently failing key survives the flood.
	l.Fail(context.Background(), "attacker-9999")
	if blocked, _ := l.Blocked("attacker-9999"); !blocked {
		t.Fatal("most recent key was evicted")
	}
}

func TestAddressLimitUsesTheProxysForwardedFor(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.MaxFailures = 3
	cfg.RateLimit.TrustForwardedFor = true
	ti := startIssuer(t, cfg, newFakeClock())
	c, secret := ti.createClient(NewClient{Scopes: []string{"a"}})
	post := func(xff, auth string) int {
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
