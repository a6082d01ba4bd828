package portal

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
)

func TestAuditRecordsAreToldAsSentences(t *testing.T) {
	t.Parallel()
	names := map[string]string{"acme": "Acme"}
	for _, tc := range []struct {
		name         string
		record       tokenissuer.AuditRecord
		who, summary string
		changes      []string
		tenantName   string
	}{
		{"a ceiling change",
			tokenissuer.AuditRecord{Actor: "cli:ops", Action: "tenant.set_ceiling", TargetType: "tenant", TargetID: "acme", TenantID: "acme",
				Before: json.RawMessage(`{"tenant_id":"acme","name":"Acme","scope_ceiling":["a","b"],"updated_at":"2026-01-01T00:00:00Z"}`),
				After:  json.RawMessage(`{"tenant_id":"acme","name":"Acme","scope_ceiling":["a","c"],"updated_at":"2026-01-02T00:00:00Z"}`)},
			"ops (command line)", "changed the scope ceiling of tenant “Acme” (acme)", []string{"scope ceiling: + c, − b"}, "Acme"},
		{"a role change",
			tokenissuer.AuditRecord{Actor: "account:ada@acme.example", Action: "account.set_role", TargetType: "account", TargetID: "acc-1", TenantID: "acme",
				Before: json.RawMessage(`{"email":"vic@acme.example","name":"Vic","role":"tenant-viewer","second_factor":false}`),
				After:  json.RawMessage(`{"email":"vic@acme.example","name":"Vic","role":"tenant-admin","second_factor":true}`)},
			"ada@acme.example", "changed the role of Vic <vic@acme.example>", []string{"role: tenant-viewer → tenant-admin", "second factor: no → yes"}, "Acme"},
		{"a rename",
			tokenissuer.AuditRecord{Actor: "client:acme-bot", Action: "client.rename", TargetType: "client", TargetID: "c1",
				Before: json.RawMessage(`{"name":"Old"}`), After: json.RawMessage(`{"name":"New"}`)},
			"client acme-bot", "renamed client “New” (c1)", []string{"name: “Old” → “New”"}, ""},
		{"a deletion lists nothing",
			tokenissuer.AuditRecord{Actor: "cli:ops", Action: "client.delete", TargetType: "client", TargetID: "c1", Before: json.RawMessage(`{"name":"Gone"}`)},
			"ops (command line)", "deleted client “Gone” (c1)", nil, ""},
		{"a revocation",
			tokenissuer.AuditRecord{Actor: "client:c1", Action: "revocation.token", TargetType: "token", TargetID: "jti-1", After: json.RawMessage(`{"kind":"token"}`)},
			"client c1", "revoked token jti-1", []string{"kind: token"}, ""},
		{"an action this reading does not know",
			tokenissuer.AuditRecord{Actor: "cli:ops", Action: "future.thing", TargetType: "widget", TargetID: "w1"},
			"ops (command line)", "future.thing widget w1", nil, ""},
	} {
		got := describe(tc.record, names)
		if got.Who != tc.who || got.Summary != tc.summary || !slices.Equal(got.Changes, tc.changes) || got.TenantName != tc.tenantName {
			t.Errorf("%s: got %q, %q, %q, %q; want %q, %q, %q, %q", tc.name, got.Who, got.Summary, got.Changes, got.TenantName, tc.who, tc.summary, tc.changes, tc.tenantName)
		}
	}
}

func TestSpreadsheetSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)", "plain": "plain", "": ""} {
		if got := spreadsheetSafe(in); got != want {
			t.Errorf("spreadsheetSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
