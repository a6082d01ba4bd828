package adminapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/adminapi"
)

// TestOnboardingATenantIsAutomated: an operator's automation creates a
// tenant and invites its first admin; the tenant's own automation, with
// portcullis.people:manage, manages its people as its admin would, and
// no further.
func TestOnboardingATenantIsAutomated(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
	for _, tenant := range []string{"acme", "globex"} {
		if r := e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"`+tenant+`","scope_ceiling":["a","`+adminapi.ScopeManagePeople+`","`+adminapi.ScopeManageClients+`"]}`); r.status != http.StatusCreated {
			t.Fatalf("tenant %s: %d %s", tenant, r.status, r.raw)
		}
	}
	invited := e.call("POST", "/admin/v1/invitations", ops, `{"email":"First@Acme.example","name":"First Admin","role":"tenant-admin","tenant_id":"acme"}`)
	link, _ := invited.body["invitation_url"].(string)
	if invited.status != http.StatusCreated || invited.body["email"] != "first@acme.example" || !strings.Contains(link, "/portal/invitation/") {
		t.Fatalf("the first admin's invitation: %d %s", invited.status, invited.raw)
	}
	token := link[strings.LastIndex(link, "/")+1:]
	first, err := e.srv.Accounts.AcceptInvite(ctx, token, "First Admin", "a long and unusual passphrase for tests")
	if err != nil {
		t.Fatalf("accepting the emailed link: %v", err)
	}
	if r := e.call("GET", "/admin/v1/invitations", ops, ""); len(r.body["invitations"].([]any)) != 0 {
		t.Fatalf("a used invitation is still listed: %s", r.raw)
	}

	botToken := func(tenant string, scopes ...string) string {
		t.Helper()
		_, secret, err := e.operate.CreateClient(ctx, tokenissuer.NewClient{ID: tenant + "-" + strings.ReplaceAll(strings.Join(scopes, "-"), ":", "-"), TenantID: tenant, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return e.mustToken(tenant+"-"+strings.ReplaceAll(strings.Join(scopes, "-"), ":", "-"), secret)
	}
	acmePeople := botToken("acme", adminapi.ScopeManagePeople)
	globexPeople := botToken("globex", adminapi.ScopeManagePeople)
	acmeClients := botToken("acme", adminapi.ScopeManageClients)

	list := e.call("GET", "/admin/v1/people", acmePeople, "")
	if list.status != http.StatusOK || len(list.body["people"].([]any)) != 1 || !strings.Contains(list.raw, `"person_id":"`+first.ID+`"`) {
		t.Fatalf("acme's people, as acme's automation sees them: %d %s", list.status, list.raw)
	}
	if strings.Contains(list.raw, "password") || strings.Contains(list.raw, "totp") {
		t.Fatal("a person's secrets in the API")
	}
	// Its own tenant's roles, by default into its own tenant.
	viewer := e.call("POST", "/admin/v1/invitations", acmePeople, `{"email":"viewer@acme.example","role":"tenant-viewer"}`)
	if viewer.status != http.StatusCreated || viewer.body["tenant_id"] != "acme" {
		t.Fatalf("inviting a viewer: %d %s", viewer.status, viewer.raw)
	}
	again := e.call("POST", "/admin/v1/invitations", acmePeople, `{"email":"viewer@acme.example","role":"tenant-viewer"}`)
	oldToken := viewer.body["invitation_url"].(string)[strings.LastIndex(viewer.body["invitation_url"].(string), "/")+1:]
	if _, err := e.srv.Accounts.PendingInvite(ctx, oldToken); err == nil || again.status != http.StatusCreated {
		t.Fatalf("inviting again (%d) left the first link working", again.status)
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"a platform admin", "POST", "/admin/v1/invitations", acmePeople, `{"email":"x@acme.example","role":"platform-admin"}`, http.StatusForbidden},
		{"into another tenant", "POST", "/admin/v1/invitations", acmePeople, `{"email":"x@acme.example","role":"tenant-admin","tenant_id":"globex"}`, http.StatusForbidden},
		{"another tenant's person", "GET", "/admin/v1/people/" + first.ID, globexPeople, "", http.StatusNotFound},
		{"another tenant's person's role", "PUT", "/admin/v1/people/" + first.ID + "/role", globexPeople, `{"role":"tenant-viewer"}`, http.StatusNotFound},
		{"another tenant's invitation", "DELETE", "/admin/v1/invitations/viewer@acme.example", globexPeople, "", http.StatusNotFound},
		{"people with a clients token", "GET", "/admin/v1/people", acmeClients, "", http.StatusForbidden},
		{"clients with a people token", "GET", "/admin/v1/clients", acmePeople, "", http.StatusForbidden},
		{"an unknown role", "PUT", "/admin/v1/people/" + first.ID + "/role", acmePeople, `{"role":"owner"}`, http.StatusBadRequest},
		{"an existing account", "POST", "/admin/v1/invitations", acmePeople, `{"email":"first@acme.example","role":"tenant-viewer"}`, http.StatusConflict},
	} {
		if r := e.call(tc.method, tc.path, tc.token, tc.body); r.status != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.want, r.raw)
		}
	}
	if r := e.call("GET", "/admin/v1/people", globexPeople, ""); len(r.body["people"].([]any)) != 0 {
		t.Errorf("another tenant's automation lists acme's people: %s", r.raw)
	}
	// What its admin may do: change a role, disable, revoke an invitation.
	if r := e.call("PUT", "/admin/v1/people/"+first.ID+"/role", acmePeople, `{"role":"tenant-viewer"}`); r.status != http.StatusOK || r.body["role"] != "tenant-viewer" {
		t.Fatalf("a role change: %d %s", r.status, r.raw)
	}
	if r := e.call("POST", "/admin/v1/people/"+first.ID+"/disable", acmePeople, ""); r.status != http.StatusOK || r.body["status"] != "disabled" {
		t.Fatalf("disabling: %d %s", r.status, r.raw)
	}
	if r := e.call("DELETE", "/admin/v1/invitations/"+url.PathEscape("viewer@acme.example"), acmePeople, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoking an invitation: %d %s", r.status, r.raw)
	}
	if r := e.call("DELETE", "/admin/v1/invitations/viewer@acme.example", acmePeople, ""); r.status != http.StatusNotFound {
		t.Fatalf("revoking it again: %d", r.status)
	}
	// Every change is in acme's audit trail, the actor the automation.
	audit := e.call("GET", "/admin/v1/audit?tenant_id=acme&actor=client:acme-portcullis.people-manage&action=account.", ops, "")
	if n := len(audit.body["records"].([]any)); n != 4 { // two invitations, a role, a status
		t.Errorf("the automation's changes to people in the trail: %d records\n%s", n, audit.raw)
	}
	if r := e.call("DELETE", "/admin/v1/people/"+first.ID, ops, ""); r.status != http.StatusNoContent {
		t.Fatalf("an operator deletes a person: %d %s", r.status, r.raw)
	}
}

// TestOperatorsDeleteEmptyTenants: a tenant with a client is not deleted
// (409, naming what is left); an empty one is, after an If-Match check,
// and then is gone.
func TestOperatorsDeleteEmptyTenants(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	created := e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"gone","scope_ceiling":["a"]}`)
	e.call("POST", "/admin/v1/clients", ops, `{"client_id":"gone-app","tenant_id":"gone","scopes":["a"]}`)
	if r := e.call("DELETE", "/admin/v1/tenants/gone", ops, ""); r.status != http.StatusConflict || !strings.Contains(r.raw, "clients: 1, people: 0") {
		t.Fatalf("a tenant with a client: %d %s", r.status, r.raw)
	}
	e.call("DELETE", "/admin/v1/clients/gone-app", ops, "")
	if r := e.callIf("DELETE", "/admin/v1/tenants/gone", ops, "", `"stale"`); r.status != http.StatusPreconditionFailed {
		t.Fatalf("a stale If-Match: %d", r.status)
	}
	if r := e.callIf("DELETE", "/admin/v1/tenants/gone", ops, "", created.header.Get("ETag")); r.status != http.StatusNoContent {
		t.Fatalf("an empty tenant: %d %s", r.status, r.raw)
	}
	if r := e.call("GET", "/admin/v1/tenants/gone", ops, ""); r.status != http.StatusNotFound {
		t.Fatalf("after delete: %d", r.status)
	}
}

