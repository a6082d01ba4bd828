package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// TestJWKSIsRefreshedInTheBackground: with unknown-kid refetches throttled,
// a newly published key is still learned by the periodic refresh.
func TestJWKSIsRefreshedInTheBackground(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	cfg.Token.JWKSRefreshInterval = time.Second
	cfg.Token.JWKSMinRefetchInterval = time.Hour
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	next := newSigningKey(t, "ec-2", jwa.ES256)
	tok := sign(t, next, nil, claims(time.Now()))
	// This uses up the one refetch the interval allows.
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.reason != "invalid-token" {
		t.Fatalf("unpublished key: %s", r.reason)
	}
	jwks.setKeys(t, ec, next)
	waitUntil(t, "the background refresh to bring the new key", func() bool {
		return az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)).allowed
	})
}

// TestDiscoveryRefusesMetadataOfAnotherIssuer: RFC 8414 §3.3, the metadata's
// issuer must be the configured one, or its jwks_uri is not trusted.
func TestDiscoveryRefusesMetadataOfAnotherIssuer(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	var metaHits atomic.Int64
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": "https://impostor.test", "jwks_uri": jwks.URL})
		metaHits.Add(1)
	}))
	t.Cleanup(meta.Close)
	cfg := testConfig(t, "")
	cfg.Token.Issuer = meta.URL
	az := startAuthz(t, cfg, SystemClock{})
	cl := claims(time.Now())
	cl["iss"] = meta.URL
	tok := sign(t, ec, nil, cl)
	// Wait for discovery attempts, not for time.
	waitUntil(t, "two discovery attempts", func() bool { return metaHits.Load() >= 2 })
	if az.srv.Ready() {
		t.Fatal("ready with keys from another issuer's metadata")
	}
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.status != 503 {
		t.Fatalf("check: %d %s", r.status, r.reason)
	}
}

func TestAcceptJWTTypeSetting(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	cfg.Token.AcceptJWTType = true
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	for typ, want := range map[string]string{"JWT": "allowed", "at+jwt": "allowed", "id+jwt": "invalid-token"} {
		if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(sign(t, ec, map[string]any{"typ": typ}, claims(time.Now())))); r.reason != want {
			t.Errorf("typ %q with accept_jwt_type: %s, want %s", typ, r.reason, want)
		}
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
