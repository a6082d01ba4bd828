package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/portcullis/portcullis/tokenissuer"
)

// chromiumPath finds the browser: PORTCULLIS_TEST_CHROMIUM, else chromium
// on the PATH. CI (which installs it) fails without one; elsewhere the
// browser tests are skipped with the reason.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("PORTCULLIS_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no browser: set PORTCULLIS_TEST_CHROMIUM or install Debian's chromium (.ci/run does)")
	}
	t.Skip("no browser for the portal tests: install chromium or set PORTCULLIS_TEST_CHROMIUM")
	return ""
}

// browser is one Chromium with its own profile (its own cookies), driven
// step by step. Every step saves a screenshot; a failed step fails the test
// with the page's text.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int
}

func newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(420, 900), // narrow: the pages must work on a phone
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it gets no timeout of its own.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", chromiumPath(t), err)
	}
	shots := os.Getenv("PORTCULLIS_TEST_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	shots = filepath.Join(shots, strings.ReplaceAll(t.Name(), "/", "_"), name)
	if err := os.MkdirAll(shots, 0o700); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, shots: shots}
}

// staleMarker is put into a page before a click that leaves it: a step
// that waits for the next page first waits for the marker to be gone, so an
// element of the old page (a notice, a form) is never taken for the new
// page's on a slow machine.
const staleMarker = "portcullis-stale-page"

// follow clicks sel and waits until the browser has left the page.
func follow[S chromedp.Selectable](sel S) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`document.body.appendChild(Object.assign(document.createElement("i"), {id: "`+staleMarker+`"}))`),
		chromedp.Click(sel),
		chromedp.WaitNotPresent(chromedp.ID(staleMarker)),
	)
}

// stepTimeout only catches a hang; a step waits for the page it expects.
const stepTimeout = time.Minute

// do runs a step's actions, then screenshots the page.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.screenshot(step)
	if err != nil {
		b.t.Fatalf("%s: %v\npage %s says:\n%s", step, err, b.location(), b.text())
	}
}

func (b *browser) screenshot(step string) {
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		_ = os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, strings.ReplaceAll(step, " ", "-"))), png, 0o600)
	}
}

func run[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v\npage %s says:\n%s", what, err, b.location(), b.text())
	}
	return v
}

func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Location())
	return s
}

// status is the HTTP status of the page shown.
func (b *browser) status() int {
	b.t.Helper()
	return run(b, "status", chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
}

// expectText fails unless the page says want.
func (b *browser) expectText(want string) {
	b.t.Helper()
	if got := b.text(); !strings.Contains(got, want) {
		b.t.Fatalf("page %s does not say %q; it says:\n%s", b.location(), want, got)
	}
}

// post submits a form the page did not offer, as someone editing the page
// could, waits for the answer page and returns its status. (A script
// could not send it with fetch: the pages' CSP allows no connections.)
func (b *browser) post(path string, fields map[string]string) int {
	b.t.Helper()
	var inputs strings.Builder
	for k, v := range fields {
		fmt.Fprintf(&inputs, `f.appendChild(Object.assign(document.createElement("input"), {type: "hidden", name: %q, value: %q}));`, k, v)
	}
	js := fmt.Sprintf(`(() => { document.body.appendChild(Object.assign(document.createElement("i"), {id: %q})); const f = document.createElement("form"); f.method = "post"; f.action = %q; %s document.body.appendChild(f); f.submit(); })()`, staleMarker, path, inputs.String())
	b.do("post "+path, chromedp.Evaluate[chromedp.Void](js), chromedp.WaitNotPresent(chromedp.ID(staleMarker)), chromedp.WaitVisible(chromedp.ID("message")))
	return b.status()
}

// csrf is the CSRF token of the page's forms.
func (b *browser) csrf() string {
	b.t.Helper()
	return run(b, "csrf token", chromedp.Evaluate[string](`document.querySelector("input[name=csrf]").value`))
}

// cookie returns the value of the browser's cookie name.
func (b *browser) cookie(name string) string {
	b.t.Helper()
	cookies := run(b, "cookies", func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		return r.Cookies, err
	})
	for _, c := range cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) signIn(portal, email, password string, then chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.do("sign in as "+email,
		chromedp.Navigate(portal),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		follow(chromedp.CSS(`main button[type=submit]`)),
		then,
	)
}

