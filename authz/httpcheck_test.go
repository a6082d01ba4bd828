package authz

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/portcullis/portcullis/internal/telemetry"
)

// httpAuthz is an authz whose HTTP listener answers in one mode, beside
// its gRPC Check, over real loopback connections.
type httpAuthz struct {
	*fixture
	url string
}

func newHTTPAuthz(t testing.TB, mode HTTPMode, tune func(*HTTPConfig)) *httpAuthz {
	t.Helper()
	f := &fixture{ec: newSigningKey(t, "ec-1", jwa.ES256)}
	f.jwks = newJWKSServer(t, f.ec)
	cfg := testConfig(t, f.jwks.URL)
	cfg.HTTP.Listen, cfg.HTTP.Mode = "127.0.0.1:0", mode
	if tune != nil {
		tune(&cfg.HTTP)
	}
	f.az = startAuthz(t, cfg, SystemClock{})
	f.az.waitReady(t)
	return &httpAuthz{fixture: f, url: "http://" + f.az.srv.HTTPAddr().String()}
}

// httpReply is an HTTP answer as its receiver got it: authz's to the
// proxy, or the proxy's to the client.
type httpReply struct {
	status int
	header http.Header
	body   string
}

// ask sends an authorization request as a proxy of the mode would, for
// the original method and URI, with the client's headers.
func (a *httpAuthz) ask(t *testing.T, method, uri string, headers ...[2]string) httpReply {
	t.Helper()
	var req *http.Request
	var err error
	switch a.az.srv.cfg.HTTP.Mode {
	case HTTPModeEnvoy:
		req, err = http.NewRequest(method, a.url+a.az.srv.cfg.HTTP.PathPrefix+uri, nil)
	case HTTPModeNginx:
		req, err = http.NewRequest(http.MethodGet, a.url+"/auth", nil)
		if err == nil {
			req.Header.Set("X-Original-Method", method)
			req.Header.Set("X-Original-URI", uri)
		}
	default:
		req, err = http.NewRequest(http.MethodGet, a.url+"/", nil)
		if err == nil {
			req.Header.Set("X-Forwarded-Method", method)
			req.Header.Set("X-Forwarded-Uri", uri)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) httpReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	return readReply(t, resp, err)
}

// readReply reads a response whole, failing t on err or a read error.
func readReply(t *testing.T, resp *http.Response, err error) httpReply {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpReply{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// TestHTTPDecidesAsCheck: every request of the table gets, over HTTP in
// every mode, the status, body and challenge the gRPC Check gives it, and
// an allow the same trusted headers: one decision, two adapters.
func TestHTTPDecidesAsCheck(t *testing.T) {
	t.Parallel()
	for _, mode := range HTTPModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			a := newHTTPAuthz(t, mode, nil)
			token := a.token(t, nil)
			narrow := a.token(t, withScope("accounts:read"))
			cases := []struct {
				name, method, path string
				headers            [][2]string
			}{
				{"allowed", "GET", "/v1/accounts/1", [][2]string{bearer(token)}},
				{"allowed with a query", "GET", "/v1/accounts/1?x=%2F", [][2]string{bearer(token)}},
				{"allowed on behalf of a user", "POST", "/v1/accounts", [][2]string{bearer(token), obo("user 42")}},
				{"public", "GET", "/healthz", nil},
				{"missing token", "GET", "/v1/accounts/1", nil},
				{"invalid token", "GET", "/v1/accounts/1", [][2]string{bearer(token[:len(token)-4] + "AAAA")}},
				{"two Authorization headers", "GET", "/v1/accounts/1", [][2]string{bearer(token), bearer(token)}},
				{"missing scope", "PUT", "/v1/accounts/1", [][2]string{bearer(narrow)}},
				{"no route", "GET", "/v2/nothing", [][2]string{bearer(token)}},
				{"blocked user", "POST", "/v1/accounts", [][2]string{bearer(token), obo("user 43")}},
				{"blocked user may read", "GET", "/v1/accounts/1", [][2]string{bearer(token), obo("user 43")}},
				{"unknown user", "POST", "/v1/accounts", [][2]string{bearer(token), obo("user 999")}},
				{"user context required", "POST", "/v1/accounts", [][2]string{bearer(token)}},
				{"two on-behalf-of", "POST", "/v1/accounts", [][2]string{bearer(token), obo("user 42"), obo("user 42")}},
				{"matrix parameter", "GET", "/v1/accounts/1;x=y", [][2]string{bearer(token)}},
				{"encoded slash", "GET", "/v1/accounts/1%2F..%2F2", [][2]string{bearer(token)}},
				{"dot segment", "GET", "/v1/accounts/../cards", [][2]string{bearer(token)}},
				{"empty segment", "GET", "/v1//accounts", [][2]string{bearer(token)}},
			}
			for _, c := range cases {
				grpc := a.az.check(t, c.method, c.path, false, c.headers...)
				got := a.ask(t, c.method, c.path, c.headers...)
				wantStatus := grpc.status
				if mode == HTTPModeNginx && wantStatus != 200 {
					wantStatus = 403
					if d := got.header.Get(DenialHeader); d != grpc.reason {
						t.Errorf("%s: %s %q, want the reason %q", c.name, DenialHeader, d, grpc.reason)
					}
				}
				if got.status != wantStatus {
					t.Errorf("%s: HTTP %d, want %d (gRPC %d %s); body %s", c.name, got.status, wantStatus, grpc.status, grpc.reason, got.body)
					continue
				}
				if !grpc.allowed {
					if got.body != grpc.body || got.header.Get("Content-Type") != "application/json" || got.header.Get("Cache-Control") != "no-store" {
						t.Errorf("%s: HTTP answer %q %v, want the body %q as JSON, no-store", c.name, got.body, got.header, grpc.body)
					}
					if got.header.Get("WWW-Authenticate") != grpc.headers["www-authenticate"] {
						t.Errorf("%s: challenge %q, want %q", c.name, got.header.Get("WWW-Authenticate"), grpc.headers["www-authenticate"])
					}
					continue
				}
				for _, name := range []string{"x-auth-client-id", "x-auth-scopes", "x-auth-tenant-id", "x-auth-user-id"} {
					want, set := grpc.headers[name]
					if got.header.Get(name) != want || (len(got.header.Values(name)) == 1) != set {
						t.Errorf("%s: %s %q, want %q (set: %v)", c.name, name, got.header.Values(name), want, set)
					}
				}
				if mode == HTTPModeEnvoy {
					removed := strings.Split(got.header.Get("X-Envoy-Auth-Headers-To-Remove"), ", ")
					if !containsAll(removed, grpc.removed...) || len(removed) != len(grpc.removed) {
						t.Errorf("%s: Envoy told to remove %q, want %q", c.name, removed, grpc.removed)
					}
				}
			}
		})
	}
}

