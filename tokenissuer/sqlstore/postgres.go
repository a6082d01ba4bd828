package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/portcullis/portcullis/tokenissuer"
)

// PostgresStore is the Store for several issuer replicas sharing one
// PostgreSQL database: clients, signing keys (encrypted) and the shared
// failure counters live there.
type PostgresStore struct {
	*sqlStore
	// pool serves LISTEN/NOTIFY; the statements go through sqlStore's
	// database/sql handle on the same pool.
	pool *pgxpool.Pool
}

// postgresDialect: rows read for a change are locked (FOR UPDATE), and
// replicas take turns at keys, revocations and a tenant's quota through
// advisory locks; ties between secrets break by their serial; pruning keeps
// the newest revocation, whose Seq is the feed's version.
var postgresDialect = dialect{
	forUpdate:    " FOR UPDATE",
	secretsOrder: "seq",
	lock: func(ctx context.Context, tx *sql.Tx, l writeLock) error {
		var err error
		if l.tenant != "" {
			_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(l.key), l.tenant)
		} else {
			_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, l.key)
		}
		return err
	},
	// The highest committed Seq, not the sequence's last value: nextval is
	// visible before its row commits, and a follower told that version
	// would skip the row.
	latestRevocation: `SELECT COALESCE(MAX(seq), 0) FROM revocations`,
	pruneRevocations: `DELETE FROM revocations WHERE expires_s <= $1 AND seq < (SELECT MAX(seq) FROM revocations)`,
	migrations:       postgresMigrations,
}

var _ tokenissuer.Store = (*PostgresStore)(nil)

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
	// When each client and secret last got a token, and each secret's
	// hint (its last characters; secrets made before have none).
	`ALTER TABLE clients ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE client_secrets ADD COLUMN hint TEXT NOT NULL DEFAULT '';
	ALTER TABLE client_secrets ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;`,
	// A tenant's people must set up a second factor.
	`ALTER TABLE tenants ADD COLUMN second_factor_required BOOLEAN NOT NULL DEFAULT FALSE;`,
	// Leak reports find a secret without its client.
	`ALTER TABLE client_secrets ADD COLUMN lookup BYTEA NOT NULL DEFAULT '';
	CREATE INDEX client_secrets_lookup ON client_secrets (lookup) WHERE length(lookup) > 0;`,
	// Clients that authenticate with private_key_jwt (RFC 7523), and the
	// assertions' IDs seen, so that none is used twice on any replica.
	`ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN keys_only BOOLEAN NOT NULL DEFAULT FALSE;
	CREATE TABLE assertion_ids (
		client_id TEXT NOT NULL,
		jti TEXT NOT NULL,
		expires_at BIGINT NOT NULL,
		PRIMARY KEY (client_id, jti)
	);
	CREATE INDEX assertion_ids_expires ON assertion_ids (expires_at);`,
	// A tenant's maximum secret age.
	`ALTER TABLE tenants ADD COLUMN max_secret_age_days INTEGER NOT NULL DEFAULT 0;`,
	// When each client key last got a token.
	`CREATE TABLE client_key_uses (
		client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
		kid TEXT NOT NULL,
		last_used_at BIGINT NOT NULL,
		PRIMARY KEY (client_id, kid)
	);`,
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
	s := &PostgresStore{sqlStore: &sqlStore{db: stdlib.OpenDBFromPool(pool), d: postgresDialect}, pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return s, nil
}

// Close closes the pool.
func (s *PostgresStore) Close() error {
	s.db.Close()
	s.pool.Close()
	return nil
}
