package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// person is an HTTP client with its own cookies, reading the CSRF token of
// the last page it got, as a browser's forms carry it.
type person struct {
	t      *testing.T
	client *http.Client
	base   string
	csrf   string
	header http.Header
}

func newPerson(t *testing.T, base string) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, base: base, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (p *person) do(method, path string, form url.Values, extra ...string) (*http.Response, string) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(raw); m != nil {
		p.csrf = string(m[1])
	}
	p.header = resp.Header
	return resp, string(raw)
}

func (p *person) get(path string) (int, string) {
	resp, body := p.do(http.MethodGet, path, nil)
	return resp.StatusCode, body
}

// post sends a form with the CSRF token of the last page.
func (p *person) post(path string, form url.Values, extra ...string) (int, string) {
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", p.csrf)
	}
	resp, body := p.do(http.MethodPost, path, form, extra...)
	return resp.StatusCode, body
}

func (p *person) signIn(email string) {
	p.t.Helper()
	p.get("/portal/sign-in")
	if status, body := p.post("/portal/sign-in", url.Values{"email": {email}, "password": {testPassword}}); status != http.StatusSeeOther {
		p.t.Fatalf("sign in as %s: %d\n%s", email, status, body)
	}
}

func TestEveryPageForbidsFramingScriptsFromElsewhereAndCaching(t *testing.T) {
	t.Parallel()
	e := start(t)
	p := newPerson(t, strings.TrimSuffix(e.portal, "/portal/"))
	p.signIn("admin@acme.example")
	for _, path := range []string{"/portal/sign-in", "/portal/clients", "/portal/clients/" + e.otherClient, "/portal/no-such-page", "/portal/account"} {
		status, _ := p.get(path)
		h := p.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s (%d): CSP %q lacks %s", path, status, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code", path)
		}
		for name, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s %q, want %q", path, name, got, want)
			}
		}
	}
}

func TestSessionCookieIsHostOnlySecureHttpOnlyLax(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Portal.SecureCookies = true })
	p := newPerson(t, strings.TrimSuffix(e.portal, "/portal/"))
	p.get("/portal/sign-in")
	form := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(func() string { _, b := p.get("/portal/sign-in"); return b }())
	// Over plain HTTP the client will not send Secure cookies back; send the
	// form cookie by hand to see the session cookie the portal sets.
	resp, _ := p.do(http.MethodPost, "/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {testPassword}, "csrf": {form[1]}},
		"Cookie", "__Host-portcullis-form="+form[1])
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-portcullis-session" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("no __Host- session cookie: %v (status %d)", resp.Header.Values("Set-Cookie"), resp.StatusCode)
	}
	if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Domain != "" {
		t.Errorf("session cookie %+v", session)
	}
}

func TestFormsFromElsewhereAreRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	p := newPerson(t, strings.TrimSuffix(e.portal, "/portal/"))
	p.signIn("admin@acme.example")
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "App", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	p.get("/portal/clients/" + c.ID)
	disable := "/portal/clients/" + c.ID + "/disable"
	for name, tc := range map[string]struct {
		form  url.Values
		extra []string
	}{
		"no token":           {url.Values{"csrf": {""}}, nil},
		"another token":      {url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, nil},
		"cross-site, token":  {nil, []string{"Sec-Fetch-Site", "cross-site"}},
		"foreign origin":     {nil, []string{"Origin", "https://evil.example"}},
		"token in the query": {url.Values{"csrf": {""}}, nil},
	} {
		path := disable
		if name == "token in the query" {
			path += "?csrf=" + url.QueryEscape(p.csrf)
		}
		if status, _ := p.post(path, tc.form, tc.extra...); status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, status)
		}
	}
	if got, _ := e.admin.Client(asOperator(), c.ID); got.Status != tokenissuer.ClientActive {
		t.Fatal("a forged form disabled the client")
	}
	// Sign-in forms carry a token too (login CSRF).
	q := newPerson(t, p.base)
	if status, _ := q.post("/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {testPassword}, "csrf": {"forged"}}); status != http.StatusForbidden {
		t.Errorf("sign-in without the form's token: %d", status)
	}
}

