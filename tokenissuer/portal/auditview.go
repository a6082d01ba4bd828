package portal

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/tokenissuer"
)

// An audit record told as people read it: who did what to which named
// thing, and which fields changed. The record itself stays as kept; this
// is only its reading.

// auditLine is one record as the audit page and its exports tell it: the
// record as kept, and its reading.
type auditLine struct {
	tokenissuer.AuditRecord
	// Who names the actor: an email, a client, the command line.
	Who string `json:"who"`
	// Summary is the record as a sentence, without the actor.
	Summary string `json:"summary"`
	// Changes are the fields that changed, one line each, e.g.
	// "scopes: + transactions:read, − cards:read".
	Changes []string `json:"changes,omitempty"`
	// TenantName is the name of the record's tenant, when known.
	TenantName string `json:"tenant_name,omitempty"`
}

// actions says, per action, what happened to the target (%s: its label).
var actions = map[string]string{
	"client.create":        "created %s",
	"client.update":        "edited %s",
	"client.rename":        "renamed %s",
	"client.set_scopes":    "changed the scopes of %s",
	"client.disable":       "disabled %s",
	"client.enable":        "enabled %s",
	"client.delete":        "deleted %s",
	"client.rotate_secret": "added a secret to %s",
	"client.revoke_secret": "revoked a secret of %s",
	"client.revoke_tokens": "revoked every token of %s",
	"client.secret_leaked": "revoked a leaked secret of %s, and its tokens",

	"tenant.create":      "created %s",
	"tenant.rename":      "renamed %s",
	"tenant.set_ceiling": "changed the scope ceiling of %s",
	"tenant.disable":     "disabled %s",
	"tenant.enable":      "enabled %s",
	"tenant.delete":      "deleted %s",

	"tenant.require_second_factor": "changed the second-factor policy of %s",
	"tenant.set_max_secret_age":    "changed the maximum secret age of %s",
	"client.set_keys":              "changed the public keys of %s",

	"account.create":                 "created the account of %s",
	"account.invite":                 "invited %s",
	"account.accept_invitation":      "accepted an invitation: %s",
	"account.sign_in":                "signed in",
	"account.sign_in_failed":         "failed to sign in as %s",
	"account.second_factor_failed":   "gave a wrong second-factor code for %s",
	"account.use_recovery_code":      "used a recovery code for %s",
	"account.enroll_second_factor":   "set up a second factor for %s",
	"account.remove_second_factor":   "removed the second factor of %s",
	"account.change_password":        "changed the password of %s",
	"account.clear_sign_in_failures": "cleared the failed sign-ins against %s",
	"account.set_role":               "changed the role of %s",
	"account.disable":                "disabled %s",
	"account.enable":                 "enabled %s",
	"account.delete":                 "deleted %s",
	"invitation.revoke":              "revoked the invitation of %s",

	"key.rotate":  "rotated the signing key; the new one is %s",
	"key.encrypt": "encrypted the stored signing keys",

	"revocation.token":  "revoked %s",
	"revocation.client": "revoked every token of %s",
	"revocation.tenant": "revoked every token of %s",
}

// signIns keep only whose account they were: no change to list.
var signIns = map[string]bool{"account.sign_in": true, "account.sign_in_failed": true, "account.second_factor_failed": true}

// auditKinds are the choices of the page's "what" filter: a kind of
// action (ending in a dot) or one action.
var auditKinds = []struct{ Value, Label string }{
	{"", "Everything"},
	{"client.", "Clients"},
	{"tenant.", "Tenants"},
	{"account.", "People"},
	{"account.sign_in", "Sign-ins"},
	{"account.sign_in_failed", "Failed sign-ins"},
	{"invitation.", "Invitations"},
	{"revocation.", "Revocations"},
	{"key.", "Signing keys"},
}