// TestHTTPBelievesTrustedProxiesOnly: a request from an address outside
// http.trusted_proxies is refused whatever it says, so the listener cannot
// be asked about a request no proxy received; the denials too.
func TestHTTPBelievesTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	for _, mode := range HTTPModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			a := newHTTPAuthz(t, mode, func(c *HTTPConfig) { c.TrustedProxies = []string{"192.0.2.10", "2001:db8::/32"} })
			for _, path := range []string{"/v1/accounts/1", "/healthz"} {
				got := a.ask(t, "GET", path, bearer(a.token(t, nil)))
				want := 403
				if got.status != want || !strings.Contains(got.body, `"untrusted-proxy"`) {
					t.Errorf("%s from an untrusted address: %d %s, want 403 untrusted-proxy", path, got.status, got.body)
				}
			}
			if mode == HTTPModeNginx {
				req, _ := http.NewRequest("GET", a.url+DenialsPath+"user-blocked", nil)
				if got := do(t, req); got.status != 403 || got.header.Get(DenialHeader) != "untrusted-proxy" {
					t.Errorf("a denial asked from an untrusted address: %d %v", got.status, got.header)
				}
			}
		})
	}
}

// TestHTTPRefusesWhatAProxyWouldNotSend: the headers that describe the
// original request must be there once; a path outside Envoy's prefix is
// refused.
func TestHTTPRefusesWhatAProxyWouldNotSend(t *testing.T) {
	t.Parallel()
	fa := newHTTPAuthz(t, HTTPModeForwardAuth, nil)
	token := fa.token(t, nil)
	for name, headers := range map[string]map[string][]string{
		"no URI":     {"X-Forwarded-Method": {"GET"}},
		"no method":  {"X-Forwarded-Uri": {"/v1/accounts/1"}},
		"two URIs":   {"X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/v1/accounts/1", "/v1/cards"}},
		"nginx kind": {"X-Original-Method": {"GET"}, "X-Original-Uri": {"/v1/accounts/1"}},
	} {
		req, _ := http.NewRequest("GET", fa.url+"/", nil)
		for k, v := range headers {
			req.Header[k] = v
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if got := do(t, req); got.status != 400 || !strings.Contains(got.body, `"invalid-path"`) {
			t.Errorf("%s: %d %s, want 400 invalid-path", name, got.status, got.body)
		}
	}

	envoy := newHTTPAuthz(t, HTTPModeEnvoy, func(c *HTTPConfig) { c.PathPrefix = "/authz" })
	token = envoy.token(t, nil)
	if got := envoy.ask(t, "GET", "/v1/accounts/1", bearer(token)); got.status != 200 {
		t.Errorf("under the prefix: %d %s", got.status, got.body)
	}
	req, _ := http.NewRequest("GET", envoy.url+"/v1/accounts/1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if got := do(t, req); got.status != 400 {
		t.Errorf("outside the prefix: %d %s, want 400", got.status, got.body)
	}
}