func TestRefusedSignInsLookAlikeAndAreLimited(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Portal.SignInMaxFailures = 3 })
	p := newPerson(t, strings.TrimSuffix(e.portal, "/portal/"))
	p.get("/portal/sign-in")
	var bodies []string
	for _, email := range []string{"admin@acme.example", "nobody@acme.example"} {
		status, body := p.post("/portal/sign-in", url.Values{"email": {email}, "password": {"wrong password"}})
		if status != http.StatusUnauthorized {
			t.Fatalf("%s: %d", email, status)
		}
		bodies = append(bodies, strings.ReplaceAll(body, email, "EMAIL"))
	}
	if bodies[0] != bodies[1] {
		t.Error("a wrong password and an unknown email are answered differently")
	}
	p.post("/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {"wrong again"}})
	status, body := p.post("/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {testPassword}})
	if status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(body, "try again in") {
		t.Fatalf("after 3 failures from one address: %d Retry-After %q", status, p.header.Get("Retry-After"))
	}
}

// lockedBuffer collects log lines from concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSessionsAreServedByEveryReplica signs in at one issuer and uses the
// session at another on the same PostgreSQL; sign-out at either ends it at
// both. Nothing secret reaches either log.
func TestSessionsAreServedByEveryReplica(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	var logs lockedBuffer
	replica := func() (*server.Server, string) {
		dir := t.TempDir()
		cfg := server.DefaultConfig()
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Store.Driver, cfg.Store.PostgresDSN = "postgres", dsn
		cfg.Store.SecretHashKey = "dGVzdC1vbmx5LXNlY3JldC1oYXNoLWtleS0zMi1ieXRlcyE" // for tests only
		cfg.Keys.EncryptionKey = "dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI"      // for tests only
		cfg.Store.SQLitePath = filepath.Join(dir, "unused.db")
		cfg.Portal.SecureCookies = false
		cfg.LogLevel = "debug"
		srv := runIssuer(t, cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		return srv, "http://" + srv.AdminAddr().String()
	}
	srvA, a := replica()
	_, b := replica()

	// The replicas share the store: set up through the first.
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	if _, err := srvA.Admin().CreateTenant(op, tokenissuer.NewTenant{ID: "acme", ScopeCeiling: []string{"accounts:read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srvA.Accounts.CreateAccount(op, tokenissuer.NewAccount{Email: "admin@acme.example", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Password: testPassword}); err != nil {
		t.Fatal(err)
	}

	p := newPerson(t, a)
	p.signIn("admin@acme.example")
	// The same cookies, sent to the other replica.
	p.base = b
	jarCookies := p.client.Jar.Cookies(mustURL(t, a))
	p.client.Jar.SetCookies(mustURL(t, b), jarCookies)
	if status, body := p.get("/portal/clients"); status != http.StatusOK || !strings.Contains(body, "Clients of acme") {
		t.Fatalf("replica B does not know replica A's session: %d", status)
	}
	status, _ := p.post("/portal/clients", url.Values{"tenant": {"acme"}, "name": {"Billing"}, "scope": {"accounts:read"}})
	if status != http.StatusSeeOther {
		t.Fatalf("create at B: %d", status)
	}
	_, page := p.do(http.MethodGet, p.header.Get("Location"), nil)
	secret := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(page)
	if secret == nil {
		t.Fatalf("no secret on the page:\n%s", page)
	}
	if status, _ := p.post("/portal/sign-out", nil); status != http.StatusSeeOther {
		t.Fatalf("sign out at B: %d", status)
	}
	p.base = a
	p.client.Jar.SetCookies(mustURL(t, a), jarCookies)
	if status, _ := p.get("/portal/clients"); status != http.StatusSeeOther {
		t.Fatalf("replica A still serves a session signed out at B: %d", status)
	}
	for _, s := range append([]string{secret[1], testPassword}, cookieValues(jarCookies)...) {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a secret reached the logs: %q", s)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func cookieValues(cs []*http.Cookie) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Value)
	}
	return out
}

// TestTenantAdminsCannotMintOperators: a tenant's ceiling may hold
// portcullis.clients:manage (an operator put it there); a tenant-admin still
// cannot give it to a client from the portal: the service refuses it.
func TestTenantAdminsCannotMintOperators(t *testing.T) {
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	if _, err := e.admin.SetTenantCeiling(op, "acme", []string{"accounts:read", "accounts:write", "cards:read", "portcullis.clients:manage"}, false); err != nil {
		t.Fatal(err)
	}
	ada := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	ada.signIn("admin@acme.example")
	ada.get("/portal/clients/new?tenant=acme")
	status, body := ada.post("/portal/clients", url.Values{"tenant": {"acme"}, "name": {"Sneaky bot"}, "scope": {"portcullis.clients:manage"}})
	if status != http.StatusForbidden || !strings.Contains(body, "platform operators only") {
		t.Fatalf("a tenant-admin gave a client portcullis.clients:manage: %d", status)
	}
	clients, err := e.admin.Clients(tokenissuer.WithActor(asOperator(), tokenissuer.Actor{ID: "cli:test", Operator: true}), tokenissuer.ClientQuery{TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if slices.Contains(c.Scopes, "portcullis.clients:manage") {
			t.Fatalf("client %s holds portcullis.clients:manage", c.ID)
		}
	}
	// A platform admin may, explicitly.
	olga := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	olga.signIn("ops@example.com")
	olga.get("/portal/clients/new?tenant=acme")
	if status, _ := olga.post("/portal/clients", url.Values{"tenant": {"acme"}, "name": {"Acme automation"}, "scope": {"portcullis.clients:manage"}}); status != http.StatusSeeOther {
		t.Fatalf("a platform admin: %d", status)
	}
}

// TestClientPageShowsItsLimitsAndRefusals: a client over its per-client
// bound gets 429, and its page says so.
func TestClientPageShowsItsLimitsAndRefusals(t *testing.T) {
	e := start(t, func(c *server.Config) { c.RateLimit.TokensPerMinute = 1 })
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, secret, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Chatty", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	token := func() int {
		req, _ := http.NewRequest(http.MethodPost, e.public+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := token(), token(); a != http.StatusOK || b != http.StatusTooManyRequests {
		t.Fatalf("two tokens in a minute with a bound of one: %d, %d", a, b)
	}
	ada := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	ada.signIn("admin@acme.example")
	status, body := ada.get("/portal/clients/" + c.ID)
	if status != http.StatusOK || !strings.Contains(body, "1 token and 60 revocations a minute") || !strings.Contains(body, "refused 1 token request and 0 revocations") {
		t.Fatalf("client page: %d\n%s", status, body)
	}
}

// TestSignInLimitsCountTheSenderBehindTheProxy: behind the proxy the README
// recommends, the sign-in limit counts the address the proxy names, not the
// proxy, and failures aimed at an account slow it without locking its
// owner out: failures from one sender lock nobody out.
func TestSignInLimitsCountTheSenderBehindTheProxy(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) {
		c.Portal.SignInMaxFailures = 3
		c.Portal.SignInDelay = time.Millisecond
		c.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	})
	attacker := newPerson(t, strings.TrimSuffix(e.portal, "/portal/"))
	attacker.get("/portal/sign-in")
	for i := range 5 {
		attacker.post("/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {"wrong password"}},
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", 20+i))
	}
	for i := range 5 {
		attacker.post("/portal/sign-in", url.Values{"email": {fmt.Sprintf("guess-%d@acme.example", i)}, "password": {"wrong password"}},
			"X-Forwarded-For", "203.0.113.9")
	}
	if status, _ := attacker.post("/portal/sign-in", url.Values{"email": {"nobody@acme.example"}, "password": {"x"}}, "X-Forwarded-For", "203.0.113.9"); status != http.StatusTooManyRequests {
		t.Fatalf("the guessing sender is not limited: %d", status)
	}
	ada := newPerson(t, strings.TrimSuffix(e.portal, "/portal/"))
	ada.get("/portal/sign-in")
	if status, body := ada.post("/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {testPassword}}, "X-Forwarded-For", "198.51.100.2"); status != http.StatusSeeOther {
		t.Fatalf("someone else behind the same proxy: %d\n%s", status, body)
	}
}

// asOperator is a context in which the platform operator acts, as the CLI
// does: the service layer lets a context without an actor do nothing.
func asOperator() context.Context {
	return tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
}

var versionInput = regexp.MustCompile(`name="version" value="([^"]+)"`)

// TestEditingAClientIsRefusedOverAnotherTabsChange: a client's name and
// scopes are edited in the portal within the tenant's ceiling, the page
// says what a change does to tokens already issued, and a form filled
// before another tab saved is refused with the current values instead of
// silently undoing that change.
func TestEditingAClientIsRefusedOverAnotherTabsChange(t *testing.T) {
	e := start(t)
	c, _, err := e.admin.CreateClient(asOperator(), tokenissuer.NewClient{Name: "Billing sync", TenantID: "acme", Scopes: []string{"accounts:read", "cards:read"}})
	if err != nil {
		t.Fatal(err)
	}
	ada := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	ada.signIn("admin@acme.example")
	editPath := "/portal/clients/" + c.ID + "/edit"
	open := func() string {
		t.Helper()
		status, body := ada.get(editPath)
		m := versionInput.FindStringSubmatch(body)
		if status != http.StatusOK || m == nil || !strings.Contains(body, "keeps the scopes it was issued with until it expires (at most 15m0s)") {
			t.Fatalf("edit page: %d\n%s", status, body)
		}
		return m[1]
	}
	tab1, tab2 := open(), open()

	// The first tab narrows the scopes and renames the client.
	status, _ := ada.post(editPath, url.Values{"version": {tab1}, "name": {"Billing sync (read only)"}, "scope": {"accounts:read"}})
	if status != http.StatusSeeOther {
		t.Fatalf("first tab's save: %d", status)
	}
	got, err := e.admin.Client(asOperator(), c.ID)
	if err != nil || got.Name != "Billing sync (read only)" || strings.Join(got.Scopes, " ") != "accounts:read" {
		t.Fatalf("after the first save: %v %+v", err, got)
	}
	// The second tab, still showing the old values, tries to widen them
	// again: refused, and the page shows what is current now.
	status, body := ada.post(editPath, url.Values{"version": {tab2}, "name": {"Billing sync"}, "scope": {"accounts:read", "cards:read", "accounts:write"}})
	if status != http.StatusConflict || !strings.Contains(body, "changed since you opened the page") || !strings.Contains(body, `value="Billing sync (read only)"`) {
		t.Fatalf("the stale tab's save: %d\n%s", status, body)
	}
	if after, _ := e.admin.Client(asOperator(), c.ID); strings.Join(after.Scopes, " ") != "accounts:read" {
		t.Fatalf("the stale form was applied: %+v", after)
	}
	// A scope beyond the tenant's ceiling, sent by hand, is the service's
	// to refuse.
	fresh := open()
	if status, body := ada.post(editPath, url.Values{"version": {fresh}, "name": {"Billing sync"}, "scope": {"portcullis.admin"}}); status < 400 || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("a scope beyond the ceiling: %d\n%s", status, body)
	}
	// A viewer cannot edit.
	vic := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	vic.signIn("viewer@acme.example")
	if status, _ := vic.get(editPath); status != http.StatusForbidden {
		t.Fatalf("a viewer's edit page: %d", status)
	}
	if status, _ := vic.post(editPath, url.Values{"version": {fresh}, "name": {"x"}, "scope": {"accounts:read"}}); status != http.StatusForbidden {
		t.Fatalf("a viewer's save: %d", status)
	}
}

// TestDestructiveActionsAskFirst: every change that cannot simply be taken
// back shows what it will do and waits for a second, confirming post;
// until then nothing changes (the audit trail, which records every
// change, stays as it was).
func TestDestructiveActionsAskFirst(t *testing.T) {
	e := start(t)
	op := asOperator()
	c, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Billing sync", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.admin.RotateSecret(op, c.ID); err != nil {
		t.Fatal(err)
	}
	c, _ = e.admin.Client(op, c.ID)
	olga := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	olga.signIn("ops@example.com")
	people, err := e.accounts.Accounts(op, nil)
	if err != nil {
		t.Fatal(err)
	}
	var vic string
	for _, a := range people {
		if a.Email == "viewer@acme.example" {
			vic = a.ID
		}
	}
	trail := func() int {
		records, err := e.admin.Audit(op, tokenissuer.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(records)
	}
	for _, tc := range []struct {
		path   string
		form   url.Values
		effect string
	}{
		{"/portal/clients/" + c.ID + "/revoke-tokens", nil, "The API refuses every token the client holds now"},
		{"/portal/clients/" + c.ID + "/revoke-secret", url.Values{"secret_id": {c.Secrets[0].ID}}, "Whatever still uses this secret gets no more tokens"},
		{"/portal/clients/" + c.ID + "/disable", nil, "The token endpoint refuses the client"},
		{"/portal/tenants/acme/disable", nil, "people are signed out. Enable it again at any time"},
		{"/portal/keys/rotate", nil, "A new key is published at once"},
		{"/portal/people/" + vic + "/disable", nil, "Vic Viewer (viewer@acme.example)"},
		{"/portal/people/" + vic + "/delete", nil, "their account is gone"},
		{"/portal/people/" + vic + "/remove-2fa", nil, "sign in with their password alone"},
	} {
		before := trail()
		olga.get("/portal/account")
		status, body := olga.post(tc.path, tc.form)
		if status != http.StatusOK || !strings.Contains(body, `id="confirm"`) || !strings.Contains(body, tc.effect) || !strings.Contains(body, `name="confirmed" value="yes"`) {
			t.Errorf("%s: %d, no question saying %q:\n%s", tc.path, status, tc.effect, body)
		}
		if after := trail(); after != before {
			t.Errorf("%s changed something before it was confirmed (%d audit records, then %d)", tc.path, before, after)
		}
	}
	// Confirmed, the change is made.
	olga.get("/portal/account")
	if status, _ := olga.post("/portal/clients/"+c.ID+"/disable", url.Values{"confirmed": {"yes"}}); status != http.StatusSeeOther {
		t.Fatalf("a confirmed disable: %d", status)
	}
	if got, _ := e.admin.Client(op, c.ID); got.Status != tokenissuer.ClientDisabled {
		t.Fatal("the confirmed disable did nothing")
	}
}

// TestTheNavigationMarksTheCurrentPageAndTheIconIsReal: the current part
// of the portal is marked for screen readers and eyes alike, and the
// browser's /favicon.ico is the portal's icon, not the API's problem JSON.
func TestTheNavigationMarksTheCurrentPageAndTheIconIsReal(t *testing.T) {
	e := start(t)
	root := e.portal[:len(e.portal)-len("/portal/")]
	ada := newPerson(t, root)
	ada.signIn("admin@acme.example")
	_, body := ada.get("/portal/audit")
	if !strings.Contains(body, `href="/portal/audit" aria-current="page"`) || strings.Count(body, `aria-current="page"`) != 1 {
		t.Errorf("the audit page's navigation:\n%s", body)
	}
	resp, _ := ada.do(http.MethodGet, "/favicon.ico", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/portal/static/favicon.svg" {
		t.Fatalf("/favicon.ico: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, icon := ada.do(http.MethodGet, "/portal/static/favicon.svg", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/svg+xml") || !strings.Contains(icon, "<svg") {
		t.Fatalf("the icon: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Setting up a second factor offers the otpauth: link beside the QR code.
	ada.get("/portal/account")
	status, body := ada.post("/portal/account/second-factor", url.Values{"password": {testPassword}})
	if status != http.StatusOK || !regexp.MustCompile(`<a href="otpauth://totp/[^"]+secret=[A-Z2-7]+[^"]*" id="otpauth">`).MatchString(body) {
		t.Fatalf("enrollment: %d\n%s", status, body)
	}
}

// TestATenantAdminChangesAColleaguesRole: from the People page, within the
// tenant's roles; the service refuses an operator's role.
func TestATenantAdminChangesAColleaguesRole(t *testing.T) {
	e := start(t)
	op := asOperator()
	var vic *tokenissuer.Account
	people, err := e.accounts.Accounts(op, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range people {
		if a.Email == "viewer@acme.example" {
			vic = a
		}
	}
	ada := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	ada.signIn("admin@acme.example")
	_, body := ada.get("/portal/people")
	if !strings.Contains(body, `aria-label="Make admin: viewer@acme.example"`) {
		t.Fatalf("no way to promote on the People page:\n%s", body)
	}
	if status, _ := ada.post("/portal/people/"+vic.ID+"/role", url.Values{"role": {"tenant-admin"}}); status != http.StatusSeeOther {
		t.Fatalf("promote: %d", status)
	}
	role := func() tokenissuer.Role {
		people, _ := e.accounts.Accounts(op, nil)
		for _, a := range people {
			if a.ID == vic.ID {
				return a.Role
			}
		}
		return ""
	}
	if got := role(); got != tokenissuer.RoleTenantAdmin {
		t.Fatalf("after promotion: %s", got)
	}
	ada.get("/portal/people")
	if status, _ := ada.post("/portal/people/"+vic.ID+"/role", url.Values{"role": {"platform-admin"}}); status < 400 {
		t.Fatalf("a tenant admin made an operator: %d", status)
	}
}

var invitationLink = regexp.MustCompile(`/portal/invitation/[A-Za-z0-9_-]+`)

// TestPendingInvitationsAreListedResentAndRevoked: a tenant admin sees the
// tenant's live invitations (never another tenant's), resends one (the old
// link stops working) and revokes one after being asked.
func TestPendingInvitationsAreListedResentAndRevoked(t *testing.T) {
	e := start(t)
	root := e.portal[:len(e.portal)-len("/portal/")]
	ada := newPerson(t, root)
	ada.signIn("admin@acme.example")
	invite := func() string {
		t.Helper()
		ada.get("/portal/people")
		if status, _ := ada.post("/portal/people/invite", url.Values{"email": {"bea@acme.example"}, "name": {"Bea"}, "role": {"tenant-viewer"}}); status != http.StatusSeeOther {
			t.Fatalf("invite: %d", status)
		}
		_, body := ada.get("/portal/people/invited")
		link := invitationLink.FindString(body)
		if link == "" {
			t.Fatalf("no link shown:\n%s", body)
		}
		return link
	}
	first := invite()
	if _, _, err := e.accounts.Invite(asOperator(), nil, tokenissuer.NewInvite{Email: "gil@globex.example", Role: tokenissuer.RoleTenantViewer, TenantID: "globex"}); err != nil {
		t.Fatal(err)
	}
	_, body := ada.get("/portal/people")
	if !strings.Contains(body, `aria-label="Resend the invitation of bea@acme.example"`) || strings.Contains(body, "gil@globex.example") {
		t.Fatalf("pending invitations:\n%s", body)
	}
	second := invite() // what Resend posts
	// opens follows a link as its recipient's browser would (the link's
	// token moves to a cookie) and reports whether the form to create the
	// account is shown.
	opens := func(link string) bool {
		t.Helper()
		visitor := newPerson(t, root)
		visitor.get(link)
		status, body := visitor.get("/portal/invitation")
		return status == http.StatusOK && strings.Contains(body, `name="password"`)
	}
	if opens(first) {
		t.Error("the replaced link still opens")
	}
	if !opens(second) {
		t.Fatal("the new link does not open")
	}
	// Revoke: asked first, then the link is gone.
	ada.get("/portal/people")
	if status, body := ada.post("/portal/people/invitation/revoke", url.Values{"email": {"bea@acme.example"}, "tenant": {"acme"}}); status != http.StatusOK || !strings.Contains(body, "The link stops working at once") {
		t.Fatalf("revoke asks first: %d", status)
	}
	if status, _ := ada.post("/portal/people/invitation/revoke", url.Values{"email": {"bea@acme.example"}, "tenant": {"acme"}, "confirmed": {"yes"}}); status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", status)
	}
	if opens(second) {
		t.Error("a revoked invitation's link still opens")
	}
	// Another tenant's invitation cannot be revoked from here.
	ada.get("/portal/people")
	if status, _ := ada.post("/portal/people/invitation/revoke", url.Values{"email": {"gil@globex.example"}, "tenant": {"globex"}, "confirmed": {"yes"}}); status != http.StatusNotFound {
		t.Errorf("another tenant's invitation: %d, want 404", status)
	}
}

// TestHeadingsNameTheTenant: a tenant's people read its name, not its ID.
func TestHeadingsNameTheTenant(t *testing.T) {
	e := start(t)
	ada := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	ada.signIn("admin@acme.example")
	if _, body := ada.get("/portal/clients"); !strings.Contains(body, "<h1>Clients of Acme</h1>") {
		t.Fatalf("clients heading:\n%s", body)
	}
}

// TestClientPageTellsWhichSecretIsInUse: during a rotation, the page shows
// each secret's last four characters and when it last got a token, and
// points at the one nothing has used for days.
func TestClientPageTellsWhichSecretIsInUse(t *testing.T) {
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, oldSecret, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Rotating", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	_, added, newSecret, err := e.admin.RotateSecret(op, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.public+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, newSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token with the new secret: %d", resp.StatusCode)
	}
	if err := e.srv.Endpoints.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The old secret was made, and last used, weeks ago.
	weeksAgo := time.Now().Add(-20 * 24 * time.Hour)
	if _, err := e.srv.Store.UpdateClient(context.Background(), c.ID, func(cl *tokenissuer.Client) error {
		cl.Secrets[0].CreatedAt = weeksAgo.Add(-24 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Store.RecordUsage(context.Background(), []tokenissuer.Usage{{ClientID: c.ID, SecretID: c.Secrets[0].ID, At: weeksAgo}}); err != nil {
		t.Fatal(err)
	}

	ada := newPerson(t, e.portal[:len(e.portal)-len("/portal/")])
	ada.signIn("admin@acme.example")
	status, body := ada.get("/portal/clients/" + c.ID)
	if status != http.StatusOK {
		t.Fatalf("client page: %d", status)
	}
	row := func(id string) string {
		start := strings.Index(body, `<tr id="secret-`+id+`">`)
		if start < 0 {
			t.Fatalf("no row for secret %s:\n%s", id, body)
		}
		return body[start : start+strings.Index(body[start:], "</tr>")]
	}
	oldRow, newRow := row(c.Secrets[0].ID), row(added.ID)
	if !strings.Contains(oldRow, "…"+oldSecret[len(oldSecret)-4:]) || !strings.Contains(newRow, "…"+newSecret[len(newSecret)-4:]) {
		t.Errorf("the rows do not show the secrets' last four characters:\n%s\n%s", oldRow, newRow)
	}
	if !strings.Contains(oldRow, "No token in 20 days: nothing seems to use it") {
		t.Errorf("the old secret's row does not say it is unused:\n%s", oldRow)
	}
	if !strings.Contains(newRow, "just now") || strings.Contains(newRow, "data-idle") {
		t.Errorf("the new secret's row does not say it is in use:\n%s", newRow)
	}
	if strings.Contains(body, newSecret) || strings.Contains(body, oldSecret) {
		t.Fatal("the page shows a whole secret")
	}
	if !strings.Contains(body, `id="last-used">just now`) {
		t.Errorf("the client's last token is not shown")
	}
	// The list says it too, and so does the API.
	if _, list := ada.get("/portal/clients"); !strings.Contains(list, "just now") {
		t.Errorf("the clients list does not show the last token")
	}
	// The questions before revoking say what the revocation will hit.
	ada.get("/portal/clients/" + c.ID)
	_, ask := ada.post("/portal/clients/"+c.ID+"/revoke-secret", url.Values{"secret_id": {c.Secrets[0].ID}})
	if !strings.Contains(ask, "This is the secret ending in …"+oldSecret[len(oldSecret)-4:]) || !strings.Contains(ask, "It last got a token 20 days ago") {
		t.Errorf("revoking the old secret does not say which it is and when it was used:\n%s", ask)
	}
	ada.get("/portal/clients/" + c.ID)
	if _, ask := ada.post("/portal/clients/"+c.ID+"/revoke-tokens", nil); !strings.Contains(ask, "It last got a token just now: it holds live tokens, and they will be refused.") {
		t.Errorf("revoking the tokens does not say some are live:\n%s", ask)
	}
}

// TestTenantFormsRefuseAStaleTab: the scope-ceiling and name forms carry
// the version they were read at; a save from a tab opened before another
// tab's change is refused with the current values, never written over
// them. An operator renames and deletes tenants here too; a tenant still
// holding clients is not deleted.
func TestTenantFormsRefuseAStaleTab(t *testing.T) {
	e := start(t)
	base := e.portal[:len(e.portal)-len("/portal/")]
	olga := newPerson(t, base)
	olga.signIn("ops@example.com")
	version := regexp.MustCompile(`name="version" value="([^"]+)"`)
	_, page := olga.get("/portal/tenants/acme")
	stale := version.FindStringSubmatch(page)[1]

	// Tab B narrows the ceiling; tab A, opened before, saves its copy.
	if status, body := olga.post("/portal/tenants/acme/ceiling", url.Values{"ceiling": {"accounts:read accounts:write"}, "version": {stale}}); status != http.StatusSeeOther {
		t.Fatalf("tab B: %d\n%s", status, body)
	}
	status, body := olga.post("/portal/tenants/acme/ceiling", url.Values{"ceiling": {"accounts:read accounts:write cards:read"}, "version": {stale}})
	if status != http.StatusConflict || !strings.Contains(body, "This changed since you opened the page") || !strings.Contains(body, ">accounts:read accounts:write</textarea>") {
		t.Fatalf("tab A's stale save: %d\n%s", status, body)
	}
	if got, _ := e.admin.Tenant(tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"}), "acme"); strings.Join(got.ScopeCeiling, " ") != "accounts:read accounts:write" {
		t.Fatalf("the stale save was written: %v", got.ScopeCeiling)
	}
	if status, _ := olga.post("/portal/tenants/acme/name", url.Values{"name": {"Acme Corp"}, "version": {stale}}); status != http.StatusConflict {
		t.Fatalf("a stale rename: %d", status)
	}
	current := version.FindStringSubmatch(body)[1]
	if status, body := olga.post("/portal/tenants/acme/name", url.Values{"name": {"Acme Corp"}, "version": {current}}); status != http.StatusSeeOther {
		t.Fatalf("rename: %d\n%s", status, body)
	}
	if _, page := olga.get("/portal/tenants/acme"); !strings.Contains(page, "<h1>Acme Corp</h1>") {
		t.Fatal("the rename does not show")
	}

	// Deleting asks first, and refuses a tenant that still has clients or people.
	if status, body := olga.post("/portal/tenants/globex/delete", nil); status != http.StatusOK || !strings.Contains(body, `id="confirm"`) {
		t.Fatalf("delete asks first: %d", status)
	}
	status, body = olga.post("/portal/tenants/globex/delete", url.Values{"confirmed": {"yes"}})
	if status != http.StatusConflict || !strings.Contains(body, "The tenant still has 1 client and 0 people. Delete them first") {
		t.Fatalf("deleting a tenant with a client: %d\n%s", status, body)
	}
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	if err := e.admin.DeleteClient(op, e.otherClient); err != nil {
		t.Fatal(err)
	}
	if status, _ := olga.post("/portal/tenants/globex/delete", url.Values{"confirmed": {"yes"}}); status != http.StatusSeeOther {
		t.Fatalf("deleting an empty tenant: %d", status)
	}
	if status, _ := olga.get("/portal/tenants/globex"); status != http.StatusNotFound {
		t.Fatalf("the deleted tenant's page: %d", status)
	}
	// A tenant's admin sees neither form.
	ada := newPerson(t, base)
	ada.signIn("admin@acme.example")
	if _, page := ada.get("/portal/tenants/acme"); strings.Contains(page, `action="/portal/tenants/acme/name"`) || strings.Contains(page, "delete-tenant") {
		t.Error("a tenant admin is offered the operator's tenant forms")
	}
	if status, _ := ada.post("/portal/tenants/acme/name", url.Values{"name": {"Mine"}, "version": {current}}); status != http.StatusForbidden {
		t.Errorf("a tenant admin renames the tenant: %d", status)
	}
}
