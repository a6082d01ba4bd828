package tokenissuer

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// The SQL stores share the row decoding of accounts, sessions and
// invitations.

// accountColumns is the SELECT list scanAccount expects.
const accountColumns = `id, email, name, role, tenant_id, status, password_hash, totp_secret, totp_last_step, recovery_codes, created_at, updated_at`

func scanAccount(row rowScanner) (*Account, error) {
	a := &Account{}
	var role, status, codes string
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Email, &a.Name, &role, &a.TenantID, &status, &a.PasswordHash, &a.TOTPSecret, &a.TOTPLastStep, &codes, &created, &updated); err != nil {
		return nil, err
	}
	a.Role, a.Status = Role(role), AccountStatus(status)
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

func scanAccounts(rows rowsScanner) ([]*Account, error) {
	out := []*Account{}
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
func accountArgs(a *Account) []any {
	secret := a.TOTPSecret
	if secret == nil {
		secret = []byte{}
	}
	return []any{a.ID, a.Email, a.Name, string(a.Role), a.TenantID, string(a.Status), a.PasswordHash, secret, a.TOTPLastStep,
		encodeRecoveryCodes(a.RecoveryCodes), unixNano(a.CreatedAt), unixNano(a.UpdatedAt)}
}

// sessionColumns is the SELECT list scanSession expects.
const sessionColumns = `id_hash, account_id, csrf_token, pending, address, created_at, last_seen_at, expires_at`

func scanSession(row rowScanner) (*Session, error) {
	s := &Session{}
	var created, seen, expires int64
	if err := row.Scan(&s.IDHash, &s.AccountID, &s.CSRFToken, &s.Pending, &s.Address, &created, &seen, &expires); err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromUnixNano(created), fromUnixNano(seen), fromUnixNano(expires)
	return s, nil
}

func sessionArgs(s *Session) []any {
	return []any{s.IDHash, s.AccountID, s.CSRFToken, s.Pending, s.Address, unixNano(s.CreatedAt), unixNano(s.LastSeenAt), unixNano(s.ExpiresAt)}
}

// inviteColumns is the SELECT list scanInvite expects.
const inviteColumns = `id_hash, email, name, role, tenant_id, created_by, created_at, expires_at`

func scanInvite(row rowScanner) (*Invite, error) {
	inv := &Invite{}
	var role string
	var created, expires int64
	if err := row.Scan(&inv.IDHash, &inv.Email, &inv.Name, &role, &inv.TenantID, &inv.CreatedBy, &created, &expires); err != nil {
		return nil, err
	}
	inv.Role = Role(role)
	inv.CreatedAt, inv.ExpiresAt = fromUnixNano(created), fromUnixNano(expires)
	return inv, nil
}

func inviteArgs(inv *Invite) []any {
	return []any{inv.IDHash, inv.Email, inv.Name, string(inv.Role), inv.TenantID, inv.CreatedBy, unixNano(inv.CreatedAt), unixNano(inv.ExpiresAt)}
}