// TestHTTPBoundsHeaders: headers past http.max_header_bytes are refused
// (431) before any decision; a request within it is decided.
func TestHTTPBoundsHeaders(t *testing.T) {
	t.Parallel()
	a := newHTTPAuthz(t, HTTPModeForwardAuth, func(c *HTTPConfig) { c.MaxHeaderBytes = 8 << 10 })
	token := a.token(t, nil)
	if got := a.ask(t, "GET", "/v1/accounts/1", bearer(token), [2]string{"X-Padding", strings.Repeat("a", 2<<10)}); got.status != 200 {
		t.Errorf("within the bound: %d %s", got.status, got.body)
	}
	if got := a.ask(t, "GET", "/v1/accounts/1", bearer(token), [2]string{"X-Padding", strings.Repeat("a", 64<<10)}); got.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("past the bound: %d %s, want 431", got.status, got.body)
	}
}

// TestHTTPUnderscoredImitations: a header spelt with underscores that
// imitates a trusted header is refused where the proxy cannot be told to
// remove it, on public routes too, and named for removal to Envoy.
func TestHTTPUnderscoredImitations(t *testing.T) {
	t.Parallel()
	for _, mode := range HTTPModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			a := newHTTPAuthz(t, mode, nil)
			token := a.token(t, nil)
			for _, spoof := range []string{"x_auth_user_id", "X_On_Behalf_Of", "x-auth_tenant-id"} {
				for _, path := range []string{"/v1/accounts/1", "/healthz"} {
					got := a.ask(t, "GET", path, bearer(token), [2]string{spoof, "1"})
					if mode == HTTPModeEnvoy {
						if got.status != 200 || !strings.Contains(got.header.Get("X-Envoy-Auth-Headers-To-Remove"), strings.ToLower(spoof)) {
							t.Errorf("%s on %s: %d, removing %q", spoof, path, got.status, got.header.Get("X-Envoy-Auth-Headers-To-Remove"))
						}
						continue
					}
					want := 400
					if mode == HTTPModeNginx {
						want = 403
					}
					if got.status != want || !strings.Contains(got.body, `"spoofed-header"`) {
						t.Errorf("%s on %s: %d %s, want %d spoofed-header", spoof, path, got.status, got.body, want)
					}
				}
			}
			if got := a.ask(t, "GET", "/v1/accounts/1", bearer(token), [2]string{"x_request_id", "harmless"}); got.status != 200 {
				t.Errorf("an unrelated underscored header: %d %s", got.status, got.body)
			}
		})
	}
}

// TestHTTPNginxDenials: the denials nginx's error_page fetches are the
// client's answers exactly (the 409 body of the contract), without the
// challenge the proxy copies; an unknown name is unavailable, never OK.
func TestHTTPNginxDenials(t *testing.T) {
	t.Parallel()
	a := newHTTPAuthz(t, HTTPModeNginx, nil)
	get := func(reason string) httpReply {
		req, _ := http.NewRequest("GET", a.url+DenialsPath+reason, nil)
		return do(t, req)
	}
	blocked := get("user-blocked")
	if blocked.status != 409 || blocked.body != string(blockedUserBody) || blocked.header.Get("Content-Type") != "application/json" {
		t.Errorf("user-blocked: %d %v %q", blocked.status, blocked.header, blocked.body)
	}
	if got := get("missing-token"); got.status != 401 || got.header.Get("WWW-Authenticate") != "" {
		t.Errorf("missing-token: %d %v", got.status, got.header)
	}
	if got := get("overloaded"); got.status != 503 || got.header.Get("Retry-After") != "1" {
		t.Errorf("overloaded: %d %v", got.status, got.header)
	}
	for _, bogus := range []string{"allowed", "public", "nonsense", ""} {
		if got := get(bogus); got.status != 503 || !strings.Contains(got.body, `"unavailable"`) {
			t.Errorf("%q: %d %s, want 503 unavailable", bogus, got.status, got.body)
		}
	}
}

