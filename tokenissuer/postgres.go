package tokenissuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresStore is the Store for several issuer replicas sharing one
// PostgreSQL database: clients, signing keys (encrypted) and the shared
// failure counters live there.
type PostgresStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*PostgresStore)(nil)

// postgresMigrations are applied in order, each once; append, never edit.
var postgresMigrations = []string{
	`CREATE TABLE clients (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		tenant_id TEXT NOT NULL DEFAULT '',
		scopes TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		token_lifetime_ns BIGINT NOT NULL DEFAULT 0,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE TABLE client_secrets (
		seq BIGSERIAL,
		client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
		id TEXT NOT NULL,
		hash BYTEA NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (client_id, id)
	);
	CREATE TABLE signing_keys (
		kid TEXT PRIMARY KEY,
		algorithm TEXT NOT NULL,
		private_jwk BYTEA NOT NULL,
		created_at BIGINT NOT NULL,
		active_at BIGINT NOT NULL,
		retire_at BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE auth_failures (
		key TEXT PRIMARY KEY,
		window_start BIGINT NOT NULL,
		failures INTEGER NOT NULL
	);`,
	`CREATE TABLE tenants (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		status TEXT NOT NULL,
		scope_ceiling TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE TABLE audit (
		seq BIGSERIAL PRIMARY KEY,
		at BIGINT NOT NULL,
		actor TEXT NOT NULL,
		address TEXT NOT NULL DEFAULT '',
		action TEXT NOT NULL,
		target_type TEXT NOT NULL,
		target_id TEXT NOT NULL,
		tenant_id TEXT NOT NULL DEFAULT '',
		before_json TEXT NOT NULL DEFAULT '',
		after_json TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX audit_at ON audit (at);`,
	`CREATE TABLE idempotency (
		scope TEXT NOT NULL,
		key TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		done BOOLEAN NOT NULL DEFAULT FALSE,
		status INTEGER NOT NULL DEFAULT 0,
		resource_id TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (scope, key)
	);`,
	`CREATE TABLE accounts (
		id TEXT PRIMARY KEY,
		email TEXT NOT NULL UNIQUE,
		name TEXT NOT NULL,
		role TEXT NOT NULL,
		tenant_id TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		password_hash TEXT NOT NULL DEFAULT '',
		totp_secret BYTEA NOT NULL DEFAULT '',
		totp_last_step BIGINT NOT NULL DEFAULT 0,
		recovery_codes TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE TABLE sessions (
		id_hash BYTEA PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		csrf_token TEXT NOT NULL,
		pending BOOLEAN NOT NULL DEFAULT FALSE,
		address TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		last_seen_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX sessions_account ON sessions (account_id);
	CREATE TABLE invites (
		id_hash BYTEA PRIMARY KEY,
		email TEXT NOT NULL,
		name TEXT NOT NULL DEFAULT '',
		role TEXT NOT NULL,
		tenant_id TEXT NOT NULL DEFAULT '',
		created_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);`,
	`CREATE TABLE revocations (
		seq BIGSERIAL PRIMARY KEY,
		kind TEXT NOT NULL,
		subject TEXT NOT NULL,
		before_s BIGINT NOT NULL DEFAULT 0,
		expires_s BIGINT NOT NULL,
		cause TEXT NOT NULL DEFAULT '',
		at BIGINT NOT NULL
	);
	CREATE INDEX revocations_expires ON revocations (expires_s);`,
	// The client a revoked token was issued to, so that the feed can bound
	// each client's token entries.
	`ALTER TABLE revocations ADD COLUMN client_id TEXT NOT NULL DEFAULT '';`,
	// Lists of one tenant's clients read only that tenant's rows.
	`CREATE INDEX clients_tenant ON clients (tenant_id, id);`,
}

// Advisory lock keys (pg_advisory_xact_lock) that serialize migrations and
// key rotation across replicas.
const (
	lockMigrations = 0x706f7274_00000001
	lockKeys       = 0x706f7274_00000002
	// lockTenantClients, with a hash of the tenant ID as the second key,
	// serializes creating a tenant's clients (its quota).
	lockTenantClients int32 = 0x706f7274
)

// OpenPostgres connects to dsn and applies pending migrations; replicas
// starting together take turns through an advisory lock.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s := &PostgresStore{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return s, nil
}

func (s *PostgresStore) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockMigrations)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(postgresMigrations) {
			return fmt.Errorf("database schema version %d is newer than this binary knows (%d); upgrade the issuer", current, len(postgresMigrations))
		}
		for v := current + 1; v <= len(postgresMigrations); v++ {
			if _, err := tx.Exec(ctx, postgresMigrations[v-1]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, time.Now().UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the pool.
func (s *PostgresStore) Close() error {
	s.pool.Close()
	return nil
}

type pgQueryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// CreateClient implements Store.
func (s *PostgresStore) CreateClient(ctx context.Context, c *Client, maxPerTenant int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if c.TenantID != "" && maxPerTenant > 0 {
			// One creation per tenant at a time, across replicas: the count
			// holds until this transaction ends.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockTenantClients, c.TenantID); err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM clients WHERE tenant_id = $1`, c.TenantID).Scan(&n); err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			if n >= maxPerTenant {
				return ErrClientQuota
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO clients (id, name, tenant_id, scopes, status, token_lifetime_ns, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.ID, c.Name, c.TenantID, joinScopes(c.Scopes), string(c.Status), int64(c.TokenLifetime), unixNano(c.CreatedAt), unixNano(c.UpdatedAt))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			return ErrClientExists
		}
		if err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		return pgWriteSecrets(ctx, tx, c)
	})
}

