package tokenissuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// CreateTenant implements TenantStore.
func (s *SQLiteStore) CreateTenant(ctx context.Context, t *Tenant) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO tenants (id, name, status, scope_ceiling, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		t.ID, t.Name, string(t.Status), joinScopes(t.ScopeCeiling), unixNano(t.CreatedAt), unixNano(t.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTenantExists
	}
	return nil
}

// Tenant implements TenantStore.
func (s *SQLiteStore) Tenant(ctx context.Context, id string) (*Tenant, error) {
	return sqliteReadTenant(ctx, s.db, id)
}

func sqliteReadTenant(ctx context.Context, q sqlQueryer, id string) (*Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTenantNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant: %w", err)
	}
	return t, nil
}

// Tenants implements TenantStore.
func (s *SQLiteStore) Tenants(ctx context.Context) ([]*Tenant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	return scanTenants(rows)
}

// UpdateTenant implements TenantStore.
func (s *SQLiteStore) UpdateTenant(ctx context.Context, id string, update func(*Tenant) error) (*Tenant, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t, err := sqliteReadTenant(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := update(t); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tenants SET name = ?, status = ?, scope_ceiling = ?, updated_at = ? WHERE id = ?`,
		t.Name, string(t.Status), joinScopes(t.ScopeCeiling), unixNano(t.UpdatedAt), id); err != nil {
		return nil, fmt.Errorf("update tenant: %w", err)
	}
	return t, tx.Commit()
}

// AppendAudit implements AuditStore.
func (s *SQLiteStore) AppendAudit(ctx context.Context, r *AuditRecord) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO audit (at, actor, address, action, target_type, target_id, tenant_id, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		unixNano(r.At), r.Actor, r.Address, r.Action, r.TargetType, r.TargetID, r.TenantID, rawOrEmpty(r.Before), rawOrEmpty(r.After))
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	r.Seq, err = res.LastInsertId()
	return err
}

// AuditRecords implements AuditStore.
func (s *SQLiteStore) AuditRecords(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	where, args := auditFilter(q, func(int) string { return "?" })
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit `+where+` ORDER BY seq LIMIT `+strconv.Itoa(q.limit()), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	return scanAudit(rows)
}

// PruneAudit implements AuditStore.
func (s *SQLiteStore) PruneAudit(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM audit WHERE at < ?`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune audit: %w", err)
	}
	return nil
}

// ClaimIdempotencyKey implements IdempotencyStore.
func (s *SQLiteStore) ClaimIdempotencyKey(ctx context.Context, rec IdempotencyRecord) (*IdempotencyRecord, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO idempotency (scope, key, fingerprint, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING`,
		rec.Scope, rec.Key, rec.Fingerprint, unixNano(rec.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil, nil
	}
	existing, err := scanIdempotency(s.db.QueryRowContext(ctx, `SELECT `+idempotencyColumns+` FROM idempotency WHERE scope = ? AND key = ?`, rec.Scope, rec.Key))
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	return existing, ErrIdempotencyKeyTaken
}

// CompleteIdempotencyKey implements IdempotencyStore.
func (s *SQLiteStore) CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, resourceID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE idempotency SET done = 1, status = ?, resource_id = ? WHERE scope = ? AND key = ?`, status, resourceID, scope, key); err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey implements IdempotencyStore.
func (s *SQLiteStore) ReleaseIdempotencyKey(ctx context.Context, scope, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency WHERE scope = ? AND key = ? AND done = 0`, scope, key); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotency implements IdempotencyStore.
func (s *SQLiteStore) PruneIdempotency(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	return nil
}