// TestHTTPCountsLogsAndShadowsAsCheck: HTTP decisions land in the same
// metric, by reason, and the same decision log as gRPC ones (never with the
// token), and the shadow policy is evaluated beside them.
func TestHTTPCountsLogsAndShadowsAsCheck(t *testing.T) {
	t.Parallel()
	f := &fixture{ec: newSigningKey(t, "ec-1", jwa.ES256)}
	f.jwks = newJWKSServer(t, f.ec)
	cfg := testConfig(t, f.jwks.URL)
	cfg.HTTP.Listen, cfg.HTTP.Mode = "127.0.0.1:0", HTTPModeForwardAuth
	cfg.ShadowPolicy = shadowPolicy(t)
	var logs syncBuffer
	f.az = startAuthzLogging(t, cfg, SystemClock{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	f.az.waitReady(t)
	waitUntil(t, "the shadow policy to load", func() bool { return f.az.srv.Shadow.Current() != nil })
	a := &httpAuthz{fixture: f, url: "http://" + f.az.srv.HTTPAddr().String()}

	// The shadow policy requires accounts:details here too.
	token := a.token(t, withScope("accounts:read"))
	if got := a.ask(t, "GET", "/v1/accounts/42", bearer(token)); got.status != 200 {
		t.Fatalf("the shadow decided: %d %s", got.status, got.body)
	}
	if got := a.ask(t, "GET", "/v1/accounts/42?q=1", bearer("not-a-jwt")); got.status != 401 {
		t.Fatalf("an invalid token: %d %s", got.status, got.body)
	}
	req, _ := http.NewRequest("GET", "http://"+a.az.srv.AdminAddr().String()+"/metrics", nil)
	metrics := do(t, req).body
	for _, want := range []string{
		`portcullis_authz_checks_total{outcome="deny",reason="invalid-token"} 1`,
		`portcullis_policy_shadow_disagreements_total{live_reason="allowed",shadow_reason="missing-scope"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	log := logs.String()
	if !strings.Contains(log, `"reason":"invalid-token"`) || !strings.Contains(log, `"path":"/v1/accounts/42"`) {
		t.Errorf("the decision log lacks the HTTP denial:\n%s", log)
	}
	if strings.Contains(log, token) || strings.Contains(log, "not-a-jwt") || strings.Contains(log, "q=1") {
		t.Errorf("the decision log holds a token or a query:\n%s", log)
	}
}

// TestHTTPContinuesTheProxysTrace: a traceparent from the proxy is the
// parent of the check's span.
func TestHTTPContinuesTheProxysTrace(t *testing.T) {
	t.Parallel()
	f := newDeciderFixture(t, []string{"ES256"}, newSigningKey(t, "ec-1", jwa.ES256))
	exporter := tracetest.NewInMemoryExporter()
	provider := telemetry.NewProvider(sdktrace.NewSimpleSpanProcessor(exporter), 1, nil)
	t.Cleanup(func() { provider.Shutdown(context.Background()) })
	svc := NewService(f.decider, ServiceConfig{Tracer: provider.Tracer(tracerName), Propagator: telemetry.Propagator()}, SystemClock{}, discard(), f.metrics)
	cfg := defaultHTTPConfig()
	cfg.Mode = HTTPModeForwardAuth
	h, err := NewHTTPHandler(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/v1/accounts/1")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if got := do(t, req); got.status != 401 {
		t.Fatalf("%d %s", got.status, got.body)
	}
	spans := exporter.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no span")
	}
	s := spans[len(spans)-1]
	if s.Name != "authz.Check" || s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %s in trace %s under %s, want authz.Check continuing the proxy's", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID())
	}
}

func TestHTTPConfigProblems(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		tune func(*HTTPConfig)
		want string
	}{
		{func(c *HTTPConfig) { c.Mode = "" }, "http.mode: required"},
		{func(c *HTTPConfig) { c.Mode = "haproxy" }, `http.mode: "haproxy" is not`},
		{func(c *HTTPConfig) { c.TrustedProxies = nil }, "http.trusted_proxies: list"},
		{func(c *HTTPConfig) { c.TrustedProxies = []string{"0.0.0.0/0"} }, "trusts every address"},
		{func(c *HTTPConfig) { c.TrustedProxies = []string{"proxy.internal"} }, "not an IP or a CIDR prefix"},
		{func(c *HTTPConfig) { c.PathPrefix = "/authz" }, "only mode envoy"},
		{func(c *HTTPConfig) { c.Mode, c.PathPrefix = HTTPModeEnvoy, "/authz/" }, "clean absolute path"},
		{func(c *HTTPConfig) { c.Listen = "9003" }, "http.listen"},
		{func(c *HTTPConfig) { c.MaxHeaderBytes = 10 }, "http.max_header_bytes"},
	} {
		cfg := DefaultConfig()
		cfg.HTTP.Listen, cfg.HTTP.Mode = "127.0.0.1:9003", HTTPModeNginx
		c.tune(&cfg.HTTP)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	cfg := DefaultConfig()
	cfg.HTTP.Mode = "nonsense" // ignored while the listener is off
	if err := cfg.Validate(); err != nil {
		t.Errorf("off: %v", err)
	}
}
