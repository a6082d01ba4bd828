package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"

	"github.com/portcullis/portcullis/revocation"
)

// sqlStore is the one SQL store: every statement is written once, over
// database/sql, with $N placeholders (which SQLite binds too). What differs
// between the engines is in its dialect; migrations, change notification
// and opening stay with each engine (sqlite.go, postgres.go).
type sqlStore struct {
	db *sql.DB
	d  dialect
}

// dialect is what differs between the engines the store runs on.
type dialect struct {
	// forUpdate locks the row a read-modify-write reads. Empty where the
	// transaction holds the database's write lock from its start
	// (SQLite's BEGIN IMMEDIATE).
	forUpdate string
	// secretsOrder orders a client's secrets made in the same nanosecond
	// by insertion.
	secretsOrder string
	// lock serializes one kind of write across replicas inside tx; nil
	// where the transaction already excludes every other writer.
	lock func(ctx context.Context, tx *sql.Tx, l writeLock) error
	// latestRevocation reads the feed's version: the highest Seq ever
	// committed, which pruning must not move back.
	latestRevocation string
	// pruneRevocations deletes expired entries ($1: now, in seconds)
	// without moving latestRevocation back.
	pruneRevocations string
	// migrations are the engine's schema versions, applied in order, each
	// once; append, never edit or renumber.
	migrations []string
}

// writeLock names a kind of write that replicas take turns at.
type writeLock struct {
	key int64
	// tenant narrows the lock to one tenant (a tenant's client quota).
	tenant string
}

var (
	lockSigningKeys   = writeLock{key: lockKeys}
	lockRevocationLog = writeLock{key: lockRevocations}
)

func (s *sqlStore) lock(ctx context.Context, tx *sql.Tx, l writeLock) error {
	if s.d.lock == nil {
		return nil
	}
	return s.d.lock(ctx, tx, l)
}

// inTx runs fn in a transaction, committed when fn succeeds.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// sqlQueryer is what both *sql.DB and *sql.Tx offer for reads.
type sqlQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqlExecer is what both *sql.DB and *sql.Tx offer for writes.
type sqlExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func placeholder(n int) string { return "$" + strconv.Itoa(n) }

// affected is none when the statement res answers changed no row (a
// conflict it did nothing about, a row that is not there).
func affected(res sql.Result, none error) error {
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return none
	}
	return nil
}

// Clients.

// CreateClient implements ClientStore.
func (s *sqlStore) CreateClient(ctx context.Context, c *tokenissuer.Client, maxPerTenant int) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if c.TenantID != "" && maxPerTenant > 0 {
			// One creation per tenant at a time: the count holds until
			// the transaction ends.
			if err := s.lock(ctx, tx, writeLock{key: int64(lockTenantClients), tenant: c.TenantID}); err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clients WHERE tenant_id = $1`, c.TenantID).Scan(&n); err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			if n >= maxPerTenant {
				return tokenissuer.ErrClientQuota
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO clients (id, name, tenant_id, scopes, status, token_lifetime_ns, created_at, updated_at, jwks, jwks_uri, keys_only) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
			c.ID, c.Name, c.TenantID, tokenissuer.FormatScope(c.Scopes), string(c.Status), int64(c.TokenLifetime), unixNano(c.CreatedAt), unixNano(c.UpdatedAt), string(c.Keys.JWKS), c.Keys.JWKSURI, c.Keys.Only)
		if err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		if err := affected(res, tokenissuer.ErrClientExists); err != nil {
			return err
		}
		return writeSecrets(ctx, tx, c)
	})
}

func writeSecrets(ctx context.Context, tx *sql.Tx, c *tokenissuer.Client) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM client_secrets WHERE client_id = $1`, c.ID); err != nil {
		return fmt.Errorf("write secrets: %w", err)
	}
	for _, sec := range c.Secrets {
		lookup := sec.Lookup
		if lookup == nil {
			lookup = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO client_secrets (client_id, id, hash, lookup, hint, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ID, sec.ID, sec.Hash, lookup, sec.Hint, unixNano(sec.CreatedAt), unixNano(sec.LastUsedAt)); err != nil {
			return fmt.Errorf("write secrets: %w", err)
		}
	}
	return nil
}

