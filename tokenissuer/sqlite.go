package tokenissuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/portcullis/portcullis/internal/secretfile"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)
)

// SQLiteStore is the embedded Store: one SQLite file, no server to run.
type SQLiteStore struct {
	db *sql.DB
	localBus
}

var _ Store = (*SQLiteStore)(nil)

// sqliteMigrations are applied in order, each once; append, never edit.
var sqliteMigrations = []string{
	`CREATE TABLE clients (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		tenant_id TEXT NOT NULL DEFAULT '',
		scopes TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		token_lifetime_ns INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE client_secrets (
		client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
		id TEXT NOT NULL,
		hash BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (client_id, id)
	);
	CREATE TABLE signing_keys (
		kid TEXT PRIMARY KEY,
		algorithm TEXT NOT NULL,
		private_jwk BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		active_at INTEGER NOT NULL,
		retire_at INTEGER NOT NULL DEFAULT 0
	);`,
	`CREATE TABLE auth_failures (
		key TEXT PRIMARY KEY,
		window_start INTEGER NOT NULL,
		failures INTEGER NOT NULL
	);`,
	`CREATE TABLE tenants (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		status TEXT NOT NULL,
		scope_ceiling TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE audit (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		at INTEGER NOT NULL,
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
		created_at INTEGER NOT NULL,
		done INTEGER NOT NULL DEFAULT 0,
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
		totp_secret BLOB NOT NULL DEFAULT x'',
		totp_last_step INTEGER NOT NULL DEFAULT 0,
		recovery_codes TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE sessions (
		id_hash BLOB PRIMARY KEY,
		account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		csrf_token TEXT NOT NULL,
		pending INTEGER NOT NULL DEFAULT 0,
		address TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		last_seen_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX sessions_account ON sessions (account_id);
	CREATE TABLE invites (
		id_hash BLOB PRIMARY KEY,
		email TEXT NOT NULL,
		name TEXT NOT NULL DEFAULT '',
		role TEXT NOT NULL,
		tenant_id TEXT NOT NULL DEFAULT '',
		created_by TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);`,
	`CREATE TABLE revocations (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
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

// OpenSQLite opens (creating if needed) the SQLite store at path and applies
// pending schema migrations. The database holds secret hashes and signing
// keys: it is created owner-only (SQLite gives its -wal and -shm files the
// database's mode), and a database or sidecar file that group or others can
// read is refused.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	for _, p := range sqliteFiles(path) {
		if err := secretfile.Check(p); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	if err := secretfile.Touch(path); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Writers take the lock when their transaction begins, so a
	// read-then-write (key rotation) cannot interleave with another process.
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s := &SQLiteStore{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// The journal files exist now; make sure they took the database's mode.
	for _, p := range sqliteFiles(path) {
		if err := secretfile.Check(p); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	return s, nil
}

// sqliteFiles are the database and the sidecar files SQLite keeps beside it
// in WAL mode: each holds data of the database.
func sqliteFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm"}
}

func (s *SQLiteStore) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(sqliteMigrations) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d); upgrade the issuer", current, len(sqliteMigrations))
	}
	for v := current + 1; v <= len(sqliteMigrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqliteMigrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return fmt.Errorf("record migration %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %d: %w", v, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// sqlQueryer is what both *sql.DB and *sql.Tx offer for reads.
type sqlQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// CreateClient implements Store.
func (s *SQLiteStore) CreateClient(ctx context.Context, c *Client, maxPerTenant int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clients WHERE id = ?`, c.ID).Scan(&exists); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if exists > 0 {
		return ErrClientExists
	}
	if c.TenantID != "" && maxPerTenant > 0 {
		// The transaction took the write lock as it began (_txlock=immediate):
		// the count cannot change under it.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clients WHERE tenant_id = ?`, c.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		if n >= maxPerTenant {
			return ErrClientQuota
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO clients (id, name, tenant_id, scopes, status, token_lifetime_ns, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.TenantID, joinScopes(c.Scopes), string(c.Status), int64(c.TokenLifetime), unixNano(c.CreatedAt), unixNano(c.UpdatedAt)); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if err := sqliteWriteSecrets(ctx, tx, c); err != nil {
		return err
	}
	return tx.Commit()
}

func sqliteWriteSecrets(ctx context.Context, tx *sql.Tx, c *Client) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM client_secrets WHERE client_id = ?`, c.ID); err != nil {
		return fmt.Errorf("write secrets: %w", err)
	}
	for _, sec := range c.Secrets {
		if _, err := tx.ExecContext(ctx, `INSERT INTO client_secrets (client_id, id, hash, created_at) VALUES (?, ?, ?, ?)`,
			c.ID, sec.ID, sec.Hash, unixNano(sec.CreatedAt)); err != nil {
			return fmt.Errorf("write secrets: %w", err)
		}
	}
	return nil
}

// Client implements Store.
func (s *SQLiteStore) Client(ctx context.Context, id string) (*Client, error) {
	return sqliteReadClient(ctx, s.db, id)
}

func sqliteReadClient(ctx context.Context, q sqlQueryer, id string) (*Client, error) {
	c, err := scanClient(q.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrClientNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read client: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, hash, created_at FROM client_secrets WHERE client_id = ? ORDER BY created_at, rowid`, id)
	if err != nil {
		return nil, fmt.Errorf("read client secrets: %w", err)
	}
	defer rows.Close()
	c.Secrets, err = scanSecrets(rows)
	return c, err
}