func pgWriteSecrets(ctx context.Context, tx pgx.Tx, c *Client) error {
	if _, err := tx.Exec(ctx, `DELETE FROM client_secrets WHERE client_id = $1`, c.ID); err != nil {
		return fmt.Errorf("write secrets: %w", err)
	}
	for _, sec := range c.Secrets {
		if _, err := tx.Exec(ctx, `INSERT INTO client_secrets (client_id, id, hash, created_at) VALUES ($1, $2, $3, $4)`,
			c.ID, sec.ID, sec.Hash, unixNano(sec.CreatedAt)); err != nil {
			return fmt.Errorf("write secrets: %w", err)
		}
	}
	return nil
}

// Client implements Store.
func (s *PostgresStore) Client(ctx context.Context, id string) (*Client, error) {
	return pgReadClient(ctx, s.pool, id, false)
}

func pgReadClient(ctx context.Context, q pgQueryer, id string, forUpdate bool) (*Client, error) {
	query := `SELECT ` + clientColumns + ` FROM clients WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	c, err := scanClient(q.QueryRow(ctx, query, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read client: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT id, hash, created_at FROM client_secrets WHERE client_id = $1 ORDER BY created_at, seq`, id)
	if err != nil {
		return nil, fmt.Errorf("read client secrets: %w", err)
	}
	defer rows.Close()
	c.Secrets, err = scanSecrets(rows)
	return c, err
}

// Clients implements Store.
func (s *PostgresStore) Clients(ctx context.Context, q ClientQuery) ([]*Client, error) {
	where, args := q.where(func(n int) string { return fmt.Sprintf("$%d", n) })
	rows, err := s.pool.Query(ctx, `SELECT id FROM clients`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return clientsByID(ctx, s, ids)
}

// UpdateClient implements Store; the row is locked for the read-modify-write.
func (s *PostgresStore) UpdateClient(ctx context.Context, id string, update func(*Client) error) (*Client, error) {
	var out *Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := pgReadClient(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := update(c); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE clients SET name = $1, tenant_id = $2, scopes = $3, status = $4, token_lifetime_ns = $5, updated_at = $6 WHERE id = $7`,
			c.Name, c.TenantID, joinScopes(c.Scopes), string(c.Status), int64(c.TokenLifetime), unixNano(c.UpdatedAt), id); err != nil {
			return fmt.Errorf("update client: %w", err)
		}
		out = c
		return pgWriteSecrets(ctx, tx, c)
	})
	return out, err
}

// DeleteClient implements Store; the row is locked from the check to the
// delete.
func (s *PostgresStore) DeleteClient(ctx context.Context, id string, check func(*Client) error) (*Client, error) {
	var out *Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := pgReadClient(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := check(c); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete client: %w", err)
		}
		out = c
		return nil
	})
	return out, err
}

// SigningKeys implements Store.
func (s *PostgresStore) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	return scanSigningKeys(rows)
}

// AddSigningKey implements Store. The advisory lock makes the check of
// onlyIfNewestBefore and the insert one step across replicas.
func (s *PostgresStore) AddSigningKey(ctx context.Context, key SigningKey, retireOthersAt, onlyIfNewestBefore time.Time) (bool, error) {
	added := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKeys)); err != nil {
			return err
		}
		var newest *int64
		if err := tx.QueryRow(ctx, `SELECT MAX(created_at) FROM signing_keys`).Scan(&newest); err != nil {
			return fmt.Errorf("read newest signing key: %w", err)
		}
		if newest != nil && !fromUnixNano(*newest).Before(onlyIfNewestBefore) {
			return nil // another replica got there first
		}
		if !retireOthersAt.IsZero() {
			if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retire_at = $1 WHERE retire_at = 0`, unixNano(retireOthersAt)); err != nil {
				return fmt.Errorf("retire signing keys: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, algorithm, private_jwk, created_at, active_at, retire_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			key.KID, key.Algorithm, key.PrivateJWK, unixNano(key.CreatedAt), unixNano(key.ActiveAt), unixNano(key.RetireAt)); err != nil {
			return fmt.Errorf("add signing key %s: %w", key.KID, err)
		}
		added = true
		return nil
	})
	return added, err
}

// DeleteSigningKeysRetiredBefore implements Store.
func (s *PostgresStore) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE retire_at != 0 AND retire_at < $1`, unixNano(t)); err != nil {
		return fmt.Errorf("prune signing keys: %w", err)
	}
	return nil
}

// RecordFailure implements Store: one atomic upsert counts a failure in the
// current window, shared by every replica.
func (s *PostgresStore) RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	var failures int
	var start int64
	err := s.pool.QueryRow(ctx, `
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

// ForgiveFailure implements Store.
func (s *PostgresStore) ForgiveFailure(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE auth_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0`, key); err != nil {
		return fmt.Errorf("forgive an authentication failure: %w", err)
	}
	return nil
}

// ClearFailures implements Store.
func (s *PostgresStore) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM auth_failures WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear authentication failures: %w", err)
	}
	return nil
}

// PruneFailures implements Store.
func (s *PostgresStore) PruneFailures(ctx context.Context, before time.Time) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM auth_failures WHERE window_start < $1`, before.UnixNano())
	return err
}

// ReplaceSigningKeyPrivate implements Store.
func (s *PostgresStore) ReplaceSigningKeyPrivate(ctx context.Context, kid string, old, replacement []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE signing_keys SET private_jwk = $1 WHERE kid = $2 AND private_jwk = $3`, replacement, kid, old)
	if err != nil {
		return fmt.Errorf("replace signing key %s: %w", kid, err)
	}
	if tag.RowsAffected() != 1 {
		return ErrKeyChanged
	}
	return nil
}
