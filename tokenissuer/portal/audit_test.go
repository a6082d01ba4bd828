package portal_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
)

// TestTheAuditTrailReadsAsSentences: newest first, each change told as a
// sentence with the fields that changed and names beside IDs, sign-ins
// and failed ones included, filtered, and exported as CSV and JSON that a
// spreadsheet cannot be tricked by.
func TestTheAuditTrailReadsAsSentences(t *testing.T) {
	e := start(t)
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	c, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{ID: "acme-billing", Name: "Billing", TenantID: "acme", Scopes: []string{"accounts:read", "cards:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{ID: "acme-formula", Name: "=HYPERLINK(\"http://evil.example\")", TenantID: "acme", Scopes: []string{"accounts:read"}}); err != nil {
		t.Fatal(err)
	}
	base := e.portal[:len(e.portal)-len("/portal/")]
	stranger := newPerson(t, base)
	stranger.get("/portal/sign-in")
	if status, _ := stranger.post("/portal/sign-in", url.Values{"email": {"admin@acme.example"}, "password": {"wrong password"}}); status == http.StatusSeeOther {
		t.Fatal("a wrong password signed in")
	}
	ada := newPerson(t, base)
	ada.signIn("admin@acme.example")
	ada.get("/portal/clients/" + c.ID + "/edit")
	status, body := ada.post("/portal/clients/"+c.ID+"/edit", url.Values{"name": {"Billing"}, "scope": {"accounts:read", "accounts:write"}, "version": {tokenissuer.ClientVersion(c)}})
	if status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", status, body)
	}

	status, body = ada.get("/portal/audit")
	if status != http.StatusOK {
		t.Fatalf("audit page: %d", status)
	}
	for _, want := range []string{
		"changed the scopes of client “Billing” (acme-billing)",
		"<li>scopes: &#43; accounts:write, − cards:read</li>",
		"admin@acme.example</td>",
		"signed in",
		"Someone not signed in</td>",
		"failed to sign in as admin@acme.example",
		"created client “Billing” (acme-billing)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	if edit, created := strings.Index(body, "changed the scopes of"), strings.Index(body, "created client “Billing”"); edit < 0 || created < 0 || edit > created {
		t.Error("the audit page is not newest first")
	}
	if strings.Contains(body, e.otherClient) || strings.Contains(body, "Globex") {
		t.Error("a tenant admin's audit page shows another tenant")
	}

	// Filters: what, target, who, and a time range in the form's words.
	_, body = ada.get("/portal/audit?what=account.sign_in")
	if !strings.Contains(body, "signed in") || strings.Contains(body, "changed the scopes") || strings.Contains(body, "failed to sign in") {
		t.Errorf("the sign-ins filter:\n%s", body)
	}
	_, body = ada.get("/portal/audit?what=client.&target=acme-billing")
	if !strings.Contains(body, "changed the scopes of client") || strings.Contains(body, "acme-formula") || strings.Contains(body, "signed in") {
		t.Errorf("the client filter:\n%s", body)
	}
	_, body = ada.get("/portal/audit?who=admin@acme.example")
	if !strings.Contains(body, "changed the scopes") || strings.Contains(body, "created client") {
		t.Errorf("the who filter:\n%s", body)
	}
	if status, body := ada.get("/portal/audit?from=yesterday"); status != http.StatusBadRequest || !strings.Contains(body, "From must be a date such as 2026-12-01") {
		t.Errorf("a bad date: %d", status)
	}
	if _, body := ada.get("/portal/audit?from=2000-01-01&to=2000-01-02"); !strings.Contains(body, "No record matches.") {
		t.Error("a time range with nothing in it")
	}

	// CSV: the same records, a formula-looking name kept as text.
	resp, raw := ada.do(http.MethodGet, "/portal/audit/export?format=csv&what=client.", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV export: %d %v", resp.StatusCode, resp.Header)
	}
	rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	if len(rows) != 4 || rows[0][0] != "seq" || rows[1][5] != "client.set_scopes" || rows[1][7] != "scopes: + accounts:write, − cards:read" {
		t.Fatalf("CSV rows: %q", rows)
	}
	for _, row := range rows {
		for _, cell := range row {
			if strings.HasPrefix(cell, "=") {
				t.Errorf("a CSV cell a spreadsheet would run as a formula: %q", cell)
			}
		}
	}
	// JSON: the records as kept, with their reading.
	resp, raw = ada.do(http.MethodGet, "/portal/audit/export?format=json", nil)
	var records []struct {
		Action, Summary, Who string
		Changes              []string
		TenantID             string `json:"tenant_id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(raw), &records) != nil || len(records) < 5 {
		t.Fatalf("JSON export: %d %s", resp.StatusCode, raw)
	}
	for _, r := range records {
		if r.TenantID != "acme" {
			t.Errorf("a tenant admin's export holds another tenant's record: %+v", r)
		}
	}
	if records[0].Action != "client.set_scopes" || records[0].Who != "admin@acme.example" || records[0].Summary != "changed the scopes of client “Billing” (acme-billing)" {
		t.Errorf("the newest exported record: %+v", records[0])
	}
	if resp, _ := ada.do(http.MethodGet, "/portal/audit/export?format=xml", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown format: %d", resp.StatusCode)
	}
}
