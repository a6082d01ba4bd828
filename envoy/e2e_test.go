package envoy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
)

// echoed is what the sample upstream saw.
type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
}

// echoUpstream echoes what it received, reading header names as CGI, WSGI
// and Rack-style servers do: case-folded, with "_" taken as "-", so
// x_auth_user_id arrives as x-auth-user-id (as in Puma CVE-2024-45614).
func echoUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers := map[string][]string{}
		for k, v := range r.Header {
			folded := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			headers[folded] = append(headers[folded], v...)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: headers})
	}))
	t.Cleanup(s.Close)
	return s
}

// stack is Envoy (the front proxy), authz, the real issuer and the echo
// upstream, all on loopback.
type stack struct {
	proxy  *httptest.Server
	issuer *issuertest.Issuer
	authz  *authz.Server
	stop   context.CancelFunc
	done   chan error
}

// stackOption changes the front proxy from envoy.yaml's behaviour.
type stackOption func(*frontProxy)

// allowingUnderscores is Envoy with its default headers_with_underscores_action
// (ALLOW), as a configuration that forgot the setting would run it.
func allowingUnderscores(p *frontProxy) { p.allowUnderscores = true }

func startStack(t *testing.T, raw bool, opts ...stackOption) *stack {
	t.Helper()
	iss := issuertest.Start(t, issuertest.Options{Audience: "https://api.example.com", TenantID: "acme",
		Scopes: []string{"accounts:read", "accounts:write", "users:read", "core.users:act-on-behalf-of"}})
	cfg := authz.DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Policy = "../examples/policy"
	cfg.Users.File = "../examples/users/users.yaml"
	cfg.Token.Issuer = iss.URL
	cfg.LogLevel = "error"
	az, err := authz.NewServer(cfg, authz.SystemClock{}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{issuer: iss, authz: az, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- az.Run(ctx) }()
	t.Cleanup(func() { s.stop(); <-s.done })
	deadline := time.Now().Add(time.Minute) // catches a hang, not a slow machine
	for !az.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("authz not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn, err := grpc.NewClient(az.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	issuerURL, _ := url.Parse(iss.URL)
	upstreamURL, _ := url.Parse(echoUpstream(t).URL)
	names := authz.DefaultHeaderNames()
	proxy := &frontProxy{
		// envoy.yaml gives authz 250 ms; the tests give it what a busy
		// machine needs, since that budget is not what they test.
		authz: authv3.NewAuthorizationClient(conn), timeout: 30 * time.Second, statusOnError: http.StatusServiceUnavailable,
		rawHeaders: raw, strip: []string{names.ClientID, names.Scopes, names.TenantID, names.UserID},
		issuer: issuerURL, upstream: upstreamURL,
	}
	for _, o := range opts {
		o(proxy)
	}
	s.proxy = httptest.NewServer(proxy)
	t.Cleanup(s.proxy.Close)
	return s
}

type response struct {
	status int
	header http.Header
	body   string
	echo   *echoed
}

// call sends a raw HTTP request through the proxy; target is sent verbatim
// so path tricks reach the proxy as a client wrote them.
func (s *stack) call(t *testing.T, method, target string, headers ...[2]string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.proxy.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if resp.StatusCode == 200 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		var e echoed
		if json.Unmarshal(body, &e) == nil && e.Headers != nil {
			r.echo = &e
		}
	}
	return r
}

func TestThroughEnvoy(t *testing.T) {
	t.Parallel()
	for _, raw := range []bool{false, true} {
		name := "headers map"
		if raw {
			name = "raw header_map"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, raw)
			// The client gets its token through Envoy: the token route is public.
			token := issuertest.TokenFrom(t, s.proxy.URL+"/oauth2/token", s.issuer.ClientID, s.issuer.ClientSecret, "")
			auth := [2]string{"Authorization", "Bearer " + token}
			readOnly := [2]string{"Authorization", "Bearer " + s.issuer.Token(t, "accounts:read")}

			t.Run("public route, spoofed headers vanish", func(t *testing.T) {
				r := s.call(t, "GET", "/healthz", [2]string{"X-Auth-User-Id", "1"}, [2]string{"X-On-Behalf-Of", "user 42"})
				if r.status != 200 || r.echo == nil || r.echo.Headers["x-auth-user-id"] != nil || r.echo.Headers["x-on-behalf-of"] != nil {
					t.Fatalf("%d %s", r.status, r.body)
				}
			})
			t.Run("401 without a token", func(t *testing.T) {
				r := s.call(t, "GET", "/v1/accounts/42")
				if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="api"` || !strings.Contains(r.body, `"missing-token"`) || r.header.Get("Content-Type") != "application/json" {
					t.Fatalf("%d %v %s", r.status, r.header, r.body)
				}
			})
			t.Run("403 for a missing scope", func(t *testing.T) {
				r := s.call(t, "PUT", "/v1/accounts/42", readOnly)
				if r.status != 403 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) || !strings.Contains(r.body, `"missing-scope"`) {
					t.Fatalf("%d %v %s", r.status, r.header, r.body)
				}
			})
			t.Run("409 for a blocked user, body byte for byte", func(t *testing.T) {
				r := s.call(t, "POST", "/v1/accounts", auth, [2]string{"X-On-Behalf-Of", "user 43"})
				want := "{\n  \"code\": \"operation-not-allowed\",\n  \"message\": \"The current status of the user does not allow calling this endpoint\",\n  \"reasons\": [\"user-blocked\"]\n}"
				if r.status != 409 || r.body != want || r.header.Get("Content-Type") != "application/json" {
					t.Fatalf("%d %q", r.status, r.body)
				}
			})
			t.Run("on-behalf-of becomes the trusted user header", func(t *testing.T) {
				r := s.call(t, "POST", "/v1/accounts?x=1", auth, [2]string{"X-On-Behalf-Of", "user 42"}, [2]string{"X-Auth-User-Id", "1"})
				if r.status != 200 || r.echo == nil {
					t.Fatalf("%d %s", r.status, r.body)
				}
				h := r.echo.Headers
				if strings.Join(h["x-auth-user-id"], "|") != "42" || strings.Join(h["x-auth-client-id"], "|") != "acme-app" || strings.Join(h["x-auth-tenant-id"], "|") != "acme" || h["x-on-behalf-of"] != nil {
					t.Fatalf("upstream saw %v", h)
				}
				if r.echo.Path != "/v1/accounts" || r.echo.Query != "x=1" {
					t.Fatalf("upstream path %s?%s", r.echo.Path, r.echo.Query)
				}
			})
			t.Run("spoofed trusted headers never reach the upstream", func(t *testing.T) {
				r := s.call(t, "GET", "/v1/accounts/42", auth, [2]string{"X-Auth-User-Id", "1"}, [2]string{"X-Auth-Client-Id", "admin"}, [2]string{"X-Auth-Scopes", "everything"})
				h := r.echo.Headers
				if h["x-auth-user-id"] != nil || strings.Join(h["x-auth-client-id"], "|") != "acme-app" || strings.Contains(strings.Join(h["x-auth-scopes"], " "), "everything") {
					t.Fatalf("upstream saw %v", h)
				}
			})
			t.Run("two Authorization headers", func(t *testing.T) {
				r := s.call(t, "GET", "/v1/accounts/42", auth, auth)
				if r.status != 401 || !strings.Contains(r.body, "malformed-token") {
					t.Fatalf("%d %s", r.status, r.body)
				}
			})
			t.Run("paths are normalized before authz and the upstream", func(t *testing.T) {
				r := s.call(t, "GET", "/v1/users/../accounts//42", auth)
				if r.status != 200 || r.echo.Path != "/v1/accounts/42" {
					t.Fatalf("%d %s", r.status, r.body)
				}
				if r := s.call(t, "GET", "/v1/accounts%2F42", auth); r.status != 400 {
					t.Fatalf("escaped slash: %d", r.status)
				}
				if r := s.call(t, "GET", "/v1/%61ccounts/42", auth); r.status != 400 || !strings.Contains(r.body, "invalid-path") {
					t.Fatalf("encoded letter: %d %s", r.status, r.body)
				}
			})
		})
	}
}

// TestUnderscoreSpellingsNeverReachTheUpstream: a client sends trusted
// headers spelt with underscores, which the upstream folds onto the dashed
// names. Envoy as configured refuses the request; an Envoy left at its
// default lets it through, and then authz removes those headers, on private
// and public routes, from headers and header_map.
func TestUnderscoreSpellingsNeverReachTheUpstream(t *testing.T) {
	t.Parallel()
	spoofs := [][2]string{{"x_auth_user_id", "1"}, {"X_Auth_Tenant_Id", "globex"}, {"x_auth_client_id", "admin"}, {"x_auth-scopes", "everything"}, {"x_on_behalf_of", "user 42"}}

	t.Run("envoy.yaml refuses them", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, true)
		token := s.issuer.Token(t, "")
		if r := s.call(t, "GET", "/v1/accounts/42", append([][2]string{{"Authorization", "Bearer " + token}}, spoofs[0])...); r.status != http.StatusBadRequest {
			t.Fatalf("header with underscores: %d, want 400", r.status)
		}
	})
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("authz removes them (raw header_map %v)", raw), func(t *testing.T) {
			t.Parallel()
			s := startStack(t, raw, allowingUnderscores)
			token := s.issuer.Token(t, "")
			for _, path := range []string{"/v1/accounts/42", "/healthz"} {
				r := s.call(t, "GET", path, append([][2]string{{"Authorization", "Bearer " + token}}, spoofs...)...)
				if r.status != 200 || r.echo == nil {
					t.Fatalf("%s: %d %s", path, r.status, r.body)
				}
				h := r.echo.Headers
				if h["x-auth-user-id"] != nil || h["x-on-behalf-of"] != nil {
					t.Errorf("%s: the upstream read a user the client never proved: %v", path, h)
				}
				for name, spoofed := range map[string]string{"x-auth-tenant-id": "globex", "x-auth-client-id": "admin", "x-auth-scopes": "everything"} {
					for _, v := range h[name] {
						if strings.Contains(v, spoofed) {
							t.Errorf("%s: the upstream read %s: %q", path, name, v)
						}
					}
				}
				if path != "/healthz" && strings.Join(h["x-auth-client-id"], "|") != "acme-app" {
					t.Errorf("%s: x-auth-client-id %v", path, h["x-auth-client-id"])
				}
			}
		})
	}
}

func TestEnvoyAnswersStatusOnErrorWhenAuthzIsDown(t *testing.T) {
	t.Parallel()
	s := startStack(t, false)
	token := s.issuer.Token(t, "")
	s.stop()
	<-s.done
	s.done <- nil // for the cleanup
	if r := s.call(t, "GET", "/v1/accounts/42", [2]string{"Authorization", "Bearer " + token}); r.status != 503 {
		t.Fatalf("authz down: %d, want status_on_error 503 (never fail open)", r.status)
	}
	if r := s.call(t, "GET", "/healthz"); r.status != 503 {
		t.Fatalf("authz down, public route: %d", r.status)
	}
}