// TestClientsWithKeysInsteadOfSecrets: a client created with its public
// keys and private_key_jwt only gets no secret; its keys are shown and
// replaced through the API; a private key or a plain-http URL elsewhere
// is refused.
func TestClientsWithKeysInsteadOfSecrets(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	_, private, _ := ed25519.GenerateKey(rand.Reader)
	priv, _ := jwk.FromRaw(private)
	priv.Set(jwk.KeyIDKey, "k1")
	pub, _ := priv.PublicKey()
	set := jwk.NewSet()
	set.AddKey(pub)
	publicJWKS, _ := json.Marshal(set)
	privateSet := jwk.NewSet()
	privateSet.AddKey(priv)
	privateJWKS, _ := json.Marshal(privateSet)

	e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","scope_ceiling":["a"]}`)
	created := e.call("POST", "/admin/v1/clients", ops, `{"client_id":"keyed","tenant_id":"acme","scopes":["a"],"jwks":`+string(publicJWKS)+`,"private_key_jwt_only":true}`)
	if created.status != http.StatusCreated || created.body["client_secret"] != nil || len(created.body["secrets"].([]any)) != 0 {
		t.Fatalf("create with keys only: %d %s", created.status, created.raw)
	}
	if keys, _ := created.body["keys"].(map[string]any); keys["private_key_jwt_only"] != true || !strings.Contains(fmt.Sprint(keys["jwks"]), "k1") {
		t.Fatalf("the client's keys: %s", created.raw)
	}
	if r := e.call("POST", "/admin/v1/clients/keyed/rotate-secret", ops, ""); r.status != http.StatusBadRequest {
		t.Errorf("a secret for a keys-only client: %d %s", r.status, r.raw)
	}
	for name, body := range map[string]string{
		"a private key":          `{"jwks":` + string(privateJWKS) + `}`,
		"plain http elsewhere":   `{"jwks_uri":"http://keys.example/jwks.json"}`,
		"plain http on loopback": `{"jwks_uri":"http://127.0.0.1:8081/jwks.json"}`,
		"https on loopback":      `{"jwks_uri":"https://127.0.0.1/jwks.json"}`,
		"localhost":              `{"jwks_uri":"https://localhost/jwks.json"}`,
		"the metadata address":   `{"jwks_uri":"https://169.254.169.254/latest/meta-data/"}`,
		"a private address":      `{"jwks_uri":"https://10.0.0.7/jwks.json"}`,
		"mapped loopback":        `{"jwks_uri":"https://[::ffff:127.0.0.1]/jwks.json"}`,
		"IPv6 unique local":      `{"jwks_uri":"https://[fd00::1]/jwks.json"}`,
		"both":                   `{"jwks":` + string(publicJWKS) + `,"jwks_uri":"https://keys.example/jwks.json"}`,
		"keys only and no keys":  `{"private_key_jwt_only":true}`,
	} {
		if r := e.call("PUT", "/admin/v1/clients/keyed/keys", ops, body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if r := e.call("PUT", "/admin/v1/clients/keyed/keys", ops, `{"jwks_uri":"https://keys.example/jwks.json","private_key_jwt_only":true}`); r.status != http.StatusOK || !strings.Contains(r.raw, "https://keys.example/jwks.json") {
		t.Fatalf("replacing the keys with a URL: %d %s", r.status, r.raw)
	}
	audit := e.call("GET", "/admin/v1/audit?action=client.set_keys&target=keyed", ops, "")
	if n := len(audit.body["records"].([]any)); n != 1 || !strings.Contains(audit.raw, "keys.example") {
		t.Errorf("the keys' change in the trail: %s", audit.raw)
	}
}
