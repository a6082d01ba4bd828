package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
)

// TestAPersonReportsALeakedSecret: pasting a secret revokes it and its
// client's tokens; the person is told whose it was only when they may see
// the client; the tenant's clients page shows the leak as a banner.
func TestAPersonReportsALeakedSecret(t *testing.T) {
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, secret, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Leaky", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, globexSecret, err := e.admin.RotateSecret(op, e.otherClient)
	if err != nil {
		t.Fatal(err)
	}
	base := e.portal[:len(e.portal)-len("/portal/")]
	ada := newPerson(t, base)
	ada.signIn("admin@acme.example")
	ada.get("/portal/report-leak")
	status, body := ada.post("/portal/report-leak", url.Values{"secret": {" " + secret + "\n"}, "url": {"https://paste.example/abc"}})
	if status != http.StatusOK || !strings.Contains(body, `id="revoked"`) || !strings.Contains(body, "Leaky") {
		t.Fatalf("reporting the tenant's own secret: %d\n%s", status, body)
	}
	if got := issuertest.TokenStatus(t, e.public, c.ID, secret); got != http.StatusUnauthorized {
		t.Errorf("the reported secret still gets tokens: %d", got)
	}
	if _, page := ada.get("/portal/clients"); !strings.Contains(page, "was found at <code>https://paste.example/abc</code>") || !strings.Contains(page, `href="/portal/clients/`+c.ID+`">Leaky</a>`) {
		t.Errorf("no banner on the clients page:\n%s", page)
	}

	// Another tenant's secret, and a string that is no secret: the same
	// answer, naming nobody.
	for _, s := range []string{globexSecret, "portcullis_not-a-secret"} {
		ada.get("/portal/report-leak")
		_, body := ada.post("/portal/report-leak", url.Values{"secret": {s}})
		if !strings.Contains(body, `id="reported"`) || strings.Contains(body, "Globex") || strings.Contains(body, e.otherClient) {
			t.Errorf("reporting %.20s…: the answer tells more than it may:\n%s", s, body)
		}
	}
	// A leaked secret is revoked whoever reports it.
	if got := issuertest.TokenStatus(t, e.public, e.otherClient, globexSecret); got != http.StatusUnauthorized {
		t.Errorf("another tenant's reported secret still gets tokens: %d", got)
	}
	if _, page := ada.get("/portal/clients"); strings.Contains(page, e.otherClient) {
		t.Error("the banner shows another tenant's leak")
	}
}

// TestATenantAdminRegistersAClientsKeys: the client's page takes a JWKS
// (public keys only) and the keys-only choice, at the version it was read
// at; the client then holds no secret.
func TestATenantAdminRegistersAClientsKeys(t *testing.T) {
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Signer", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8037 §A.1's example Ed25519 key pair: published, for tests only.
	const publicJWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`
	const privateJWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`
	base := e.portal[:len(e.portal)-len("/portal/")]
	ada := newPerson(t, base)
	ada.signIn("admin@acme.example")
	ada.get("/portal/clients/" + c.ID)
	version := tokenissuer.ClientVersion(c)
	if status, body := ada.post("/portal/clients/"+c.ID+"/keys", url.Values{"jwks": {privateJWKS}, "version": {version}}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "is not a public key") {
		t.Errorf("a private key: %d", status)
	}
	if status, body := ada.post("/portal/clients/"+c.ID+"/keys", url.Values{"jwks": {publicJWKS}, "only": {"yes"}, "version": {version}}); status != http.StatusSeeOther {
		t.Fatalf("registering keys: %d\n%s", status, body)
	}
	got, _ := e.admin.Client(op, c.ID)
	if !got.Keys.Only || len(got.Secrets) != 0 || !strings.Contains(string(got.Keys.JWKS), "k1") {
		t.Fatalf("the client after: %+v", got.Keys)
	}
	if _, page := ada.get("/portal/clients/" + c.ID); !strings.Contains(page, `id="keys-only"`) {
		t.Error("the page does not say the client uses keys only")
	}
	if status, _ := ada.post("/portal/clients/"+c.ID+"/keys", url.Values{"jwks": {publicJWKS}, "version": {version}}); status != http.StatusConflict {
		t.Errorf("a stale keys form: %d", status)
	}
}

// TestThePortalWarnsBeforeSecretsExpire: with a maximum secret age on the
// tenant, a secret's page says when it stops working, and the clients page
// warns two weeks ahead.
func TestThePortalWarnsBeforeSecretsExpire(t *testing.T) {
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Aging", TenantID: "acme", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Store.UpdateClient(context.Background(), c.ID, func(cl *tokenissuer.Client) error {
		cl.Secrets[0].CreatedAt = time.Now().Add(-20 * 24 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	base := e.portal[:len(e.portal)-len("/portal/")]
	ada := newPerson(t, base)
	ada.signIn("admin@acme.example")
	_, page := ada.get("/portal/tenants/acme")
	version := regexp.MustCompile(`name="version" value="([^"]+)"`).FindStringSubmatch(page)[1]
	if status, body := ada.post("/portal/tenants/acme/secret-age", url.Values{"days": {"30"}, "version": {version}}); status != http.StatusSeeOther {
		t.Fatalf("setting the bound: %d\n%s", status, body)
	}
	if _, page := ada.get("/portal/clients"); !strings.Contains(page, `id="expiring">1 secret stops working within 14 days`) {
		t.Errorf("no warning on the clients page:\n%s", page)
	}
	if _, page := ada.get("/portal/clients/" + c.ID); !strings.Contains(page, "Stops working") {
		t.Errorf("the client's page does not say when its secret stops working")
	}
	_, page = ada.get("/portal/tenants/acme")
	version = regexp.MustCompile(`name="version" value="([^"]+)"`).FindStringSubmatch(page)[1]
	if status, _ := ada.post("/portal/tenants/acme/secret-age", url.Values{"days": {"-3"}, "version": {version}}); status != http.StatusUnprocessableEntity {
		t.Errorf("a negative bound: %d", status)
	}
}
