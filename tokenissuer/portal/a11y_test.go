package portal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/tokenissuer"
)

// axeSource reads axe-core (from npm), which the accessibility test runs
// in each page: PORTCULLIS_TEST_AXE names its axe.min.js (.ci/run installs
// it). CI fails without it; elsewhere the test is skipped with the reason.
func axeSource(t *testing.T) string {
	path := os.Getenv("PORTCULLIS_TEST_AXE")
	if path == "" {
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, ".cache", "portcullis-ci", "axe", "node_modules", "axe-core", "axe.min.js"); fileExists(p) {
				path = p
			}
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no axe-core: set PORTCULLIS_TEST_AXE to axe.min.js (.ci/run installs it from npm)")
		}
		t.Skip("no axe-core for the accessibility test: npm install axe-core and set PORTCULLIS_TEST_AXE to its axe.min.js")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("PORTCULLIS_TEST_AXE: %v", err)
	}
	return string(src)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// axeCheck lists the serious and critical violations axe finds in the page.
const axeCheck = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
	.filter(v => v.impact === "serious" || v.impact === "critical")
	.map(v => v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))`

// sideways is how far the page is wider than the window: a table or form
// that makes a phone scroll sideways hides what is beyond the edge.
const sideways = `document.documentElement.scrollWidth - window.innerWidth`

// TestEveryPageIsAccessibleAtBothWidths: every page, signed out, as a
// tenant admin and as a platform operator, at a desktop width (1280 px) and
// a phone's (390 px): axe-core finds no serious or critical violation, and
// no page scrolls sideways on the phone.
func TestEveryPageIsAccessibleAtBothWidths(t *testing.T) {
	t.Parallel()
	axe := axeSource(t)
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{ID: "acme-billing", Name: "Billing with a rather long name to wrap", TenantID: "acme", Scopes: []string{"accounts:read", "accounts:write"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.admin.RotateSecret(op, c.ID); err != nil {
		t.Fatal(err)
	}
	olga, err := e.accounts.FindAccount(op, "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	invitation, _, err := e.accounts.Invite(op, olga, tokenissuer.NewInvite{Email: "new@acme.example", Name: "New Person", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	check := func(b *browser, who, page string) {
		t.Helper()
		for _, width := range []int64{1280, 390} {
			b.do(fmt.Sprintf("%s at %d", page, width), chromedp.EmulateViewport(width, 900), chromedp.Navigate(e.portal+page), chromedp.WaitReady(chromedp.CSS("main")))
			run(b, "load axe-core", chromedp.Evaluate[chromedp.Void](axe))
			for _, v := range run(b, "axe "+page, chromedp.Evaluate[[]string](axeCheck, chromedp.EvalAwaitPromise)) {
				t.Errorf("%s, /portal/%s at %d px: %s", who, page, width, v)
			}
			if width < 600 {
				if over := run(b, "width of "+page, chromedp.Evaluate[int](sideways)); over > 0 {
					t.Errorf("%s, /portal/%s at %d px scrolls sideways by %d px", who, page, width, over)
				}
			}
		}
	}

	anonymous := newBrowser(t, "signed-out")
	for _, page := range []string{"sign-in", "invitation/" + invitation, "no-such-page"} {
		check(anonymous, "signed out", page)
	}

	admin := newBrowser(t, "tenant-admin")
	admin.signIn(e.portal, "admin@acme.example", testPassword, chromedp.WaitVisible(chromedp.ID("new-client")))
	for _, page := range []string{"clients", "clients/new", "clients/" + c.ID, "clients/" + c.ID + "/edit", "clients/" + c.ID + "/delete",
		"audit", "audit?what=client.", "people", "account", "tenants/acme", "report-leak"} {
		check(admin, "a tenant admin", page)
	}
	// A confirmation page, as the click on a destructive button shows it.
	admin.do("client page", chromedp.EmulateViewport(390, 900), chromedp.Navigate(e.portal+"clients/"+c.ID), chromedp.WaitVisible(chromedp.ID("revoke-tokens")))
	admin.do("ask first", follow(chromedp.ID("revoke-tokens")), chromedp.WaitVisible(chromedp.ID("confirm")))
	run(admin, "load axe-core", chromedp.Evaluate[chromedp.Void](axe))
	for _, v := range run(admin, "axe confirm", chromedp.Evaluate[[]string](axeCheck, chromedp.EvalAwaitPromise)) {
		t.Errorf("the confirmation page: %s", v)
	}

	operator := newBrowser(t, "operator")
	operator.signIn(e.portal, "ops@example.com", testPassword, chromedp.WaitVisible(chromedp.ID("new-client")))
	for _, page := range []string{"clients", "tenants", "tenants/acme", "keys", "people", "audit"} {
		check(operator, "an operator", page)
	}
	if t.Failed() {
		t.Log("screenshots of every step are under PORTCULLIS_TEST_SCREENSHOTS when it is set")
	}
}
