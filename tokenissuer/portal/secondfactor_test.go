package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestATenantCanRequireASecondFactor: a tenant's admin turns the policy
// on; from the next page on, everyone of the tenant without a second
// factor is walked to setting one up and can do nothing else until they
// have; once set up, it cannot be removed by its owner; another tenant's
// people are untouched; a viewer cannot change the policy.
func TestATenantCanRequireASecondFactor(t *testing.T) {
	e := start(t)
	base := e.portal[:len(e.portal)-len("/portal/")]
	ada, vic := newPerson(t, base), newPerson(t, base)
	ada.signIn("admin@acme.example")
	vic.signIn("viewer@acme.example")
	version := regexp.MustCompile(`name="version" value="([^"]+)"`)

	_, page := ada.get("/portal/tenants/acme")
	current := version.FindStringSubmatch(page)[1]
	if _, page := vic.get("/portal/tenants/acme"); strings.Contains(page, `id="require-second-factor"`) {
		t.Error("a viewer is offered the policy")
	}
	if status, _ := vic.post("/portal/tenants/acme/second-factor", url.Values{"required": {"yes"}, "version": {current}}); status != http.StatusForbidden {
		t.Errorf("a viewer sets the policy: %d", status)
	}
	if status, body := ada.post("/portal/tenants/acme/second-factor", url.Values{"required": {"yes"}, "version": {current}}); status != http.StatusSeeOther {
		t.Fatalf("setting the policy: %d\n%s", status, body)
	}
	for name, p := range map[string]*person{"the admin": ada, "a viewer": vic} {
		resp, _ := p.do(http.MethodGet, "/portal/clients", nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/account?notice=second-factor-required" {
			t.Errorf("%s's next page: %d %s", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if _, page := ada.get("/portal/account?notice=second-factor-required"); !strings.Contains(page, "Your organisation requires a second factor") || !strings.Contains(page, `id="enroll"`) {
		t.Errorf("the account page does not walk them through it:\n%s", page)
	}
	if status, _ := ada.post("/portal/clients", url.Values{"name": {"Sneaky"}, "scope": {"accounts:read"}}); status != http.StatusForbidden {
		t.Errorf("a change before the second factor: %d", status)
	}
	// Another tenant's people are untouched.
	olga := newPerson(t, base)
	olga.signIn("ops@example.com")
	if status, _ := olga.get("/portal/clients"); status != http.StatusOK {
		t.Errorf("an operator (no tenant) is held: %d", status)
	}

	// Setting one up lets them in.
	_, page = ada.post("/portal/account/second-factor", url.Values{"password": {testPassword}})
	secret := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(page)
	sealed := regexp.MustCompile(`name="sealed" value="([^"]+)"`).FindStringSubmatch(page)
	if secret == nil || sealed == nil {
		t.Fatalf("enrollment page:\n%s", page)
	}
	code, _ := totp.GenerateCode(secret[1], time.Now())
	if status, body := ada.post("/portal/account/second-factor/confirm", url.Values{"sealed": {sealed[1]}, "secret": {secret[1]}, "code": {code}}); status != http.StatusOK || !strings.Contains(body, "recovery-codes") {
		t.Fatalf("confirming the second factor: %d\n%s", status, body)
	}
	if status, _ := ada.get("/portal/clients"); status != http.StatusOK {
		t.Errorf("after setting one up: %d", status)
	}
	next, _ := totp.GenerateCode(secret[1], time.Now().Add(30*time.Second))
	if status, body := ada.post("/portal/account/second-factor/remove", url.Values{"password": {testPassword}, "code": {next}}); status == http.StatusSeeOther || !strings.Contains(body, "your organisation requires a second factor") {
		t.Errorf("removing one's own required second factor: %d", status)
	}
}
