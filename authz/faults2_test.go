package authz

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// TestSlowJWKSDoesNotHoldKnownTokens: while a refetch for an unknown kid
// hangs on a slow issuer, tokens signed by known keys are still decided from
// the keys in use.
func TestSlowJWKSDoesNotHoldKnownTokens(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	cfg.Token.JWKSFetchTimeout = time.Minute
	cfg.CheckTimeout = time.Minute
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	gate := make(chan struct{})
	jwks.setGate(gate)
	released := false
	defer func() {
		if !released {
			close(gate)
		}
	}()

	unknown := newSigningKey(t, "not-yet", jwa.ES256)
	done := make(chan reply, 1)
	go func() {
		done <- az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, unknown, nil, claims(time.Now()))))
	}()
	waitUntil(t, "the refetch to hang at the issuer", func() bool { return jwks.waiting.Load() > 0 })
	for i := 0; i < 5; i++ {
		tok := sign(t, ec, nil, func() map[string]any { c := claims(time.Now()); c["jti"] = fmt.Sprint(i); return c }())
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
			t.Fatalf("known key during a slow refetch: %d %s", r.status, r.reason)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("the unknown-kid check finished before the slow fetch did: %s", r.reason)
	default:
	}
	// The slow fetch completes, without the kid, and the unknown kid is refused.
	close(gate)
	released = true
	if r := <-done; r.reason != "invalid-token" {
		t.Fatalf("unknown kid after a timed-out refetch: %d %s", r.status, r.reason)
	}
}

func TestSlowUserDirectoryServesStaleThen503(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	users := newUserService(t, map[string]string{"42": `{"id":"42","status":"active","tenant_id":"acme"}`})
	clock := &fakeClock{now: time.Now()}
	cfg := testConfig(t, jwks.URL)
	// The timeout is what is tested, but only once the directory hangs (at
	// the gate): the first lookup must not race it on a busy machine.
	cfg.Users.Source, cfg.Users.URL, cfg.Users.Timeout = "http", users.URL+"/users/{id}", 2*time.Second
	cfg.Users.CacheTTL, cfg.Users.MaxStale = 5*time.Second, time.Minute
	cfg.CheckTimeout = time.Minute
	az := startAuthz(t, cfg, clock)
	az.waitReady(t)
	tok := sign(t, ec, nil, claims(time.Now()))
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42")); !r.allowed {
		t.Fatal(r.reason)
	}
	hang := make(chan struct{}) // slower than users.timeout: never answers
	defer close(hang)
	users.gate.Store(&hang)
	clock.Advance(10 * time.Second)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42")); !r.allowed {
		t.Fatalf("stale entry not used with a slow directory: %d %s", r.status, r.reason)
	}
	clock.Advance(time.Minute)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42")); r.status != 503 {
		t.Fatalf("slow directory past max_stale: %d %s", r.status, r.reason)
	}
}

// TestPolicyEditedRepeatedlyUnderLoad rewrites the policy (good and bad
// versions, by rename as editors do) while checks run: every good edit is
// loaded and every bad one refused (each is waited for), stable routes are
// always allowed, the toggled route is allowed or unrouted, nothing else
// happens, and no goroutines are left behind.
func TestPolicyEditedRepeatedlyUnderLoad(t *testing.T) {
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	before := runtime.NumGoroutine()
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	az.waitWatching(t)
	tok := sign(t, ec, nil, claims(time.Now()))
	teamFile := filepath.Join(cfg.Policy, "reports.yaml")
	hasRoute := func(name string) bool {
		for _, r := range az.srv.Policies.Current().Routes() {
			if r.Name == name {
				return true
			}
		}
		return false
	}
	loadsBefore, failuresBefore := az.srv.Policies.Loads()
	good := func(i int) string {
		doc := "version: 1\nroutes:\n  - name: report-" + fmt.Sprint(i) + "\n    methods: [GET]\n    path: /v1/reports/" + fmt.Sprint(i) + "\n    scopes: [accounts:read]\n"
		if i%2 == 0 {
			doc += "  - name: toggled\n    methods: [GET]\n    path: /v1/toggled\n    scopes: [accounts:read]\n"
		}
		return doc
	}
	bad := "version: 1\nroutes:\n  - name: broken\n    methods: [GETT]\n    path: /v1/x\n"

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checks, unexpected atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
					unexpected.Add(1)
					t.Errorf("stable route during edits: %d %s", r.status, r.reason)
				}
				if r := az.check(t, "GET", "/v1/toggled", false, bearer(tok)); !r.allowed && r.reason != "no-matching-route" {
					unexpected.Add(1)
					t.Errorf("toggled route during edits: %d %s", r.status, r.reason)
				}
				checks.Add(2)
			}
		}()
	}
	var goodEdits, badEdits uint64
	for i := 0; i < 40; i++ {
		content := good(i)
		if i%3 == 2 {
			content = bad
		}
		_, failedSoFar := az.srv.Policies.Loads()
		tmp := filepath.Join(cfg.Policy, ".reports.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, teamFile); err != nil {
			t.Fatal(err)
		}
		if content == bad {
			badEdits++
			waitUntil(t, fmt.Sprintf("bad edit %d to be refused", i), func() bool { _, f := az.srv.Policies.Loads(); return f > failedSoFar })
		} else {
			goodEdits++
			waitUntil(t, fmt.Sprintf("good edit %d to be loaded", i), func() bool { return hasRoute(fmt.Sprintf("report-%d", i)) })
		}
	}
	close(stop)
	wg.Wait()
	loads, failures := az.srv.Policies.Loads()
	if loads-loadsBefore < goodEdits || failures-failuresBefore < badEdits {
		t.Fatalf("%d loads and %d refusals for %d good and %d bad edits", loads-loadsBefore, failures-failuresBefore, goodEdits, badEdits)
	}
	if checks.Load() == 0 || unexpected.Load() > 0 {
		t.Fatalf("%d checks, %d unexpected", checks.Load(), unexpected.Load())
	}
	az.stop()
	waitUntil(t, fmt.Sprintf("goroutines back to %d (+5) after shutdown", before), func() bool { return runtime.NumGoroutine() <= before+5 })
}

// TestSlowLookupOutlivesTheFirstCheck: a check whose deadline passes while
// the user service is slow is denied with 503, but the lookup it started
// completes and is cached, so the next check is answered without a new one.
func TestSlowLookupOutlivesTheFirstCheck(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	users := newUserService(t, map[string]string{"42": `{"id":"42","status":"active","tenant_id":"acme"}`})
	users.delay.Store(int64(500 * time.Millisecond))
	cfg := testConfig(t, jwks.URL)
	cfg.Users.Source, cfg.Users.URL, cfg.Users.Timeout = "http", users.URL+"/users/{id}", 5*time.Second
	cfg.CheckTimeout = 100 * time.Millisecond
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	tok := sign(t, ec, nil, claims(time.Now()))
	az.check(t, "GET", "/v1/cards", false, bearer(tok)) // verify the token before the clock matters
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42")); r.status != 503 {
		t.Fatalf("check past its deadline: %d %s", r.status, r.reason)
	}
	waitUntil(t, "the detached lookup to complete", func() bool {
		return az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42")).allowed
	})
	if n := users.calls.Load(); n != 1 {
		t.Fatalf("%d lookups of one user, want 1", n)
	}
}
