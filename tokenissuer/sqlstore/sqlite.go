package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)

	"github.com/portcullis/portcullis/internal/secretfile"
	"github.com/portcullis/portcullis/tokenissuer"
)

// SQLiteStore is the embedded Store: one SQLite file, no server to run.
type SQLiteStore struct {
	*sqlStore
	localBus
}

// sqliteDialect: a transaction takes the write lock as it begins
// (_txlock=immediate), so nothing needs locking inside it; ties between
// secrets break by rowid; AUTOINCREMENT's counter is the feed's version.
var sqliteDialect = dialect{
	secretsOrder:     "rowid",
	latestRevocation: `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0)`,
	pruneRevocations: `DELETE FROM revocations WHERE expires_s <= $1`,
	migrations:       sqliteMigrations,
}

var _ tokenissuer.Store = (*SQLiteStore)(nil)

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
	// When each client and secret last got a token, and each secret's
	// hint (its last characters; secrets made before have none).
	`ALTER TABLE clients ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE client_secrets ADD COLUMN hint TEXT NOT NULL DEFAULT '';
	ALTER TABLE client_secrets ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;`,
	// A tenant's people must set up a second factor.
	`ALTER TABLE tenants ADD COLUMN second_factor_required INTEGER NOT NULL DEFAULT 0;`,
	// Leak reports find a secret without its client.
	`ALTER TABLE client_secrets ADD COLUMN lookup BLOB NOT NULL DEFAULT x'';
	CREATE INDEX client_secrets_lookup ON client_secrets (lookup) WHERE length(lookup) > 0;`,
	// Clients that authenticate with private_key_jwt (RFC 7523), and the
	// assertions' IDs seen, so that none is used twice on any replica.
	`ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN keys_only INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE assertion_ids (
		client_id TEXT NOT NULL,
		jti TEXT NOT NULL,
		expires_at INTEGER NOT NULL,
		PRIMARY KEY (client_id, jti)
	);
	CREATE INDEX assertion_ids_expires ON assertion_ids (expires_at);`,
	// A tenant's maximum secret age.
	`ALTER TABLE tenants ADD COLUMN max_secret_age_days INTEGER NOT NULL DEFAULT 0;`,
	// When each client key last got a token.
	`CREATE TABLE client_key_uses (
		client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
		kid TEXT NOT NULL,
		last_used_at INTEGER NOT NULL,
		PRIMARY KEY (client_id, kid)
	);`,
}

// OpenSQLite opens (creating if needed) the SQLite store at path and applies
// pending schema migrations. The database holds secret hashes and signing
// keys: it is created owner-only (SQLite gives its -wal and -shm files the
// database's mode), and a database or sidecar file that group or others can
// read is refused.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	for _, p := range SQLiteFiles(path) {
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
	s := &SQLiteStore{sqlStore: &sqlStore{db: db, d: sqliteDialect}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// The journal files exist now; make sure they took the database's mode.
	for _, p := range SQLiteFiles(path) {
		if err := secretfile.Check(p); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	return s, nil
}

// SQLiteFiles are the database and the sidecar files SQLite keeps beside it
// in WAL mode: each holds data of the database.
func SQLiteFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm"}
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }
