package authz

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/examples"
)

// The real proxies' end-to-end suite: a client → nginx or Caddy → authz
// (HTTP mode) → an upstream that echoes what it received, over loopback,
// with the proxies' configurations of examples/ as they are shipped.

// proxyBinary finds a proxy's binary: $env, else on the PATH. Without it
// the test skips, but fails under CI, which installs both proxies.
func proxyBinary(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found and %s unset: CI must run the %s end-to-end tests (.ci/run installs Debian's %s)", name, env, name, name)
	}
	t.Skipf("%s not found (set %s): skipping the end-to-end tests through it", name, env)
	return ""
}

// echoUpstream is the API behind the proxy: it answers 200 with the
// request it received, and remembers every one.
type echoUpstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []echoed
}

type echoed struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Header map[string][]string `json:"header"`
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	u := &echoUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := echoed{Method: r.Method, URI: r.RequestURI, Header: map[string][]string{}}
		for k, v := range r.Header {
			e.Header[strings.ToLower(k)] = v
		}
		u.mu.Lock()
		u.got = append(u.got, e)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// reached returns every request the upstream received.
func (u *echoUpstream) reached() []echoed {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]echoed(nil), u.got...)
}

// renderExample reads a configuration of examples/ and moves its
// addresses to the test's, each of which it must name.
func renderExample(t *testing.T, file string, addrs map[string]string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	for from, to := range addrs {
		if !strings.Contains(conf, from) {
			t.Fatalf("examples/%s no longer names %s; update the test with it", file, from)
		}
		conf = strings.ReplaceAll(conf, from, to)
	}
	return conf
}

// freeAddr is a loopback address nothing listens on, for a proxy to bind.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runProxy starts a proxy process and waits until it answers on addr.
func runProxy(t *testing.T, cmd *exec.Cmd, addr string) {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", filepath.Base(cmd.Path), out.String())
		}
	})
	deadline := time.Now().Add(patience)
	for {
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", filepath.Base(cmd.Path), err, out.String())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened on %s:\n%s", filepath.Base(cmd.Path), addr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNginx runs examples/nginx/portcullis.conf inside a main
// configuration that keeps nginx's files in dir.
func startNginx(t *testing.T, authzAddr, upstreamAddr string) string {
	bin := proxyBinary(t, "PORTCULLIS_TEST_NGINX", "nginx")
	dir := t.TempDir()
	addr := freeAddr(t)
	site := renderExample(t, "nginx/portcullis.conf", map[string]string{examples.ProxyAddr: addr, examples.AuthzHTTPAddr: authzAddr, examples.UpstreamAddr: upstreamAddr})
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(examples.NginxMain(dir, site)), 0o644); err != nil {
		t.Fatal(err)
	}
	runProxy(t, exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr"), addr)
	return addr
}

// startCaddy runs examples/caddy/Caddyfile.
func startCaddy(t *testing.T, authzAddr, upstreamAddr string) string {
	bin := proxyBinary(t, "PORTCULLIS_TEST_CADDY", "caddy")
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "Caddyfile")
	_, port, _ := net.SplitHostPort(addr)
	site := renderExample(t, "caddy/Caddyfile", map[string]string{"http://:8000": "http://:" + port, examples.AuthzHTTPAddr: authzAddr, examples.UpstreamAddr: upstreamAddr})
	if err := os.WriteFile(conf, []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	runProxy(t, cmd, addr)
	return addr
}

// send writes one request exactly as given (its request target and header
// names unchanged by any client library) and reads the answer.
func send(t *testing.T, addr, method, target string, headers ...[2]string) httpReply {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(patience))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: api.example.com\r\n", method, target)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if method == "POST" || method == "PUT" {
		b.WriteString("Content-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
	} else {
		b.WriteString("\r\n")
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	return readReply(t, resp, err)
}

// realProxy is a proxy the end-to-end tests run, with the mode authz
// answers it in.
type realProxy struct {
	name  string
	mode  HTTPMode
	start func(t *testing.T, authzAddr, upstreamAddr string) string
}

var (
	realNginx   = realProxy{"nginx", HTTPModeNginx, startNginx}
	realCaddy   = realProxy{"caddy", HTTPModeForwardAuth, startCaddy}
	realProxies = []realProxy{realNginx, realCaddy}
)

// TestThroughNginx and TestThroughCaddy run the suite through each proxy.
func TestThroughNginx(t *testing.T) {
	t.Parallel()
	proxySuite(t, realNginx)
}

func TestThroughCaddy(t *testing.T) {
	t.Parallel()
	proxySuite(t, realCaddy)
}

func proxySuite(t *testing.T, p realProxy) {
	up := newEchoUpstream(t)
	a := newHTTPAuthz(t, p.mode, nil)
	proxy := p.start(t, a.az.srv.HTTPAddr().String(), up.srv.Listener.Addr().String())
	denials := newDenialTable(DefaultConfig().Realm)
	token := a.token(t, nil)
	narrow := a.token(t, withScope("accounts:read"))
	auth := [2]string{"Authorization", "Bearer " + token}

	// allowed reaches the upstream and returns what it received.
	allowed := func(name string, r httpReply) echoed {
		t.Helper()
		var e echoed
		if r.status != 200 || json.Unmarshal([]byte(r.body), &e) != nil {
			t.Fatalf("%s: %d %v %s, want the upstream's 200", name, r.status, r.header, r.body)
		}
		return e
	}
	// denied is authz's denial exactly as the client receives it.
	denied := func(name string, r httpReply, reason Reason, challenge string) {
		t.Helper()
		d := denials.get(reason)
		if r.status != d.Status || r.body != string(d.Body) || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %v %q, want %d %q as application/json, no-store", name, r.status, r.header, r.body, d.Status, d.Body)
		}
		if got := r.header.Values("Www-Authenticate"); (challenge == "" && len(got) != 0) || (challenge != "" && (len(got) != 1 || got[0] != challenge)) {
			t.Errorf("%s: challenges %q, want %q", name, got, challenge)
		}
	}
	// imitations are the upstream's headers that a client may have set.
	header := func(e echoed, name string) []string { return e.Header[name] }

	t.Run("allowed", func(t *testing.T) {
		e := allowed("allowed", send(t, proxy, "GET", "/v1/accounts/7?page=2", auth))
		if e.URI != "/v1/accounts/7?page=2" {
			t.Errorf("the upstream got %q", e.URI)
		}
		for name, want := range map[string]string{"x-auth-client-id": "client-1", "x-auth-tenant-id": "acme", "x-auth-scopes": "accounts:read accounts:write users:read core.users:act-on-behalf-of"} {
			if got := header(e, name); len(got) != 1 || got[0] != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		if got := header(e, "x-auth-user-id"); len(got) != 0 {
			t.Errorf("x-auth-user-id %q without on-behalf-of", got)
		}
	})
	t.Run("on behalf of a user", func(t *testing.T) {
		e := allowed("on behalf", send(t, proxy, "POST", "/v1/accounts", auth, [2]string{"X-On-Behalf-Of", "user 42"}))
		if got := header(e, "x-auth-user-id"); len(got) != 1 || got[0] != "42" {
			t.Errorf("x-auth-user-id %q, want 42", got)
		}
		if got := header(e, "x-on-behalf-of"); len(got) != 0 {
			t.Errorf("x-on-behalf-of reached the upstream: %q", got)
		}
	})
	t.Run("spoofed trusted headers", func(t *testing.T) {
		e := allowed("spoofed", send(t, proxy, "GET", "/v1/accounts/7", auth,
			[2]string{"X-Auth-User-Id", "1"}, [2]string{"x-auth-tenant-id", "globex"}, [2]string{"X-Auth-Client-Id", "admin"}))
		if got := header(e, "x-auth-user-id"); len(got) != 0 {
			t.Errorf("a spoofed x-auth-user-id reached the upstream: %q", got)
		}
		if got := header(e, "x-auth-tenant-id"); len(got) != 1 || got[0] != "acme" {
			t.Errorf("x-auth-tenant-id %q, want only acme", got)
		}
		if got := header(e, "x-auth-client-id"); len(got) != 1 || got[0] != "client-1" {
			t.Errorf("x-auth-client-id %q, want only client-1", got)
		}
		// A public route: nothing of the client's passes either.
		e = allowed("spoofed on a public route", send(t, proxy, "GET", "/healthz", [2]string{"X-Auth-User-Id", "1"}, [2]string{"X-Auth-Client-Id", "admin"}))
		for _, name := range []string{"x-auth-user-id", "x-auth-client-id"} {
			if got := header(e, name); len(got) != 0 {
				t.Errorf("public route: %s %q reached the upstream", name, got)
			}
		}
	})
	t.Run("underscored imitations", func(t *testing.T) {
		before := len(up.reached())
		for _, spoof := range []string{"x_auth_user_id", "X_On_Behalf_Of", "x-auth_tenant-id"} {
			for _, target := range []string{"/v1/accounts/7", "/healthz"} {
				r := send(t, proxy, "GET", target, auth, [2]string{spoof, "1"})
				if r.status == 200 {
					var e echoed
					json.Unmarshal([]byte(r.body), &e)
					for name := range e.Header {
						if strings.Contains(name, "_") {
							t.Errorf("%s on %s: the upstream received %s", spoof, target, name)
						}
					}
				} else if r.status != 400 || !strings.Contains(r.body, `"spoofed-header"`) {
					t.Errorf("%s on %s: %d %s, want it dropped or 400 spoofed-header", spoof, target, r.status, r.body)
				}
			}
		}
		for _, e := range up.reached()[before:] {
			for name := range e.Header {
				if strings.Contains(name, "_") {
					t.Errorf("the upstream received %s", name)
				}
			}
		}
	})
	t.Run("missing token", func(t *testing.T) {
		denied("missing", send(t, proxy, "GET", "/v1/accounts/7"), ReasonMissingToken, `Bearer realm="api"`)
	})
	t.Run("invalid token", func(t *testing.T) {
		denied("invalid", send(t, proxy, "GET", "/v1/accounts/7", [2]string{"Authorization", "Bearer " + token[:len(token)-4] + "AAAA"}),
			ReasonInvalidToken, denials.get(ReasonInvalidToken).WWWAuthenticate)
	})
	t.Run("missing scope", func(t *testing.T) {
		denied("missing scope", send(t, proxy, "PUT", "/v1/accounts/7", [2]string{"Authorization", "Bearer " + narrow}),
			ReasonMissingScope, `Bearer realm="api", error="insufficient_scope", scope="accounts:write"`)
	})
	t.Run("blocked user", func(t *testing.T) {
		r := send(t, proxy, "POST", "/v1/accounts", auth, [2]string{"X-On-Behalf-Of", "user 43"})
		denied("blocked", r, ReasonUserBlocked, "")
		if r.status != 409 || r.body != "{\n  \"code\": \"operation-not-allowed\",\n  \"message\": \"The current status of the user does not allow calling this endpoint\",\n  \"reasons\": [\"user-blocked\"]\n}" {
			t.Errorf("blocked: %d %q, not the contract's 409", r.status, r.body)
		}
	})
	t.Run("path tricks", func(t *testing.T) {
		before := len(up.reached())
		for _, target := range []string{"/v1/accounts/7;x=y", "/v1/accounts;/7", "/v1/accounts/7%2F..%2F8", "/v1/accounts%2f7", "/v1/accounts/%2e%2e/cards"} {
			denied(target, send(t, proxy, "GET", target, auth), ReasonInvalidPath, "")
		}
		if n := len(up.reached()) - before; n != 0 {
			t.Errorf("%d refused paths reached the upstream", n)
		}
	})
}

// TestProxyRefusesAskedByAnUntrustedAddress: an authz that does not trust
// the proxy's address refuses everything it is asked through it.
func TestProxyRefusesAskedByAnUntrustedAddress(t *testing.T) {
	t.Parallel()
	for _, c := range realProxies {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up := newEchoUpstream(t)
			a := newHTTPAuthz(t, c.mode, func(h *HTTPConfig) { h.TrustedProxies = []string{"192.0.2.10"} })
			proxy := c.start(t, a.az.srv.HTTPAddr().String(), up.srv.Listener.Addr().String())
			for _, target := range []string{"/v1/accounts/7", "/healthz"} {
				r := send(t, proxy, "GET", target, [2]string{"Authorization", "Bearer " + a.token(t, nil)})
				if r.status != 403 || !strings.Contains(r.body, `"untrusted-proxy"`) {
					t.Errorf("%s: %d %s, want 403 untrusted-proxy", target, r.status, r.body)
				}
			}
			if n := len(up.reached()); n != 0 {
				t.Errorf("%d requests reached the upstream", n)
			}
		})
	}
}