// Client implements ClientStore.
func (s *sqlStore) Client(ctx context.Context, id string) (*tokenissuer.Client, error) {
	return s.readClient(ctx, s.db, id, "")
}

func (s *sqlStore) readClient(ctx context.Context, q sqlQueryer, id, lock string) (*tokenissuer.Client, error) {
	c, err := scanClient(q.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tokenissuer.ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read client: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+secretColumns+` FROM client_secrets WHERE client_id = $1 ORDER BY created_at, `+s.d.secretsOrder, id)
	if err != nil {
		return nil, fmt.Errorf("read client secrets: %w", err)
	}
	c.Secrets, err = scanSecrets(rows)
	rows.Close()
	if err != nil {
		return nil, err
	}
	uses, err := q.QueryContext(ctx, `SELECT kid, last_used_at FROM client_key_uses WHERE client_id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("read client key uses: %w", err)
	}
	defer uses.Close()
	for uses.Next() {
		var kid string
		var at int64
		if err := uses.Scan(&kid, &at); err != nil {
			return nil, fmt.Errorf("read client key uses: %w", err)
		}
		if c.KeysLastUsedAt == nil {
			c.KeysLastUsedAt = map[string]time.Time{}
		}
		c.KeysLastUsedAt[kid] = fromUnixNano(at)
	}
	return c, uses.Err()
}

// Clients implements ClientStore.
func (s *sqlStore) Clients(ctx context.Context, q tokenissuer.ClientQuery) ([]*tokenissuer.Client, error) {
	where, args := clientFilter(q, placeholder)
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM clients`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list clients: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return clientsByID(ctx, s, ids)
}

// UpdateClient implements ClientStore: read, change and write in one
// transaction, the row locked throughout.
func (s *sqlStore) UpdateClient(ctx context.Context, id string, update func(*tokenissuer.Client) error) (*tokenissuer.Client, error) {
	var out *tokenissuer.Client
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.readClient(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := update(c); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE clients SET name = $1, tenant_id = $2, scopes = $3, status = $4, token_lifetime_ns = $5, updated_at = $6, jwks = $7, jwks_uri = $8, keys_only = $9 WHERE id = $10`,
			c.Name, c.TenantID, tokenissuer.FormatScope(c.Scopes), string(c.Status), int64(c.TokenLifetime), unixNano(c.UpdatedAt), string(c.Keys.JWKS), c.Keys.JWKSURI, c.Keys.Only, id); err != nil {
			return fmt.Errorf("update client: %w", err)
		}
		out = c
		return writeSecrets(ctx, tx, c)
	})
	return out, err
}

// DeleteClient implements ClientStore; the row is locked from the check to
// the delete.
func (s *sqlStore) DeleteClient(ctx context.Context, id string, check func(*tokenissuer.Client) error) (*tokenissuer.Client, error) {
	var out *tokenissuer.Client
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.readClient(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := check(c); err != nil {
			return err
		}
		for _, stmt := range []string{`DELETE FROM client_secrets WHERE client_id = $1`, `DELETE FROM client_key_uses WHERE client_id = $1`} {
			if _, err := tx.ExecContext(ctx, stmt, id); err != nil {
				return fmt.Errorf("delete client: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete client: %w", err)
		}
		out = c
		return nil
	})
	return out, err
}

// SecretByLookup implements ClientStore.
func (s *sqlStore) SecretByLookup(ctx context.Context, lookup []byte) (clientID, secretID string, err error) {
	if len(lookup) == 0 {
		return "", "", tokenissuer.ErrSecretNotFound
	}
	err = s.db.QueryRowContext(ctx, `SELECT client_id, id FROM client_secrets WHERE lookup = $1 AND length(lookup) > 0`, lookup).Scan(&clientID, &secretID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", tokenissuer.ErrSecretNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("find secret: %w", err)
	}
	return clientID, secretID, nil
}

// UseAssertionID implements AssertionStore: one insert, whose conflict
// means the ID was used before, on this replica or another.
func (s *sqlStore) UseAssertionID(ctx context.Context, clientID, jti string, expires time.Time) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO assertion_ids (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING`,
		clientID, jti, expires.UnixNano())
	if err != nil {
		return fmt.Errorf("record assertion ID: %w", err)
	}
	return affected(res, tokenissuer.ErrAssertionReplayed)
}

// PruneAssertionIDs implements AssertionStore.
func (s *sqlStore) PruneAssertionIDs(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM assertion_ids WHERE expires_at < $1`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune assertion IDs: %w", err)
	}
	return nil
}

// RecordUsage implements UsageStore. The clients' rows are written first
// and in ID order, so the row locks come in the order UpdateClient takes
// them (its secrets are rewritten under the client's lock, with the times
// it read) and two replicas' batches cannot deadlock.
func (s *sqlStore) RecordUsage(ctx context.Context, uses []tokenissuer.Usage) error {
	uses = slices.Clone(uses)
	slices.SortFunc(uses, func(a, b tokenissuer.Usage) int {
		return cmp.Or(strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.SecretID, b.SecretID))
	})
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for i, u := range uses {
			at := unixNano(u.At)
			if i == 0 || uses[i-1].ClientID != u.ClientID {
				latest := at
				for _, same := range uses[i:] {
					if same.ClientID != u.ClientID {
						break
					}
					latest = max(latest, unixNano(same.At))
				}
				// Written even when not newer, so that the row is locked
				// before its secrets are touched.
				if _, err := tx.ExecContext(ctx, `UPDATE clients SET last_used_at = CASE WHEN last_used_at < $1 THEN $1 ELSE last_used_at END WHERE id = $2`, latest, u.ClientID); err != nil {
					return fmt.Errorf("record client use: %w", err)
				}
			}
			if u.SecretID == "" {
				continue
			}
			if kid, ok := strings.CutPrefix(u.SecretID, tokenissuer.KeyUsePrefix); ok {
				// A key has no row of its own until it is used; a use of a
				// client deleted meanwhile is dropped.
				if _, err := tx.ExecContext(ctx, `INSERT INTO client_key_uses (client_id, kid, last_used_at) SELECT id, CAST($2 AS TEXT), CAST($3 AS BIGINT) FROM clients WHERE id = $1
					ON CONFLICT (client_id, kid) DO UPDATE SET last_used_at = CASE WHEN client_key_uses.last_used_at < excluded.last_used_at THEN excluded.last_used_at ELSE client_key_uses.last_used_at END`,
					u.ClientID, kid, at); err != nil {
					return fmt.Errorf("record key use: %w", err)
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE client_secrets SET last_used_at = $1 WHERE client_id = $2 AND id = $3 AND last_used_at < $1`, at, u.ClientID, u.SecretID); err != nil {
				return fmt.Errorf("record secret use: %w", err)
			}
		}
		return nil
	})
}

