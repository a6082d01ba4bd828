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