// Clients implements Store.
func (s *SQLiteStore) Clients(ctx context.Context, q ClientQuery) ([]*Client, error) {
	where, args := q.where(func(int) string { return "?" })
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

// UpdateClient implements Store.
func (s *SQLiteStore) UpdateClient(ctx context.Context, id string, update func(*Client) error) (*Client, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	c, err := sqliteReadClient(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := update(c); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE clients SET name = ?, tenant_id = ?, scopes = ?, status = ?, token_lifetime_ns = ?, updated_at = ? WHERE id = ?`,
		c.Name, c.TenantID, joinScopes(c.Scopes), string(c.Status), int64(c.TokenLifetime), unixNano(c.UpdatedAt), id); err != nil {
		return nil, fmt.Errorf("update client: %w", err)
	}
	if err := sqliteWriteSecrets(ctx, tx, c); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update client: %w", err)
	}
	return c, nil
}

// DeleteClient implements Store. The transaction takes the write lock when
// it begins (_txlock=immediate): nobody changes the client between the
// check and the delete.
func (s *SQLiteStore) DeleteClient(ctx context.Context, id string, check func(*Client) error) (*Client, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	c, err := sqliteReadClient(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := check(c); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM client_secrets WHERE client_id = ?`, id); err != nil {
		return nil, fmt.Errorf("delete client: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("delete client: %w", err)
	}
	return c, tx.Commit()
}

// SigningKeys implements Store.
func (s *SQLiteStore) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	return scanSigningKeys(rows)
}

// AddSigningKey implements Store. The transaction is IMMEDIATE (see
// OpenSQLite), so the check and the insert exclude other writers.
func (s *SQLiteStore) AddSigningKey(ctx context.Context, key SigningKey, retireOthersAt, onlyIfNewestBefore time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var newest sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(created_at) FROM signing_keys`).Scan(&newest); err != nil {
		return false, fmt.Errorf("read newest signing key: %w", err)
	}
	if newest.Valid && !fromUnixNano(newest.Int64).Before(onlyIfNewestBefore) {
		return false, nil
	}
	if !retireOthersAt.IsZero() {
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retire_at = ? WHERE retire_at = 0`, unixNano(retireOthersAt)); err != nil {
			return false, fmt.Errorf("retire signing keys: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, algorithm, private_jwk, created_at, active_at, retire_at) VALUES (?, ?, ?, ?, ?, ?)`,
		key.KID, key.Algorithm, key.PrivateJWK, unixNano(key.CreatedAt), unixNano(key.ActiveAt), unixNano(key.RetireAt)); err != nil {
		return false, fmt.Errorf("add signing key %s: %w", key.KID, err)
	}
	return true, tx.Commit()
}

// RecordFailure implements Store.
func (s *SQLiteStore) RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	var failures int
	var start int64
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO auth_failures (key, window_start, failures) VALUES (?1, ?2, 1)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE failures + 1 END,
			window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END
		RETURNING failures, window_start`, key, now.UnixNano(), int64(window)).Scan(&failures, &start)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("record authentication failure: %w", err)
	}
	return failures, fromUnixNano(start), nil
}

// ForgiveFailure implements Store.
func (s *SQLiteStore) ForgiveFailure(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE auth_failures SET failures = failures - 1 WHERE key = ? AND failures > 0`, key); err != nil {
		return fmt.Errorf("forgive an authentication failure: %w", err)
	}
	return nil
}

// ClearFailures implements Store.
func (s *SQLiteStore) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_failures WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clear authentication failures: %w", err)
	}
	return nil
}

// PruneFailures implements Store.
func (s *SQLiteStore) PruneFailures(ctx context.Context, before time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM auth_failures WHERE window_start < ?`, before.UnixNano())
	return err
}

// DeleteSigningKeysRetiredBefore implements Store.
func (s *SQLiteStore) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM signing_keys WHERE retire_at != 0 AND retire_at < ?`, unixNano(t)); err != nil {
		return fmt.Errorf("prune signing keys: %w", err)
	}
	return nil
}

// ReplaceSigningKeyPrivate implements Store.
func (s *SQLiteStore) ReplaceSigningKeyPrivate(ctx context.Context, kid string, old, replacement []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE signing_keys SET private_jwk = ? WHERE kid = ? AND private_jwk = ?`, replacement, kid, old)
	if err != nil {
		return fmt.Errorf("replace signing key %s: %w", kid, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrKeyChanged
	}
	return nil
}