// Signing keys.

// SigningKeys implements KeyStore.
func (s *sqlStore) SigningKeys(ctx context.Context) ([]keys.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	return scanSigningKeys(rows)
}

// AddSigningKey implements KeyStore: replicas take turns, so of several
// rotating at once one adds a key.
func (s *sqlStore) AddSigningKey(ctx context.Context, key keys.SigningKey, retireOthersAt, onlyIfNewestBefore time.Time) (bool, error) {
	added := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockSigningKeys); err != nil {
			return err
		}
		var newest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(created_at) FROM signing_keys`).Scan(&newest); err != nil {
			return fmt.Errorf("read newest signing key: %w", err)
		}
		if newest.Valid && !fromUnixNano(newest.Int64).Before(onlyIfNewestBefore) {
			return nil // another replica got there first
		}
		if !retireOthersAt.IsZero() {
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retire_at = $1 WHERE retire_at = 0`, unixNano(retireOthersAt)); err != nil {
				return fmt.Errorf("retire signing keys: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, algorithm, private_jwk, created_at, active_at, retire_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			key.KID, key.Algorithm, key.PrivateJWK, unixNano(key.CreatedAt), unixNano(key.ActiveAt), unixNano(key.RetireAt)); err != nil {
			return fmt.Errorf("add signing key %s: %w", key.KID, err)
		}
		added = true
		return nil
	})
	return added, err
}