// TestProxyFailsClosedWhenAuthzFails: a proxy whose authz hangs up on
// every request answers the client 5xx and lets nothing through.
func TestProxyFailsClosedWhenAuthzFails(t *testing.T) {
	t.Parallel()
	for _, c := range realProxies {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			up := newEchoUpstream(t)
			dead, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dead.Close() })
			go func() {
				for {
					conn, err := dead.Accept()
					if err != nil {
						return
					}
					conn.Close()
				}
			}()
			proxy := c.start(t, dead.Addr().String(), up.srv.Listener.Addr().String())
			for _, target := range []string{"/v1/accounts/7", "/healthz"} {
				r := send(t, proxy, "GET", target, [2]string{"Authorization", "Bearer a.b.c"})
				if r.status < 500 {
					t.Errorf("%s: %d %s, want a 5xx", target, r.status, r.body)
				}
			}
			if n := len(up.reached()); n != 0 {
				t.Errorf("%d requests reached the upstream", n)
			}
		})
	}
}

// TestDocsShowTheShippedProxyConfigs: the nginx and Caddy configurations
// docs/proxies.md shows are the examples' that the tests run, but for
// comments (and Caddy's global options, which are the tests' loopback
// setup).
func TestDocsShowTheShippedProxyConfigs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/proxies.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ fence, file string }{{"```nginx\n", "nginx/portcullis.conf"}, {"```caddyfile\n", "caddy/Caddyfile"}} {
		_, rest, ok := strings.Cut(string(doc), c.fence)
		if !ok {
			t.Fatalf("docs/proxies.md shows no %s block", strings.TrimSpace(c.fence))
		}
		block, _, _ := strings.Cut(rest, "```")
		example, err := os.ReadFile(filepath.Join("..", "examples", c.file))
		if err != nil {
			t.Fatal(err)
		}
		shipped := significantLines(string(example))
		if len(shipped) > 0 && shipped[0] == "{" { // Caddy's global options
			end := 0
			for end < len(shipped) && shipped[end] != "}" {
				end++
			}
			shipped = shipped[end+1:]
		}
		if shown := significantLines(block); strings.Join(shown, "\n") != strings.Join(shipped, "\n") {
			t.Errorf("docs/proxies.md's block differs from examples/%s:\n--- shown\n%s\n--- shipped\n%s", c.file, strings.Join(shown, "\n"), strings.Join(shipped, "\n"))
		}
	}
}

// significantLines are a configuration's lines without comments, blank
// lines and indentation.
func significantLines(conf string) []string {
	var out []string
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			out = append(out, line)
		}
	}
	return out
}