// TestPortalWalkThrough is the tenant admin's and the viewer's day in a real
// browser against a real issuer: sign in, create a client and use its secret,
// rotate, revoke, disable, stay inside the tenant, CSRF, read-only viewers,
// a second factor, sign-out.
func TestPortalWalkThrough(t *testing.T) {
	t.Parallel()
	e := start(t)
	b := newBrowser(t, "tenant-admin")

	// Sign in: a wrong password is refused without saying which part was
	// wrong; the right one lands on the clients page.
	b.signIn(e.portal, "admin@acme.example", "not the password", chromedp.WaitVisible(chromedp.ID("error")))
	b.expectText("The email or password is not right")
	if s := b.status(); s != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d", s)
	}
	b.do("sign in",
		chromedp.SetValue(chromedp.ID("password"), testPassword),
		follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("new-client")))

	// Create a client: scopes are checkboxes from the tenant's ceiling.
	b.do("new client form", follow(chromedp.ID("new-client")), chromedp.WaitVisible(chromedp.ID("name")))
	if n := run(b, "scope boxes", chromedp.Evaluate[int](`document.querySelectorAll("input[type=checkbox][name=scope]").length`)); n != 3 {
		t.Fatalf("%d scope checkboxes, want the 3 scopes of acme's ceiling", n)
	}
	b.do("create client",
		chromedp.SendKeys(chromedp.ID("name"), "Billing sync"),
		chromedp.Click(chromedp.CSS(`input[name=scope][value="accounts:read"]`)),
		follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("client-secret")))
	clientID := run(b, "client ID", chromedp.Text(chromedp.ID("client-id")))
	secret := run(b, "client secret", chromedp.Text(chromedp.ID("client-secret")))
	curl := run(b, "curl line", chromedp.Text(chromedp.ID("curl")))
	if !strings.Contains(curl, clientID+":"+secret) || !strings.Contains(curl, "/oauth2/token") {
		t.Errorf("curl line %q does not get a token for the new client", curl)
	}
	if strings.Contains(b.location(), secret) {
		t.Fatal("the secret is in the URL")
	}
	// Shown once: a reload shows it no more.
	b.do("reload the secret page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("gone")))
	if strings.Contains(b.text(), secret) {
		t.Fatal("the secret is shown again after a reload")
	}
	if got := e.tokenStatus(clientID, secret); got != http.StatusOK {
		t.Fatalf("the new secret gets no token: %d", got)
	}

	// Rotate: both secrets work, and the page says so.
	b.do("client page", chromedp.Navigate(e.portal+"clients/"+clientID), chromedp.WaitVisible(chromedp.ID("rotate")))
	b.do("rotate", follow(chromedp.ID("rotate")), chromedp.WaitVisible(chromedp.ID("client-secret")))
	rotated := run(b, "new secret", chromedp.Text(chromedp.ID("client-secret")))
	b.expectText("both work")
	if rotated == secret {
		t.Fatal("rotation showed the old secret")
	}
	if e.tokenStatus(clientID, secret) != http.StatusOK || e.tokenStatus(clientID, rotated) != http.StatusOK {
		t.Fatal("after rotation both secrets must work")
	}

	// Revoke the old secret: it fails, the new one works.
	c, err := e.admin.Client(asOperator(), clientID)
	if err != nil || len(c.Secrets) != 2 {
		t.Fatalf("client after rotation: %v %+v", err, c)
	}
	b.do("client page with two secrets", chromedp.Navigate(e.portal+"clients/"+clientID), chromedp.WaitVisible(chromedp.ID("rotate")))
	b.expectText("Both secrets work until you revoke one")
	b.do("revoke the old secret: asked first",
		follow(chromedp.CSS(fmt.Sprintf(`button[aria-label="Revoke secret %s"]`, c.Secrets[0].ID))),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	b.expectText("Whatever still uses this secret gets no more tokens")
	if got := e.tokenStatus(clientID, secret); got != http.StatusOK {
		t.Fatalf("the secret before the revocation was confirmed: %d", got)
	}
	b.do("revoke the old secret", follow(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	if got := e.tokenStatus(clientID, secret); got != http.StatusUnauthorized {
		t.Fatalf("the revoked secret: %d, want 401", got)
	}
	if got := e.tokenStatus(clientID, rotated); got != http.StatusOK {
		t.Fatalf("the new secret after revoking the old: %d", got)
	}

	// Revoke every token the client holds: recorded as a revocation.
	b.do("revoke all tokens: asked first", follow(chromedp.ID("revoke-tokens")), chromedp.WaitVisible(chromedp.ID("confirm")))
	b.expectText("The API refuses every token the client holds now")
	b.do("revoke all tokens", follow(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	b.expectText("Every token the client held is revoked")
	if records, _ := e.admin.Audit(asOperator(), tokenissuer.AuditQuery{TargetID: clientID}); !strings.Contains(fmt.Sprint(records), "revocation.client") {
		t.Fatal("no revocation in the audit trail")
	}

	// A form posted without its CSRF token is refused, and changes nothing.
	run(b, "strip the CSRF token", chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action$="/disable"] input[name=csrf]').remove()`))
	b.do("post without CSRF token", follow(chromedp.ID("disable")), chromedp.WaitVisible(chromedp.ID("message")))
	b.expectText("did not come from the portal")
	if s := b.status(); s != http.StatusForbidden {
		t.Errorf("no CSRF token: status %d", s)
	}
	if c, _ := e.admin.Client(asOperator(), clientID); c.Status != tokenissuer.ClientActive {
		t.Fatal("a form without its CSRF token disabled the client")
	}

	// Edit: the page says what a change does to tokens already issued.
	b.do("edit", chromedp.Navigate(e.portal+"clients/"+clientID), chromedp.WaitVisible(chromedp.ID("edit")),
		follow(chromedp.ID("edit")), chromedp.WaitVisible(chromedp.ID("save")))
	b.expectText("keeps the scopes it was issued with until it expires")
	b.do("save an edit", follow(chromedp.ID("save")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	b.expectText("New tokens carry the new scopes")

	// Disable: the token endpoint refuses the client.
	b.do("disable", chromedp.Navigate(e.portal+"clients/"+clientID), chromedp.WaitVisible(chromedp.ID("disable")),
		follow(chromedp.ID("disable")), chromedp.WaitVisible(chromedp.ID("confirm")), follow(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("enable")))
	if got := e.tokenStatus(clientID, rotated); got == http.StatusOK {
		t.Fatal("a disabled client still gets tokens")
	}

	// Another tenant's client is not found, even by editing the URL.
	b.do("another tenant's client", chromedp.Navigate(e.portal+"clients/"+e.otherClient), chromedp.WaitVisible(chromedp.ID("message")))
	if s := b.status(); s != http.StatusNotFound {
		t.Errorf("another tenant's client: status %d, want 404", s)
	}
	b.do("the clients list", chromedp.Navigate(e.portal+"clients"), chromedp.WaitVisible(chromedp.ID("new-client")))
	if strings.Contains(b.text(), e.otherClient) {
		t.Error("the clients list shows another tenant's client")
	}

	// The audit trail shows the tenant's changes, never a secret.
	b.do("audit trail", chromedp.Navigate(e.portal+"audit"), chromedp.WaitVisible(chromedp.CSS("table")))
	audit := b.text()
	for _, action := range []string{"created client", "added a secret to client", "revoked a secret of client", "disabled client", "signed in"} {
		if !strings.Contains(audit, action) {
			t.Errorf("the audit trail lacks %q", action)
		}
	}
	if strings.Contains(audit, secret) || strings.Contains(audit, rotated) || strings.Contains(audit, e.otherClient) {
		t.Error("the audit trail shows a secret or another tenant's change")
	}

	// Delete asks first, naming the client.
	b.do("delete confirmation", chromedp.Navigate(e.portal+"clients/"+clientID+"/delete"), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	b.expectText("Delete “Billing sync”?")
	b.do("delete", follow(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if _, err := e.admin.Client(asOperator(), clientID); err == nil {
		t.Fatal("the client is still there")
	}

	// A second factor: enroll, get recovery codes once, then sign-in asks
	// for a code.
	b.do("account page", chromedp.Navigate(e.portal+"account"), chromedp.WaitVisible(chromedp.ID("enroll")))
	b.do("start enrollment", chromedp.SendKeys(chromedp.ID("enroll-password"), testPassword), follow(chromedp.ID("enroll")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")))
	totpSecret := run(b, "TOTP key", chromedp.Text(chromedp.ID("totp-secret")))
	code, err := totp.GenerateCode(totpSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.do("confirm enrollment", chromedp.SendKeys(chromedp.ID("code"), code), follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	codes := strings.Fields(run(b, "recovery codes", chromedp.Text(chromedp.ID("recovery-codes"))))
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}

	// Sign out: the session ends in the store, so its cookie is worthless.
	session := b.cookie("portcullis-session")
	b.do("sign out", follow(chromedp.CSS(`form.sign-out button`)), chromedp.WaitVisible(chromedp.ID("email")))
	b.expectText("You are signed out")
	if _, _, err := e.accounts.Session(context.Background(), session); err == nil {
		t.Fatal("the session outlived sign-out")
	}
	b.do("a page after sign-out", chromedp.Navigate(e.portal+"clients"), chromedp.WaitVisible(chromedp.ID("email")))

	// With the second factor: password, then a code (a later one than the
	// enrollment's: a code is good once).
	b.signIn(e.portal, "admin@acme.example", testPassword, chromedp.WaitVisible(chromedp.ID("code")))
	b.do("a wrong code", chromedp.SendKeys(chromedp.ID("code"), "000000"), follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("error")))
	next, _ := totp.GenerateCode(totpSecret, time.Now().Add(30*time.Second))
	b.do("the right code", chromedp.SetValue(chromedp.ID("code"), next), follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("new-client")))
	b.do("sign out again", follow(chromedp.CSS(`form.sign-out button`)), chromedp.WaitVisible(chromedp.ID("email")))
	b.signIn(e.portal, "admin@acme.example", testPassword, chromedp.WaitVisible(chromedp.ID("code")))
	b.do("a recovery code", chromedp.SendKeys(chromedp.ID("code"), codes[0]), follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("new-client")))

	// A viewer sees clients but no write buttons, and the server refuses
	// writes anyway.
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	kept, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Reporting", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	v := newBrowser(t, "viewer")
	v.signIn(e.portal, "viewer@acme.example", testPassword, chromedp.WaitVisible(chromedp.CSS("table")))
	if strings.Contains(v.text(), "New client") {
		t.Error("a viewer is offered New client")
	}
	v.do("viewer on a client page", chromedp.Navigate(e.portal+"clients/"+kept.ID), chromedp.WaitVisible(chromedp.ID("client-id")))
	if n := run(v, "write buttons", chromedp.Evaluate[int](`document.querySelectorAll("main form, #rotate, #disable, #delete, #revoke-tokens").length`)); n != 0 {
		t.Errorf("a viewer's client page has %d forms or write buttons", n)
	}
	for _, action := range []string{"disable", "rotate-secret", "delete", "revoke-tokens"} {
		v.do("back to the client page", chromedp.Navigate(e.portal+"clients/"+kept.ID), chromedp.WaitVisible(chromedp.ID("client-id")))
		csrf := v.csrf()
		if got := v.post("/portal/clients/"+kept.ID+"/"+action, map[string]string{"csrf": csrf}); got != http.StatusForbidden {
			t.Errorf("a viewer's %s: status %d, want 403", action, got)
		}
	}
	if c, err := e.admin.Client(asOperator(), kept.ID); err != nil || c.Status != tokenissuer.ClientActive || len(c.Secrets) != 1 {
		t.Fatalf("a viewer changed the client: %v %+v", err, c)
	}
}

// TestPortalPlatformAdminAndInvitations walks a platform admin through
// tenants and signing keys, and a tenant admin's invitation through to the
// colleague's first sign-in.
func TestPortalPlatformAdminAndInvitations(t *testing.T) {
	t.Parallel()
	e := start(t)
	b := newBrowser(t, "platform-admin")
	b.signIn(e.portal, "ops@example.com", testPassword, chromedp.WaitVisible(chromedp.CSS("table")))

	b.do("tenants", chromedp.Navigate(e.portal+"tenants"), chromedp.WaitVisible(chromedp.ID("ceiling")))
	b.do("create a tenant",
		chromedp.SendKeys(chromedp.ID("id"), "initech"),
		chromedp.SendKeys(chromedp.ID("name"), "Initech"),
		chromedp.SendKeys(chromedp.ID("ceiling"), "accounts:read cards:read"),
		follow(chromedp.CSS(`main form[action="/portal/tenants"] button`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	b.do("narrow the ceiling",
		chromedp.SetValue(chromedp.ID("ceiling"), "accounts:read"),
		follow(chromedp.CSS(`form[action$="/ceiling"] button`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if tn, err := e.admin.Tenant(asOperator(), "initech"); err != nil || strings.Join(tn.ScopeCeiling, " ") != "accounts:read" {
		t.Fatalf("ceiling: %v %+v", err, tn)
	}
	b.do("disable the tenant: asked first", follow(chromedp.CSS(`form[action$="/disable"] button`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	b.expectText("the tenant's people are signed out")
	b.do("disable the tenant", follow(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(`form[action$="/enable"]`)))
	if tn, _ := e.admin.Tenant(asOperator(), "initech"); tn.Status != tokenissuer.TenantDisabled {
		t.Fatal("the tenant is not disabled")
	}

	b.do("signing keys", chromedp.Navigate(e.portal+"keys"), chromedp.WaitVisible(chromedp.ID("rotate-key")))
	before := len(e.srv.Keys.Keys())
	b.do("rotate the signing key", follow(chromedp.ID("rotate-key")), chromedp.WaitVisible(chromedp.ID("confirm")),
		follow(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if err := e.srv.Keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := len(e.srv.Keys.Keys()); after != before+1 {
		t.Fatalf("%d keys after rotation, %d before", after, before)
	}

	// A tenant admin invites a viewer; the link works once.
	a := newBrowser(t, "tenant-admin")
	a.signIn(e.portal, "admin@acme.example", testPassword, chromedp.WaitVisible(chromedp.ID("new-client")))
	a.do("people", chromedp.Navigate(e.portal+"people"), chromedp.WaitVisible(chromedp.ID("role")))
	if n := run(a, "roles offered", chromedp.Evaluate[int](`document.querySelectorAll("#role option").length`)); n != 2 {
		t.Errorf("a tenant admin is offered %d roles, want the 2 tenant roles", n)
	}
	a.do("invite", chromedp.SendKeys(chromedp.ID("email"), "new@acme.example"), chromedp.SendKeys(chromedp.ID("name"), "Nina New"),
		follow(chromedp.CSS(`form[action="/portal/people/invite"] button`)), chromedp.WaitVisible(chromedp.ID("invite-link")))
	link := run(a, "invitation link", chromedp.Text(chromedp.ID("invite-link")))
	if !strings.HasPrefix(link, e.portal+"invitation/") {
		t.Fatalf("invitation link %q", link)
	}
	a.do("reload the invitation page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("gone")))

	n := newBrowser(t, "invited")
	n.do("open the invitation", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password")))
	if strings.Contains(n.location(), strings.TrimPrefix(link, e.portal+"invitation/")) {
		t.Error("the invitation token stays in the address bar")
	}
	n.do("set a password",
		chromedp.SendKeys(chromedp.ID("password"), "a long enough passphrase"),
		chromedp.SendKeys(chromedp.ID("confirm"), "a long enough passphrase"),
		follow(chromedp.CSS(`main button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("email")))
	n.expectText("Your account is ready")
	n.signIn(e.portal, "new@acme.example", "a long enough passphrase", chromedp.WaitVisible(chromedp.CSS("form.sign-out")))
	n.expectText("tenant-viewer")
	n.do("the link again", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("message")))
	n.expectText("used already or has expired")
}