// DeleteSigningKeysRetiredBefore implements KeyStore.
func (s *sqlStore) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM signing_keys WHERE retire_at != 0 AND retire_at < $1`, unixNano(t)); err != nil {
		return fmt.Errorf("prune signing keys: %w", err)
	}
	return nil
}

// ReplaceSigningKeyPrivate implements KeyStore.
func (s *sqlStore) ReplaceSigningKeyPrivate(ctx context.Context, kid string, old, replacement []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE signing_keys SET private_jwk = $1 WHERE kid = $2 AND private_jwk = $3`, replacement, kid, old)
	if err != nil {
		return fmt.Errorf("replace signing key %s: %w", kid, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return keys.ErrKeyChanged
	}
	return nil
}

// Failure counts.

// RecordFailure implements FailureStore: one atomic upsert counts a
// failure in the current window, shared by every replica.
func (s *sqlStore) RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	var failures int
	var start int64
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO auth_failures AS f (key, window_start, failures) VALUES ($1, $2, 1)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN f.window_start <= $2 - $3 THEN 1 ELSE f.failures + 1 END,
			window_start = CASE WHEN f.window_start <= $2 - $3 THEN $2 ELSE f.window_start END
		RETURNING failures, window_start`, key, now.UnixNano(), int64(window)).Scan(&failures, &start)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("record authentication failure: %w", err)
	}
	return failures, fromUnixNano(start), nil
}

// ForgiveFailure implements FailureStore.
func (s *sqlStore) ForgiveFailure(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE auth_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0`, key); err != nil {
		return fmt.Errorf("forgive an authentication failure: %w", err)
	}
	return nil
}

// ClearFailures implements FailureStore.
func (s *sqlStore) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_failures WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear authentication failures: %w", err)
	}
	return nil
}

// PruneFailures implements FailureStore.
func (s *sqlStore) PruneFailures(ctx context.Context, before time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM auth_failures WHERE window_start < $1`, before.UnixNano())
	return err
}

// Tenants, the audit trail and idempotency keys.

// CreateTenant implements TenantStore.
func (s *sqlStore) CreateTenant(ctx context.Context, t *tokenissuer.Tenant) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO tenants (id, name, status, scope_ceiling, second_factor_required, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		t.ID, t.Name, string(t.Status), tokenissuer.FormatScope(t.ScopeCeiling), t.SecondFactorRequired, unixNano(t.CreatedAt), unixNano(t.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	return affected(res, tokenissuer.ErrTenantExists)
}

// Tenant implements TenantStore.
func (s *sqlStore) Tenant(ctx context.Context, id string) (*tokenissuer.Tenant, error) {
	return s.readTenant(ctx, s.db, id, "")
}

func (s *sqlStore) readTenant(ctx context.Context, q sqlQueryer, id, lock string) (*tokenissuer.Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tokenissuer.ErrTenantNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant: %w", err)
	}
	return t, nil
}

// Tenants implements TenantStore.
func (s *sqlStore) Tenants(ctx context.Context) ([]*tokenissuer.Tenant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	return scanTenants(rows)
}

// UpdateTenant implements TenantStore.
func (s *sqlStore) UpdateTenant(ctx context.Context, id string, update func(*tokenissuer.Tenant) error) (*tokenissuer.Tenant, error) {
	var out *tokenissuer.Tenant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := s.readTenant(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := update(t); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tenants SET name = $1, status = $2, scope_ceiling = $3, second_factor_required = $4, max_secret_age_days = $5, updated_at = $6 WHERE id = $7`,
			t.Name, string(t.Status), tokenissuer.FormatScope(t.ScopeCeiling), t.SecondFactorRequired, t.MaxSecretAgeDays, unixNano(t.UpdatedAt), id); err != nil {
			return fmt.Errorf("update tenant: %w", err)
		}
		out = t
		return nil
	})
	return out, err
}

