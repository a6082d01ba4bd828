package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
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
	if got := tokenStatusOf(t, e, c.ID, secret); got != http.StatusUnauthorized {
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
	if got := tokenStatusOf(t, e, e.otherClient, globexSecret); got != http.StatusUnauthorized {
		t.Errorf("another tenant's reported secret still gets tokens: %d", got)
	}
	if _, page := ada.get("/portal/clients"); strings.Contains(page, e.otherClient) {
		t.Error("the banner shows another tenant's leak")
	}
}

func tokenStatusOf(t *testing.T, e *env, id, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.public+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
