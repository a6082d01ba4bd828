package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

func TestUserDirectoryDownUsesStaleEntryThen503(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	users := newUserService(t, map[string]string{"42": `{"id":"42","status":"active","tenant_id":"acme"}`})
	clock := &fakeClock{now: time.Now()}
	cfg := testConfig(t, jwks.URL)
	cfg.Users.Source, cfg.Users.URL = "http", users.URL+"/users/{id}"
	cfg.Users.CacheTTL, cfg.Users.MaxStale = 5*time.Second, time.Minute
	cfg.Token.ClockSkew = 0
	az := startAuthz(t, cfg, clock)
	az.waitReady(t)
	tok := sign(t, ec, nil, claims(clock.Now()))
	tok2 := sign(t, ec, nil, func() map[string]any { c := claims(clock.Now()); c["jti"] = "other"; return c }())

	check := func() reply { return az.check(t, "GET", "/v1/accounts/42", false, bearer(tok), obo("user 42")) }
	if r := check(); !r.allowed {
		t.Fatalf("first lookup: %d %s", r.status, r.reason)
	}
	users.down.Store(true)
	clock.Advance(10 * time.Second) // past the TTL, within max_stale
	if r := check(); !r.allowed {
		t.Fatalf("stale entry not used while the directory is down: %d %s", r.status, r.reason)
	}
	// A user never seen cannot be served stale: fail closed.
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok2), obo("user 77")); r.status != 503 || r.reason != "unavailable" {
		t.Fatalf("unseen user with directory down: %d %s", r.status, r.reason)
	}
	clock.Advance(time.Minute) // past max_stale
	if r := check(); r.status != 503 || r.reason != "unavailable" {
		t.Fatalf("entry older than max_stale: %d %s", r.status, r.reason)
	}
	users.down.Store(false)
	if r := check(); !r.allowed {
		t.Fatalf("after recovery: %d %s", r.status, r.reason)
	}
}

func TestUserDirectoryHTTPSource(t *testing.T) {
	t.Parallel()
	svc := newUserService(t, map[string]string{
		"42":        `{"id":"42","status":"blocked","tenant_id":"acme"}`,
		"weird":     `{"id":"weird","status":"frozen"}`,
		"liar":      `{"id":"someone-else","status":"active"}`,
		"garbage":   `{not json`,
		"a@b.c:d-1": `{"id":"a@b.c:d-1","status":"active"}`,
	})
	d, err := NewHTTPDirectory(svc.URL+"/users/{id}", time.Second, 0, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if u, err := d.LookupUser(ctx, "42"); err != nil || u.Status != UserBlocked || u.TenantID != "acme" {
		t.Fatalf("42: %+v %v", u, err)
	}
	if _, err := d.LookupUser(ctx, "nobody"); err != ErrUserNotFound {
		t.Fatalf("404 must be ErrUserNotFound: %v", err)
	}
	for _, id := range []string{"weird", "liar", "garbage"} {
		if _, err := d.LookupUser(ctx, id); err == nil || err == ErrUserNotFound {
			t.Errorf("%s: bad answer must be an error, got %v", id, err)
		}
	}
	if _, err := d.LookupUser(ctx, "a@b.c:d-1"); err != nil {
		t.Errorf("ID with @ and : is escaped and found: %v", err)
	}
	svc.delay.Store(int64(2 * time.Second))
	slow, _ := NewHTTPDirectory(svc.URL+"/users/{id}", 50*time.Millisecond, 0, discard())
	if _, err := slow.LookupUser(ctx, "42"); err == nil {
		t.Fatal("slow user service must time out")
	}
}

func TestConcurrentLookupsOfOneUserCollapse(t *testing.T) {
	t.Parallel()
	svc := newUserService(t, map[string]string{"42": `{"id":"42","status":"active"}`})
	svc.delay.Store(int64(50 * time.Millisecond))
	src, _ := NewHTTPDirectory(svc.URL+"/users/{id}", time.Second, 0, discard())
	d, err := NewCachedDirectory(src, CacheConfig{TTL: time.Minute, MaxStale: time.Minute, MaxUsers: 100}, SystemClock{}, newMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.LookupUser(context.Background(), "42"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := svc.calls.Load(); n != 1 {
		t.Fatalf("%d calls to the user service for one user, want 1", n)
	}
	// Negative answers are cached too.
	d.LookupUser(context.Background(), "nobody")
	d.LookupUser(context.Background(), "nobody")
	if n := svc.calls.Load(); n != 2 {
		t.Fatalf("unknown user looked up %d times in all, want 2", n)
	}
}

func TestUserFileReload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	file := f.az.srv.fileDir.path
	if r := f.az.check(t, "POST", "/v1/accounts", false, bearer(tok), obo("user 42")); !r.allowed {
		t.Fatalf("active user: %s", r.reason)
	}
	f.az.waitWatching(t)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocked := strings.Replace(string(data), "- id: \"42\"\n    status: active", "- id: \"42\"\n    status: blocked", 1)
	tmp := filepath.Join(filepath.Dir(file), ".users.tmp")
	if err := os.WriteFile(tmp, []byte(blocked), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	// The cache TTL (5s in the defaults) bounds the delay; poll for it.
	waitUntil(t, "the block in the users file to take effect", func() bool {
		return f.az.check(t, "POST", "/v1/accounts", false, bearer(tok), obo("user 42")).reason == "user-blocked"
	})
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

// TestUserFileSyntaxErrorNamesTheLineToFix: a bad indent on line 4 is
// reported on line 4 (the YAML parser alone says line 1).
func TestUserFileSyntaxErrorNamesTheLineToFix(t *testing.T) {
	t.Parallel()
	_, err := ParseUserFile("users.yaml", []byte("users:\n  - id: \"42\"\n    status: active\n   tenant_id: acme\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "user directory users.yaml:4: YAML syntax error") {
		t.Fatalf("%v", err)
	}
}