// DeleteTenant implements TenantStore; the row is locked from the check to
// the delete.
func (s *sqlStore) DeleteTenant(ctx context.Context, id string, check func(*tokenissuer.Tenant) error) (*tokenissuer.Tenant, error) {
	var out *tokenissuer.Tenant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := s.readTenant(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := check(t); err != nil {
			return err
		}
		inUse := &tokenissuer.TenantInUseError{TenantID: id}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clients WHERE tenant_id = $1`, id).Scan(&inUse.Clients); err != nil {
			return fmt.Errorf("delete tenant: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE tenant_id = $1`, id).Scan(&inUse.People); err != nil {
			return fmt.Errorf("delete tenant: %w", err)
		}
		if inUse.Clients > 0 || inUse.People > 0 {
			return inUse
		}
		for _, stmt := range []string{`DELETE FROM invites WHERE tenant_id = $1`, `DELETE FROM tenants WHERE id = $1`} {
			if _, err := tx.ExecContext(ctx, stmt, id); err != nil {
				return fmt.Errorf("delete tenant: %w", err)
			}
		}
		out = t
		return nil
	})
	return out, err
}

// AppendAudit implements AuditStore.
func (s *sqlStore) AppendAudit(ctx context.Context, r *tokenissuer.AuditRecord) error {
	err := s.db.QueryRowContext(ctx, `INSERT INTO audit (at, actor, address, action, target_type, target_id, tenant_id, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`,
		unixNano(r.At), r.Actor, r.Address, r.Action, r.TargetType, r.TargetID, r.TenantID, rawOrEmpty(r.Before), rawOrEmpty(r.After)).Scan(&r.Seq)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// AuditRecords implements AuditStore.
func (s *sqlStore) AuditRecords(ctx context.Context, q tokenissuer.AuditQuery) ([]tokenissuer.AuditRecord, error) {
	where, args := auditFilter(q, placeholder)
	order := ` ORDER BY seq`
	if q.Newest {
		order = ` ORDER BY seq DESC`
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit `+where+order+` LIMIT `+strconv.Itoa(q.PageLimit()), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	return scanAudit(rows)
}

// PruneAudit implements AuditStore.
func (s *sqlStore) PruneAudit(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM audit WHERE at < $1`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune audit: %w", err)
	}
	return nil
}

// ClaimIdempotencyKey implements IdempotencyStore.
func (s *sqlStore) ClaimIdempotencyKey(ctx context.Context, rec tokenissuer.IdempotencyRecord) (*tokenissuer.IdempotencyRecord, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO idempotency (scope, key, fingerprint, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING`,
		rec.Scope, rec.Key, rec.Fingerprint, unixNano(rec.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil, nil
	}
	existing, err := scanIdempotency(s.db.QueryRowContext(ctx, `SELECT `+idempotencyColumns+` FROM idempotency WHERE scope = $1 AND key = $2`, rec.Scope, rec.Key))
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	return existing, tokenissuer.ErrIdempotencyKeyTaken
}

// CompleteIdempotencyKey implements IdempotencyStore.
func (s *sqlStore) CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, resourceID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE idempotency SET done = $1, status = $2, resource_id = $3 WHERE scope = $4 AND key = $5`, true, status, resourceID, scope, key); err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey implements IdempotencyStore.
func (s *sqlStore) ReleaseIdempotencyKey(ctx context.Context, scope, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND done = $3`, scope, key, false); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotency implements IdempotencyStore.
func (s *sqlStore) PruneIdempotency(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < $1`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	return nil
}

// Accounts, sessions and invitations.

const insertAccount = `INSERT INTO accounts (` + accountColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`

// CreateAccount implements AccountStore.
func (s *sqlStore) CreateAccount(ctx context.Context, a *tokenissuer.Account) error {
	return insertAccountRow(ctx, s.db, a)
}

func insertAccountRow(ctx context.Context, db sqlExecer, a *tokenissuer.Account) error {
	res, err := db.ExecContext(ctx, insertAccount, accountArgs(a)...)
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return affected(res, tokenissuer.ErrAccountExists)
}

// Account implements AccountStore.
func (s *sqlStore) Account(ctx context.Context, id string) (*tokenissuer.Account, error) {
	return readAccount(ctx, s.db, `id = $1`, id)
}

// AccountByEmail implements AccountStore.
func (s *sqlStore) AccountByEmail(ctx context.Context, email string) (*tokenissuer.Account, error) {
	return readAccount(ctx, s.db, `email = $1`, email)
}

func readAccount(ctx context.Context, q sqlQueryer, where string, arg string) (*tokenissuer.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tokenissuer.ErrAccountNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	return a, nil
}

// Accounts implements AccountStore.
func (s *sqlStore) Accounts(ctx context.Context) ([]*tokenissuer.Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	return scanAccounts(rows)
}

// UpdateAccount implements AccountStore.
func (s *sqlStore) UpdateAccount(ctx context.Context, id string, update func(*tokenissuer.Account) error) (*tokenissuer.Account, error) {
	var out *tokenissuer.Account
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		a, err := readAccount(ctx, tx, `id = $1`+s.d.forUpdate, id)
		if err != nil {
			return err
		}
		if err := update(a); err != nil {
			return err
		}
		a.ID = id
		args := accountArgs(a)
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email = $1, name = $2, role = $3, tenant_id = $4, status = $5, password_hash = $6, totp_secret = $7, totp_last_step = $8, recovery_codes = $9, created_at = $10, updated_at = $11 WHERE id = $12`,
			append(args[1:], id)...); err != nil {
			return fmt.Errorf("update account: %w", err)
		}
		out = a
		return nil
	})
	return out, err
}