// describe tells r as people read it.
func describe(r tokenissuer.AuditRecord, tenantNames map[string]string) auditLine {
	before, after := fields(r.Before), fields(r.After)
	line := auditLine{AuditRecord: r, Who: actorName(r.Actor), TenantName: tenantNames[r.TenantID]}
	target := targetLabel(r, before, after)
	if verb, ok := actions[r.Action]; ok {
		if strings.Contains(verb, "%s") {
			line.Summary = fmt.Sprintf(verb, target)
		} else {
			line.Summary = verb
		}
	} else {
		line.Summary = r.Action + " " + target
	}
	if !signIns[r.Action] {
		line.Changes = changes(before, after)
	}
	return line
}

// actorName is how a person reads an actor.
func actorName(actor string) string {
	kind, id, _ := strings.Cut(actor, ":")
	switch kind {
	case "account":
		return id
	case "client":
		return "client " + id
	case "cli":
		return id + " (command line)"
	case "anonymous":
		return "Someone not signed in"
	}
	return actor
}

// targetLabel names the target with what the record itself kept of it (a
// name at the time), beside its ID.
func targetLabel(r tokenissuer.AuditRecord, before, after map[string]any) string {
	name := func(key string) string {
		for _, m := range []map[string]any{after, before} {
			if s, ok := m[key].(string); ok && s != "" {
				return s
			}
		}
		return ""
	}
	switch r.TargetType {
	case "client", "tenant":
		if n := name("name"); n != "" && n != r.TargetID {
			return fmt.Sprintf("%s “%s” (%s)", r.TargetType, n, r.TargetID)
		}
		return r.TargetType + " " + r.TargetID
	case "account":
		if email := name("email"); email != "" {
			if n := name("name"); n != "" && n != email {
				return fmt.Sprintf("%s <%s>", n, email)
			}
			return email
		}
		return "account " + r.TargetID
	case "invitation":
		return r.TargetID
	case "token":
		return "token " + r.TargetID
	case "key":
		return r.TargetID
	}
	return strings.TrimSpace(r.TargetType + " " + r.TargetID)
}

// fields decodes a before or after view; nil when there is none.
func fields(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// fieldLabels name the fields whose key does not read well.
var fieldLabels = map[string]string{
	"secret_ids":    "secrets",
	"scope_ceiling": "scope ceiling",
	"tenant_id":     "tenant",
	"second_factor": "second factor",
}

// changes lists the fields that differ between before and after: for a
// creation, what was set; for a change, old → new, and for lists what was
// added (+) and removed (−). A deletion lists nothing: the sentence says it.
func changes(before, after map[string]any) []string {
	if after == nil {
		return nil
	}
	keys := make([]string, 0, len(after))
	for k := range after {
		if k != "created_at" && k != "updated_at" { // the record's own time says it
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		label := fieldLabels[k]
		if label == "" {
			label = strings.ReplaceAll(k, "_", " ")
		}
		old, had := before[k]
		now := after[k]
		if before != nil && had && reflect.DeepEqual(old, now) {
			continue
		}
		if before == nil {
			if v := plain(k, now); v != "" {
				out = append(out, label+": "+v)
			}
			continue
		}
		if oldList, ok := stringList(old); ok {
			if newList, ok := stringList(now); ok {
				out = append(out, label+": "+listChange(oldList, newList))
				continue
			}
		}
		out = append(out, fmt.Sprintf("%s: %s → %s", label, orNone(plain(k, old)), orNone(plain(k, now))))
	}
	return out
}

// listChange says what a list gained and lost.
func listChange(old, now []string) string {
	var parts []string
	for _, s := range now {
		if !slices.Contains(old, s) {
			parts = append(parts, "+ "+s)
		}
	}
	for _, s := range old {
		if !slices.Contains(now, s) {
			parts = append(parts, "− "+s)
		}
	}
	if len(parts) == 0 {
		return "reordered"
	}
	return strings.Join(parts, ", ")
}

// plain is a field's value as text: names quoted, lists joined, yes/no.
func plain(key string, v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		if key == "name" && v != "" {
			return "“" + v + "”"
		}
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case []any:
		list, _ := stringList(v)
		return strings.Join(list, " ")
	}
	return fmt.Sprint(v)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// stringList returns v as a list of strings, when it is one (nil is the
// empty list).
func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, v == nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
