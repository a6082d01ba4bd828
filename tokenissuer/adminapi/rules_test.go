package adminapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/adminapi"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
)

// TestTheAPIFollowsTheServicesRules runs the table of actors × operations
// through the admin API, with the tokens the API knows: an operator's, and
// the automation of acme and of another tenant. The API decides nothing
// the service layer does not.
func TestTheAPIFollowsTheServicesRules(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
	tokens := map[issuertest.Role]string{issuertest.Operator: e.operator()}
	for tenant, role := range map[string]issuertest.Role{"acme": issuertest.AcmeBot, "globex": issuertest.GlobexAdmin} {
		if _, err := e.operate.CreateTenant(ops, tokenissuer.NewTenant{ID: tenant, ScopeCeiling: []string{"accounts:read", adminapi.ScopeManageClients}}); err != nil {
			t.Fatal(err)
		}
		_, secret, err := e.operate.CreateClient(ops, tokenissuer.NewClient{ID: tenant + "-bot", TenantID: tenant, Scopes: []string{adminapi.ScopeManageClients}})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = e.mustToken(tenant+"-bot", secret)
	}
	n := 0
	fresh := func() string {
		n++
		c, _, err := e.operate.CreateClient(ops, tokenissuer.NewClient{ID: fmt.Sprint("acme-", n), TenantID: "acme", Scopes: []string{"accounts:read"}})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	call := func(method, path, token, body string) issuertest.Outcome {
		return apiOutcome(e.call(method, path, token, body))
	}
	// listed reads a list: acme's objects in it, or none.
	listed := func(path, token, want string) issuertest.Outcome {
		r := e.call("GET", path, token, "")
		if r.status == http.StatusOK && !strings.Contains(r.raw, want) {
			return issuertest.Hidden
		}
		return apiOutcome(r)
	}
	do := map[issuertest.Op]func(token string) issuertest.Outcome{
		issuertest.ReadClient:  func(tok string) issuertest.Outcome { return call("GET", "/admin/v1/clients/"+fresh(), tok, "") },
		issuertest.ListClients: func(tok string) issuertest.Outcome { return listed("/admin/v1/clients?tenant_id=acme", tok, fresh()) },
		issuertest.CreateClient: func(tok string) issuertest.Outcome {
			return call("POST", "/admin/v1/clients", tok, `{"name":"New","tenant_id":"acme","scopes":["accounts:read"]}`)
		},
		issuertest.RotateSecret: func(tok string) issuertest.Outcome {
			return call("POST", "/admin/v1/clients/"+fresh()+"/rotate-secret", tok, "")
		},
		issuertest.SetClientKeys: func(tok string) issuertest.Outcome {
			return call("PUT", "/admin/v1/clients/"+fresh()+"/keys", tok, `{"jwks_uri":"`+issuertest.ClientJWKSURI+`"}`)
		},
		issuertest.DisableAClient: func(tok string) issuertest.Outcome {
			return call("POST", "/admin/v1/clients/"+fresh()+"/disable", tok, "")
		},
		issuertest.RevokeTokens: func(tok string) issuertest.Outcome {
			return call("POST", "/admin/v1/clients/"+fresh()+"/revoke-tokens", tok, "")
		},
		issuertest.DeleteClient: func(tok string) issuertest.Outcome { return call("DELETE", "/admin/v1/clients/"+fresh(), tok, "") },
		issuertest.ReadTenant:   func(tok string) issuertest.Outcome { return call("GET", "/admin/v1/tenants/acme", tok, "") },
		issuertest.ChangeTenant: func(tok string) issuertest.Outcome {
			return call("PUT", "/admin/v1/tenants/acme/scope-ceiling", tok, `{"scope_ceiling":["accounts:read","portcullis.clients:manage","cards:read"]}`)
		},
		issuertest.ReadAudit:  func(tok string) issuertest.Outcome { return listed("/admin/v1/audit?tenant_id=acme", tok, fresh()) },
		issuertest.RotateKeys: func(tok string) issuertest.Outcome { return call("POST", "/admin/v1/keys/rotate", tok, "") },
	}
	for op, want := range issuertest.Rules {
		if do[op] == nil {
			t.Errorf("the table of the API has no way to %s", op)
			continue
		}
		for role, tok := range tokens {
			if got := do[op](tok); got != want[role] {
				t.Errorf("%s may %s through the API: got %s, want %s", role, op, got, want[role])
			}
		}
	}
}

// apiOutcome reads an API answer as an outcome of the table.
func apiOutcome(r reply) issuertest.Outcome {
	switch {
	case r.status >= 200 && r.status < 300:
		return issuertest.Allowed
	case r.status == http.StatusNotFound:
		return issuertest.Hidden
	case r.status == http.StatusForbidden || r.status == http.StatusBadRequest:
		return issuertest.Refused
	}
	return issuertest.Outcome(fmt.Sprintf("status %d: %.200s", r.status, r.raw))
}