// DeleteAccount implements AccountStore; its sessions go with it.
func (s *sqlStore) DeleteAccount(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM accounts WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return affected(res, tokenissuer.ErrAccountNotFound)
}

// CreateSession implements AccountStore.
func (s *sqlStore) CreateSession(ctx context.Context, sess *tokenissuer.Session) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, sessionArgs(sess)...); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session implements AccountStore.
func (s *sqlStore) Session(ctx context.Context, idHash []byte) (*tokenissuer.Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, idHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tokenissuer.ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// TouchSession implements AccountStore.
func (s *sqlStore) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, unixNano(at), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession implements AccountStore.
func (s *sqlStore) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteAccountSessions implements AccountStore.
func (s *sqlStore) DeleteAccountSessions(ctx context.Context, accountID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1`, accountID); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// PruneSessions implements AccountStore.
func (s *sqlStore) PruneSessions(ctx context.Context, now, idleBefore time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2`, unixNano(now), unixNano(idleBefore)); err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	return nil
}

// CreateInvite implements AccountStore.
func (s *sqlStore) CreateInvite(ctx context.Context, inv *tokenissuer.Invite) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Per tenant: another tenant's invitation of the same email is not
		// this inviter's to cancel.
		if _, err := tx.ExecContext(ctx, `DELETE FROM invites WHERE email = $1 AND tenant_id = $2`, inv.Email, inv.TenantID); err != nil {
			return fmt.Errorf("replace invitation: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO invites (`+inviteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, inviteArgs(inv)...); err != nil {
			return fmt.Errorf("create invitation: %w", err)
		}
		return nil
	})
}

