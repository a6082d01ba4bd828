package sqlstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
)

// The two SQL stores share their row decoding: database/sql and pgx rows
// both offer these methods.
type (
	rowScanner interface {
		Scan(dest ...any) error
	}
	rowsScanner interface {
		Next() bool
		Scan(dest ...any) error
		Err() error
	}
)

// clientColumns is the SELECT list scanClient expects.
const clientColumns = `id, name, tenant_id, scopes, status, token_lifetime_ns, created_at, updated_at, last_used_at, jwks, jwks_uri, keys_only`

// scanClient decodes one row of clientColumns; the driver's "no rows" error
// is returned as is.
func scanClient(row rowScanner) (*tokenissuer.Client, error) {
	c := &tokenissuer.Client{}
	var scopes, status string
	var lifetime, created, updated, used int64
	var jwks string
	if err := row.Scan(&c.ID, &c.Name, &c.TenantID, &scopes, &status, &lifetime, &created, &updated, &used, &jwks, &c.Keys.JWKSURI, &c.Keys.Only); err != nil {
		return nil, err
	}
	if jwks != "" {
		c.Keys.JWKS = json.RawMessage(jwks)
	}
	c.Scopes, c.Status, c.TokenLifetime = splitScopes(scopes), tokenissuer.ClientStatus(status), time.Duration(lifetime)
	c.CreatedAt, c.UpdatedAt, c.LastUsedAt = fromUnixNano(created), fromUnixNano(updated), fromUnixNano(used)
	return c, nil
}

// secretColumns is the SELECT list scanSecrets expects.
const secretColumns = `id, hash, lookup, hint, created_at, last_used_at`

// scanSecrets decodes rows of secretColumns.
func scanSecrets(rows rowsScanner) ([]tokenissuer.Secret, error) {
	secrets := []tokenissuer.Secret{}
	for rows.Next() {
		var sec tokenissuer.Secret
		var at, used int64
		if err := rows.Scan(&sec.ID, &sec.Hash, &sec.Lookup, &sec.Hint, &at, &used); err != nil {
			return nil, fmt.Errorf("read client secrets: %w", err)
		}
		sec.CreatedAt, sec.LastUsedAt = fromUnixNano(at), fromUnixNano(used)
		secrets = append(secrets, sec)
	}
	return secrets, rows.Err()
}

// signingKeyColumns is the SELECT list scanSigningKeys expects.
const signingKeyColumns = `kid, algorithm, private_jwk, created_at, active_at, retire_at`

