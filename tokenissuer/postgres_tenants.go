package tokenissuer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateTenant implements TenantStore.
func (s *PostgresStore) CreateTenant(ctx context.Context, t *Tenant) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO tenants (id, name, status, scope_ceiling, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		t.ID, t.Name, string(t.Status), joinScopes(t.ScopeCeiling), unixNano(t.CreatedAt), unixNano(t.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrTenantExists
	}
	return nil
}

// Tenant implements TenantStore.
func (s *PostgresStore) Tenant(ctx context.Context, id string) (*Tenant, error) {
	return pgReadTenant(ctx, s.pool, id, false)
}

type pgQueryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgReadTenant(ctx context.Context, q pgQueryRower, id string, forUpdate bool) (*Tenant, error) {
	query := `SELECT ` + tenantColumns + ` FROM tenants WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	t, err := scanTenant(q.QueryRow(ctx, query, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTenantNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant: %w", err)
	}
	return t, nil
}

// Tenants implements TenantStore.
func (s *PostgresStore) Tenants(ctx context.Context) ([]*Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	return scanTenants(rows)
}

// UpdateTenant implements TenantStore.
func (s *PostgresStore) UpdateTenant(ctx context.Context, id string, update func(*Tenant) error) (*Tenant, error) {
	var out *Tenant
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t, err := pgReadTenant(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := update(t); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET name = $1, status = $2, scope_ceiling = $3, updated_at = $4 WHERE id = $5`,
			t.Name, string(t.Status), joinScopes(t.ScopeCeiling), unixNano(t.UpdatedAt), id); err != nil {
			return fmt.Errorf("update tenant: %w", err)
		}
		out = t
		return nil
	})
	return out, err
}

// AppendAudit implements AuditStore.
func (s *PostgresStore) AppendAudit(ctx context.Context, r *AuditRecord) error {
	err := s.pool.QueryRow(ctx, `INSERT INTO audit (at, actor, address, action, target_type, target_id, tenant_id, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`,
		unixNano(r.At), r.Actor, r.Address, r.Action, r.TargetType, r.TargetID, r.TenantID, rawOrEmpty(r.Before), rawOrEmpty(r.After)).Scan(&r.Seq)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// AuditRecords implements AuditStore.
func (s *PostgresStore) AuditRecords(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	where, args := auditFilter(q, func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := s.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit `+where+` ORDER BY seq LIMIT `+strconv.Itoa(q.limit()), args...)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	return scanAudit(rows)
}

// PruneAudit implements AuditStore.
func (s *PostgresStore) PruneAudit(ctx context.Context, before time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune audit: %w", err)
	}
	return nil
}

// ClaimIdempotencyKey implements IdempotencyStore.
func (s *PostgresStore) ClaimIdempotencyKey(ctx context.Context, rec IdempotencyRecord) (*IdempotencyRecord, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO idempotency (scope, key, fingerprint, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING`,
		rec.Scope, rec.Key, rec.Fingerprint, unixNano(rec.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	existing, err := scanIdempotency(s.pool.QueryRow(ctx, `SELECT `+idempotencyColumns+` FROM idempotency WHERE scope = $1 AND key = $2`, rec.Scope, rec.Key))
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	return existing, ErrIdempotencyKeyTaken
}

// CompleteIdempotencyKey implements IdempotencyStore.
func (s *PostgresStore) CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, resourceID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE idempotency SET done = TRUE, status = $1, resource_id = $2 WHERE scope = $3 AND key = $4`, status, resourceID, scope, key); err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey implements IdempotencyStore.
func (s *PostgresStore) ReleaseIdempotencyKey(ctx context.Context, scope, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE scope = $1 AND key = $2 AND NOT done`, scope, key); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotency implements IdempotencyStore.
func (s *PostgresStore) PruneIdempotency(ctx context.Context, before time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, before.UnixNano()); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	return nil
}
