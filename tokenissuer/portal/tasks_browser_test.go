package portal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/portcullis/portcullis/tokenissuer"
)

// TestPortalTeamAuditAndPolicyInTheBrowser walks the newer tasks in a real
// browser at a phone's width and a desktop's: an operator invites a person,
// sees the invitation pending and revokes it after a confirmation; reads
// the audit trail filtered to sign-ins; renames a tenant and requires a
// second factor there; the tenant's admin is then taken to set one up.
func TestPortalTeamAuditAndPolicyInTheBrowser(t *testing.T) {
	t.Parallel()
	for _, width := range []int64{390, 1280} {
		e := start(t)
		b := newBrowser(t, map[int64]string{390: "phone", 1280: "desktop"}[width])
		b.do("viewport", chromedp.EmulateViewport(width, 900))
		b.signIn(e.portal, "ops@example.com", testPassword, chromedp.WaitVisible(chromedp.ID("new-client")))

		// Invite, see it pending, revoke it after the question.
		b.do("people", chromedp.Navigate(e.portal+"people"), chromedp.WaitVisible(chromedp.ID("email")))
		b.do("invite", chromedp.SendKeys(chromedp.ID("email"), "newcomer@acme.example"), chromedp.SendKeys(chromedp.ID("name"), "New Comer"),
			chromedp.SetValue(chromedp.ID("role"), "tenant-viewer"), chromedp.SetValue(chromedp.ID("tenant"), "acme"),
			follow(chromedp.CSS(`form[action="/portal/people/invite"] button[type=submit]:not([aria-label])`)), chromedp.WaitVisible(chromedp.ID("invite-link")))
		b.do("pending", chromedp.Navigate(e.portal+"people"), chromedp.WaitVisible(chromedp.ID("invitations")))
		b.expectText("newcomer@acme.example")
		b.do("revoke asks", follow(chromedp.CSS(`button[aria-label="Revoke the invitation of newcomer@acme.example"]`)), chromedp.WaitVisible(chromedp.ID("confirm")))
		b.do("revoke", follow(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
		if invites, _ := e.accounts.Invitations(context.Background(), nil); len(invites) != 0 {
			t.Fatalf("at %d px the revoked invitation is still pending", width)
		}

		// The audit trail, filtered to sign-ins.
		b.do("audit", chromedp.Navigate(e.portal+"audit"), chromedp.WaitVisible(chromedp.ID("filter")))
		b.expectText("revoked the invitation of newcomer@acme.example")
		b.do("filter", chromedp.SetValue(chromedp.CSS(`select[name=what]`), "account.sign_in"), follow(chromedp.ID("filter")), chromedp.WaitVisible(chromedp.ID("filter")))
		b.expectText("signed in")
		if strings.Contains(b.text(), "revoked the invitation") {
			t.Errorf("at %d px the sign-ins filter shows other records", width)
		}

		// Rename the tenant; require a second factor there.
		b.do("tenant", chromedp.Navigate(e.portal+"tenants/acme"), chromedp.WaitVisible(chromedp.ID("rename")))
		b.do("rename", chromedp.SetValue(chromedp.ID("tenant-name"), "Acme Corporation"), follow(chromedp.ID("rename")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
		b.expectText("Acme Corporation")
		b.do("require", chromedp.Click(chromedp.ID("require-second-factor")), follow(chromedp.ID("save-second-factor")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
		b.expectText("Required: everyone in Acme Corporation")

		ada := newBrowser(t, map[int64]string{390: "phone-admin", 1280: "desktop-admin"}[width])
		ada.do("viewport", chromedp.EmulateViewport(width, 900))
		ada.signIn(e.portal, "admin@acme.example", testPassword, chromedp.WaitVisible(chromedp.ID("enroll")))
		ada.expectText("Your organisation requires a second factor")
		ada.do("another page", chromedp.Navigate(e.portal+"clients"), chromedp.WaitVisible(chromedp.ID("enroll")))

		op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
		if got, _ := e.admin.Tenant(op, "acme"); got.Name != "Acme Corporation" || !got.SecondFactorRequired {
			t.Errorf("at %d px the tenant is %+v", width, got)
		}
	}
}