// Invite implements AccountStore.
func (s *sqlStore) Invite(ctx context.Context, idHash []byte, now time.Time) (*tokenissuer.Invite, error) {
	inv, err := scanInvite(s.db.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id_hash = $1 AND expires_at > $2`, idHash, unixNano(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tokenissuer.ErrInviteNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read invitation: %w", err)
	}
	return inv, nil
}

// AcceptInvite implements AccountStore: the invitation is used up and the
// account created together, or neither.
func (s *sqlStore) AcceptInvite(ctx context.Context, idHash []byte, now time.Time, a *tokenissuer.Account) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM invites WHERE id_hash = $1 AND expires_at > $2`, idHash, unixNano(now))
		if err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		}
		if err := affected(res, tokenissuer.ErrInviteNotFound); err != nil {
			return err
		}
		return insertAccountRow(ctx, tx, a)
	})
}

// PruneInvites implements AccountStore.
func (s *sqlStore) PruneInvites(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM invites WHERE expires_at <= $1`, unixNano(now)); err != nil {
		return fmt.Errorf("prune invitations: %w", err)
	}
	return nil
}

// Invites implements AccountStore.
func (s *sqlStore) Invites(ctx context.Context, tenantID string, all bool, now time.Time) ([]*tokenissuer.Invite, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE expires_at > $1 AND ($2 OR tenant_id = $3) ORDER BY created_at DESC, email`,
		unixNano(now), all, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	defer rows.Close()
	var out []*tokenissuer.Invite
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// DeleteInvite implements AccountStore.
func (s *sqlStore) DeleteInvite(ctx context.Context, email, tenantID string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM invites WHERE email = $1 AND tenant_id = $2`, email, tenantID)
	if err != nil {
		return fmt.Errorf("delete invitation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return tokenissuer.ErrInviteNotFound
	}
	return nil
}

// Revocations.

// AppendRevocation implements RevocationStore. Appends take turns, so
// entries commit in Seq order and a follower that has seen Seq n has seen
// every entry below n.
func (s *sqlStore) AppendRevocation(ctx context.Context, e *revocation.Entry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockRevocationLog); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO revocations (kind, subject, before_s, expires_s, cause, at, client_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
			string(e.Kind), e.Subject, e.Before, e.Expires, e.Cause, unixNano(e.At), e.Client).Scan(&e.Seq)
		if err != nil {
			return fmt.Errorf("append revocation: %w", err)
		}
		return nil
	})
}

// Revocations implements RevocationStore.
func (s *sqlStore) Revocations(ctx context.Context, afterSeq int64, now time.Time) ([]revocation.Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE seq > $1 AND expires_s > $2 ORDER BY seq`, afterSeq, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	defer rows.Close()
	return scanRevocations(rows)
}

// LatestRevocation implements RevocationStore.
func (s *sqlStore) LatestRevocation(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, s.d.latestRevocation).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read revocation version: %w", err)
	}
	return seq, nil
}

// PruneRevocations implements RevocationStore.
func (s *sqlStore) PruneRevocations(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.d.pruneRevocations, now.Unix()); err != nil {
		return fmt.Errorf("prune revocations: %w", err)
	}
	return nil
}

// clientFilter returns q's WHERE clause and arguments, ph naming the
// dialect's n-th placeholder.
func clientFilter(q tokenissuer.ClientQuery, ph func(n int) string) (string, []any) {
	var conds []string
	var args []any
	if q.TenantID != "" {
		args = append(args, q.TenantID)
		conds = append(conds, "tenant_id = "+ph(len(args)))
	}
	if q.After != "" {
		args = append(args, q.After)
		conds = append(conds, "id > "+ph(len(args)))
	}
	sql := ""
	if len(conds) > 0 {
		sql = " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY id"
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return sql, args
}

// migrate applies the migrations the database has not seen, in one
// transaction that replicas starting together take turns at.
func (s *sqlStore) migrate(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.lock != nil {
			if err := s.d.lock(ctx, tx, writeLock{key: lockMigrations}); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(s.d.migrations) {
			return fmt.Errorf("database schema version %d is newer than this binary knows (%d); upgrade the issuer", current, len(s.d.migrations))
		}
		for v := current + 1; v <= len(s.d.migrations); v++ {
			if _, err := tx.ExecContext(ctx, s.d.migrations[v-1]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("record migration %d: %w", v, err)
			}
		}
		return nil
	})
}
