package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/prometheus/client_golang/prometheus/testutil"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// fakeClock moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// userService is a real HTTP user service whose answers tests control.
type userService struct {
	*httptest.Server
	down  atomic.Bool
	calls atomic.Int64
	delay atomic.Int64
	// gate, when set, holds every request until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func newUserService(t *testing.T, users map[string]string) *userService {
	s := &userService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if d := time.Duration(s.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		if g := s.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-r.Context().Done():
				return
			}
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		body, ok := users[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

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

func TestJWKSDownAtStartThenRecovers(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	jwks.setBody(http.StatusInternalServerError, []byte("down"))
	az := startAuthz(t, testConfig(t, jwks.URL), SystemClock{})
	tok := sign(t, ec, nil, claims(time.Now()))
	// Wait for failed fetches, not for time: then authz has tried and failed.
	waitUntil(t, "two failed JWKS fetches", func() bool { return jwks.hits.Load() >= 2 })
	if az.srv.Ready() {
		t.Fatal("ready without keys")
	}
	resp, err := http.Get("http://" + az.srv.AdminAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz = %d without keys", resp.StatusCode)
	}
	healthClient := healthpb.NewHealthClient(az.conn)
	servingStatus := func() healthpb.HealthCheckResponse_ServingStatus {
		hr, err := healthClient.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		if err != nil {
			t.Fatal(err)
		}
		return hr.GetStatus()
	}
	if st := servingStatus(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("gRPC health without keys: %v", st)
	}
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.status != 503 || r.reason != "unavailable" {
		t.Fatalf("check without keys: %d %s", r.status, r.reason)
	}
	// Public routes need no key.
	if r := az.check(t, "GET", "/healthz", false); !r.allowed {
		t.Fatalf("public route without keys: %d %s", r.status, r.reason)
	}
	jwks.setKeys(t, ec)
	az.waitReady(t)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
		t.Fatalf("after recovery: %d %s", r.status, r.reason)
	}
	waitUntil(t, "gRPC health SERVING", func() bool { return servingStatus() == healthpb.HealthCheckResponse_SERVING })
}

func TestJWKSFailuresKeepKeysInUse(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	az := startAuthz(t, testConfig(t, jwks.URL), SystemClock{})
	az.waitReady(t)
	for _, fault := range []struct {
		name   string
		status int
		body   string
	}{
		{"down", 503, "unavailable"},
		{"garbage", 200, "<html>oops</html>"},
		{"empty key set", 200, `{"keys":[]}`},
	} {
		t.Run(fault.name, func(t *testing.T) {
			jwks.setBody(fault.status, []byte(fault.body))
			// An unknown kid forces a refetch that meets the fault.
			stranger := newSigningKey(t, "new-"+fault.name, jwa.ES256)
			if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, stranger, nil, claims(time.Now())))); r.reason != "invalid-token" {
				t.Fatalf("unknown kid during fault: %s", r.reason)
			}
			fresh := sign(t, ec, nil, func() map[string]any { c := claims(time.Now()); c["jti"] = fault.name; return c }())
			if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(fresh)); !r.allowed {
				t.Fatalf("known key no longer accepted after JWKS fault: %d %s", r.status, r.reason)
			}
		})
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	cfg.Token.JWKSMinRefetchInterval = time.Hour
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	before := jwks.hits.Load()
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			bogus := newSigningKey(t, "bogus-"+string(rune('a'+i%26))+time.Now().String(), jwa.ES256)
			r := az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, bogus, nil, claims(time.Now()))))
			if r.reason != "invalid-token" {
				t.Errorf("bogus kid: %s", r.reason)
			}
		}(i)
	}
	wg.Wait()
	if n := jwks.hits.Load() - before; n > 1 {
		t.Fatalf("a flood of bogus kids caused %d JWKS fetches, want at most 1 per interval", n)
	}
}

func TestNewTokenIsVerifiedOnceUnderRace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	before := testutil.ToFloat64(f.az.srv.Verifier.metrics.signatureChecks)
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
				t.Errorf("%d %s", r.status, r.reason)
			}
		}()
	}
	wg.Wait()
	if n := testutil.ToFloat64(f.az.srv.Verifier.metrics.signatureChecks) - before; n != 1 {
		t.Fatalf("%v signature verifications for one token, want 1", n)
	}
}

func TestCachedTokenIsNotUsedPastExpiry(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	clock := &fakeClock{now: time.Now()}
	cfg := testConfig(t, jwks.URL)
	cfg.Token.ClockSkew = 0
	az := startAuthz(t, cfg, clock)
	az.waitReady(t)
	cl := claims(clock.Now())
	cl["exp"] = clock.Now().Add(time.Minute).Unix()
	tok := sign(t, ec, nil, cl)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
		t.Fatalf("fresh token: %s", r.reason)
	}
	clock.Advance(2 * time.Minute)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.reason != "token-expired" {
		t.Fatalf("expired cached token: %d %s", r.status, r.reason)
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

func TestRefusedTokenIsRememberedButUnknownKidIsNot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bad := f.token(t, func(cl map[string]any) { cl["iss"] = "https://evil.test" })
	checks := func() float64 { return testutil.ToFloat64(f.az.srv.Verifier.metrics.signatureChecks) }
	before := checks()
	for i := 0; i < 5; i++ {
		if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(bad)); r.reason != "invalid-token" {
			t.Fatalf("bad token: %s", r.reason)
		}
	}
	if n := checks() - before; n != 1 {
		t.Fatalf("a replayed bad token was verified %v times, want 1", n)
	}
	// A token whose kid is not published yet is refused, then accepted once
	// the JWKS has the key: the refusal was not remembered.
	next := newSigningKey(t, "next", jwa.ES256)
	tok := sign(t, next, nil, claims(time.Now()))
	if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.reason != "invalid-token" {
		t.Fatalf("unpublished kid: %s", r.reason)
	}
	f.jwks.setKeys(t, f.rsa, f.ec, f.ed, next)
	if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
		t.Fatalf("after publication: %d %s", r.status, r.reason)
	}
}
