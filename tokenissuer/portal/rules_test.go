package portal_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
)

// TestThePortalFollowsTheServicesRules runs the table of actors ×
// operations through the portal, as people signed in with each role: the
// portal decides nothing the service layer does not.
func TestThePortalFollowsTheServicesRules(t *testing.T) {
	t.Parallel()
	e := start(t)
	if _, err := e.accounts.CreateAccount(asOperator(), tokenissuer.NewAccount{Email: "admin@globex.example", Role: tokenissuer.RoleTenantAdmin, TenantID: "globex", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(e.portal, "/portal/")
	people := map[issuertest.Role]*person{}
	for role, email := range map[issuertest.Role]string{
		issuertest.Operator: "ops@example.com", issuertest.AcmeAdmin: "admin@acme.example",
		issuertest.AcmeViewer: "viewer@acme.example", issuertest.GlobexAdmin: "admin@globex.example",
	} {
		people[role] = newPerson(t, base)
		people[role].signIn(email)
	}
	n := 0
	fresh := func() string {
		n++
		c, _, err := e.admin.CreateClient(asOperator(), tokenissuer.NewClient{ID: fmt.Sprint("acme-", n), Name: fmt.Sprint("Acme ", n), TenantID: "acme", Scopes: []string{"accounts:read"}})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	// post sends a form from a page the person may see, for its CSRF
	// token, confirmed as a person who was asked first would (the rule is
	// about the change, not the question).
	post := func(p *person, path string, form url.Values) (int, string) {
		p.get("/portal/account")
		if form == nil {
			form = url.Values{}
		}
		form.Set("confirmed", "yes")
		return p.post(path, form)
	}
	do := map[issuertest.Op]func(p *person) issuertest.Outcome{
		issuertest.ReadClient: func(p *person) issuertest.Outcome { return pageOutcome(p.get("/portal/clients/" + fresh())) },
		issuertest.ListClients: func(p *person) issuertest.Outcome {
			id := fresh()
			status, body := p.get("/portal/clients?tenant=acme")
			if status == http.StatusOK && !strings.Contains(body, id) {
				return issuertest.Hidden
			}
			return pageOutcome(status, body)
		},
		issuertest.CreateClient: func(p *person) issuertest.Outcome {
			return pageOutcome(post(p, "/portal/clients", url.Values{"tenant": {"acme"}, "name": {"New"}, "scope": {"accounts:read"}}))
		},
		issuertest.RotateSecret: func(p *person) issuertest.Outcome {
			return pageOutcome(post(p, "/portal/clients/"+fresh()+"/rotate-secret", nil))
		},
		issuertest.SetClientKeys: func(p *person) issuertest.Outcome {
			// The form's version is the client's current one, as for the
			// tenant's ceiling.
			c, err := e.admin.Client(asOperator(), fresh())
			if err != nil {
				t.Fatal(err)
			}
			return pageOutcome(post(p, "/portal/clients/"+c.ID+"/keys", url.Values{"jwks_uri": {issuertest.ClientJWKSURI}, "version": {tokenissuer.ClientVersion(c)}}))
		},
		issuertest.DisableAClient: func(p *person) issuertest.Outcome {
			return pageOutcome(post(p, "/portal/clients/"+fresh()+"/disable", nil))
		},
		issuertest.RevokeTokens: func(p *person) issuertest.Outcome {
			return pageOutcome(post(p, "/portal/clients/"+fresh()+"/revoke-tokens", nil))
		},
		issuertest.DeleteClient: func(p *person) issuertest.Outcome {
			return pageOutcome(post(p, "/portal/clients/"+fresh()+"/delete", nil))
		},
		issuertest.ReadTenant: func(p *person) issuertest.Outcome { return pageOutcome(p.get("/portal/tenants/acme")) },
		issuertest.ChangeTenant: func(p *person) issuertest.Outcome {
			// The form's version is the tenant's current one: the service
			// decides, not a stale form.
			acme, err := e.admin.Tenant(asOperator(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			return pageOutcome(post(p, "/portal/tenants/acme/ceiling", url.Values{"ceiling": {"accounts:read accounts:write cards:read"}, "version": {tokenissuer.TenantVersion(acme)}}))
		},
		issuertest.ReadAudit: func(p *person) issuertest.Outcome {
			id := fresh()
			status, body := p.get("/portal/audit")
			if status == http.StatusOK && !strings.Contains(body, id) {
				return issuertest.Hidden
			}
			return pageOutcome(status, body)
		},
		issuertest.RotateKeys: func(p *person) issuertest.Outcome { return pageOutcome(post(p, "/portal/keys/rotate", nil)) },
	}
	for op, want := range issuertest.Rules {
		if do[op] == nil {
			t.Errorf("the portal's table has no way to %s", op)
			continue
		}
		for role, p := range people {
			if got := do[op](p); got != want[role] {
				t.Errorf("%s may %s in the portal: got %s, want %s", role, op, got, want[role])
			}
		}
	}
}

// pageOutcome reads a portal answer as an outcome of the table.
func pageOutcome(status int, body string) issuertest.Outcome {
	switch {
	case status == http.StatusOK || status == http.StatusSeeOther:
		return issuertest.Allowed
	case status == http.StatusNotFound:
		return issuertest.Hidden
	case status == http.StatusForbidden || status == http.StatusUnprocessableEntity:
		return issuertest.Refused
	}
	return issuertest.Outcome(fmt.Sprintf("status %d: %.200s", status, body))
}