func scanSigningKeys(rows rowsScanner) ([]keys.SigningKey, error) {
	var out []keys.SigningKey
	for rows.Next() {
		var k keys.SigningKey
		var created, active, retire int64
		if err := rows.Scan(&k.KID, &k.Algorithm, &k.PrivateJWK, &created, &active, &retire); err != nil {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		k.CreatedAt, k.ActiveAt, k.RetireAt = fromUnixNano(created), fromUnixNano(active), fromUnixNano(retire)
		out = append(out, k)
	}
	return out, rows.Err()
}

// clientsByID loads each listed client, skipping any deleted meanwhile.
func clientsByID(ctx context.Context, s tokenissuer.ClientStore, ids []string) ([]*tokenissuer.Client, error) {
	clients := make([]*tokenissuer.Client, 0, len(ids))
	for _, id := range ids {
		c, err := s.Client(ctx, id)
		if errors.Is(err, tokenissuer.ErrClientNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// tenantColumns is the SELECT list scanTenant expects.
const tenantColumns = `id, name, status, scope_ceiling, second_factor_required, max_secret_age_days, created_at, updated_at`

func scanTenant(row rowScanner) (*tokenissuer.Tenant, error) {
	t := &tokenissuer.Tenant{}
	var status, ceiling string
	var created, updated int64
	if err := row.Scan(&t.ID, &t.Name, &status, &ceiling, &t.SecondFactorRequired, &t.MaxSecretAgeDays, &created, &updated); err != nil {
		return nil, err
	}
	t.Status, t.ScopeCeiling = tokenissuer.TenantStatus(status), splitScopes(ceiling)
	t.CreatedAt, t.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return t, nil
}

// scanTenants decodes rows of tenantColumns.
func scanTenants(rows rowsScanner) ([]*tokenissuer.Tenant, error) {
	out := []*tokenissuer.Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// auditColumns is the SELECT list scanAudit expects.
const auditColumns = `seq, at, actor, address, action, target_type, target_id, tenant_id, before_json, after_json`

func scanAudit(rows rowsScanner) ([]tokenissuer.AuditRecord, error) {
	out := []tokenissuer.AuditRecord{}
	for rows.Next() {
		var r tokenissuer.AuditRecord
		var at int64
		var before, after string
		if err := rows.Scan(&r.Seq, &at, &r.Actor, &r.Address, &r.Action, &r.TargetType, &r.TargetID, &r.TenantID, &before, &after); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		r.At = fromUnixNano(at)
		if before != "" {
			r.Before = json.RawMessage(before)
		}
		if after != "" {
			r.After = json.RawMessage(after)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// auditFilter builds the WHERE clause of q with placeholders made by ph
// (SQLite "?", PostgreSQL "$n").
func auditFilter(q tokenissuer.AuditQuery, ph func(n int) string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.Replace(cond, "?", ph(len(args)), 1))
	}
	add("seq > ?", q.AfterSeq)
	if q.BeforeSeq > 0 {
		add("seq < ?", q.BeforeSeq)
	}
	if prefix, ok := strings.CutSuffix(q.Action, "."); ok {
		// substr, not LIKE: actions hold '_', LIKE's wildcard.
		add("substr(action, 1, "+strconv.Itoa(len(prefix)+1)+") = ?", prefix+".")
	} else if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.TenantID != "" {
		add("tenant_id = ?", q.TenantID)
	}
	if q.TargetID != "" {
		add("target_id = ?", q.TargetID)
	}
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if !q.Since.IsZero() {
		add("at >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("at < ?", q.Until.UnixNano())
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

func rawOrEmpty(m json.RawMessage) string {
	if len(m) == 0 {
		return ""
	}
	return string(m)
}

// idempotencyColumns is the SELECT list scanIdempotency expects.
const idempotencyColumns = `scope, key, fingerprint, created_at, done, status, resource_id`

func scanIdempotency(row rowScanner) (*tokenissuer.IdempotencyRecord, error) {
	r := &tokenissuer.IdempotencyRecord{}
	var created int64
	if err := row.Scan(&r.Scope, &r.Key, &r.Fingerprint, &created, &r.Done, &r.Status, &r.ResourceID); err != nil {
		return nil, err
	}
	r.CreatedAt = fromUnixNano(created)
	return r, nil
}

// The SQL stores share the row decoding of accounts, sessions and
// invitations.

// accountColumns is the SELECT list scanAccount expects.
const accountColumns = `id, email, name, role, tenant_id, status, password_hash, totp_secret, totp_last_step, recovery_codes, created_at, updated_at`

func scanAccount(row rowScanner) (*tokenissuer.Account, error) {
	a := &tokenissuer.Account{}
	var role, status, codes string
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Email, &a.Name, &role, &a.TenantID, &status, &a.PasswordHash, &a.TOTPSecret, &a.TOTPLastStep, &codes, &created, &updated); err != nil {
		return nil, err
	}
	a.Role, a.Status = tokenissuer.Role(role), tokenissuer.AccountStatus(status)
	if len(a.TOTPSecret) == 0 {
		a.TOTPSecret = nil
	}
	var err error
	if a.RecoveryCodes, err = decodeRecoveryCodes(codes); err != nil {
		return nil, fmt.Errorf("account %s: %w", a.ID, err)
	}
	a.CreatedAt, a.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return a, nil
}

func scanAccounts(rows rowsScanner) ([]*tokenissuer.Account, error) {
	out := []*tokenissuer.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// encodeRecoveryCodes stores the code hashes as space-separated hex.
func encodeRecoveryCodes(hashes [][]byte) string {
	parts := make([]string, len(hashes))
	for i, h := range hashes {
		parts[i] = hex.EncodeToString(h)
	}
	return strings.Join(parts, " ")
}

func decodeRecoveryCodes(s string) ([][]byte, error) {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		h, err := hex.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("recovery codes: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

// accountArgs are an account's values in the order of accountColumns.
func accountArgs(a *tokenissuer.Account) []any {
	secret := a.TOTPSecret
	if secret == nil {
		secret = []byte{}
	}
	return []any{a.ID, a.Email, a.Name, string(a.Role), a.TenantID, string(a.Status), a.PasswordHash, secret, a.TOTPLastStep,
		encodeRecoveryCodes(a.RecoveryCodes), unixNano(a.CreatedAt), unixNano(a.UpdatedAt)}
}

// sessionColumns is the SELECT list scanSession expects.
const sessionColumns = `id_hash, account_id, csrf_token, pending, address, created_at, last_seen_at, expires_at`

func scanSession(row rowScanner) (*tokenissuer.Session, error) {
	s := &tokenissuer.Session{}
	var created, seen, expires int64
	if err := row.Scan(&s.IDHash, &s.AccountID, &s.CSRFToken, &s.Pending, &s.Address, &created, &seen, &expires); err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromUnixNano(created), fromUnixNano(seen), fromUnixNano(expires)
	return s, nil
}

func sessionArgs(s *tokenissuer.Session) []any {
	return []any{s.IDHash, s.AccountID, s.CSRFToken, s.Pending, s.Address, unixNano(s.CreatedAt), unixNano(s.LastSeenAt), unixNano(s.ExpiresAt)}
}

// inviteColumns is the SELECT list scanInvite expects.
const inviteColumns = `id_hash, email, name, role, tenant_id, created_by, created_at, expires_at`

func scanInvite(row rowScanner) (*tokenissuer.Invite, error) {
	inv := &tokenissuer.Invite{}
	var role string
	var created, expires int64
	if err := row.Scan(&inv.IDHash, &inv.Email, &inv.Name, &role, &inv.TenantID, &inv.CreatedBy, &created, &expires); err != nil {
		return nil, err
	}
	inv.Role = tokenissuer.Role(role)
	inv.CreatedAt, inv.ExpiresAt = fromUnixNano(created), fromUnixNano(expires)
	return inv, nil
}

func inviteArgs(inv *tokenissuer.Invite) []any {
	return []any{inv.IDHash, inv.Email, inv.Name, string(inv.Role), inv.TenantID, inv.CreatedBy, unixNano(inv.CreatedAt), unixNano(inv.ExpiresAt)}
}

// revocationColumns is the SELECT list scanRevocations expects.
const revocationColumns = `seq, kind, subject, before_s, expires_s, cause, at, client_id`

func scanRevocations(rows rowsScanner) ([]revocation.Entry, error) {
	out := []revocation.Entry{}
	for rows.Next() {
		var e revocation.Entry
		var kind string
		var at int64
		if err := rows.Scan(&e.Seq, &kind, &e.Subject, &e.Before, &e.Expires, &e.Cause, &at, &e.Client); err != nil {
			return nil, fmt.Errorf("read revocations: %w", err)
		}
		e.Kind, e.At = revocation.Kind(kind), fromUnixNano(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

func splitScopes(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
