package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for a store as an older release left it

	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"
)

// TestStoresUpgradeInPlace: a store as the previous schema left it, with
// data in it, opens with this binary, migrates, and keeps its data. Never
// renumber a migration: stores in the field upgrade through this path.
func TestStoresUpgradeInPlace(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		migrations []string
		prepare    func(t *testing.T) (raw *sql.DB, open func() (tokenissuer.Store, error))
	}{
		"sqlite": {sqlstore.SQLiteMigrations, func(t *testing.T) (*sql.DB, func() (tokenissuer.Store, error)) {
			path := filepath.Join(t.TempDir(), "old.db")
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			return raw, func() (tokenissuer.Store, error) { return sqlstore.OpenSQLite(context.Background(), path) }
		}},
		"postgres": {sqlstore.PostgresMigrations, func(t *testing.T) (*sql.DB, func() (tokenissuer.Store, error)) {
			dsn := pgtest.FreshDatabase(t)
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			return raw, func() (tokenissuer.Store, error) { return sqlstore.OpenPostgres(context.Background(), dsn) }
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, open := tc.prepare(t)
			ctx := context.Background()
			previous := len(tc.migrations) - 1
			if _, err := raw.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for v, m := range tc.migrations[:previous] {
				if _, err := raw.ExecContext(ctx, m); err != nil {
					t.Fatalf("migration %d: %v", v+1, err)
				}
				if _, err := raw.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v+1, time.Now().UnixNano()); err != nil {
					t.Fatal(err)
				}
			}
			at := time.Unix(1_800_000_000, 0).UnixNano()
			for _, stmt := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO tenants (id, name, status, scope_ceiling, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`, []any{"acme", "Acme", "active", "a b", at}},
				{`INSERT INTO clients (id, name, tenant_id, scopes, status, token_lifetime_ns, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)`, []any{"acme-app", "App", "acme", "a", "active", at}},
				{`INSERT INTO client_secrets (client_id, id, hash, created_at) VALUES ($1, $2, $3, $4)`, []any{"acme-app", "s1", []byte("hash"), at}},
				{`INSERT INTO revocations (kind, subject, before_s, expires_s, cause, at, client_id) VALUES ($1, $2, 0, $3, $4, $5, $6)`, []any{"token", "jti-1", int64(4_000_000_000), "oauth2.revoke", at, "acme-app"}},
			} {
				if _, err := raw.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
					t.Fatalf("%s: %v", stmt.sql, err)
				}
			}
			raw.Close()

			s, err := open()
			if err != nil {
				t.Fatalf("opening a store of schema %d: %v", previous, err)
			}
			defer s.Close()
			c, err := s.Client(ctx, "acme-app")
			if err != nil || c.TenantID != "acme" || len(c.Secrets) != 1 || string(c.Secrets[0].Hash) != "hash" {
				t.Fatalf("the client after the upgrade: %v %+v", err, c)
			}
			if page, err := s.Clients(ctx, tokenissuer.ClientQuery{TenantID: "acme", Limit: 10}); err != nil || len(page) != 1 {
				t.Fatalf("a tenant's clients after the upgrade: %v %v", err, page)
			}
			if v, err := s.LatestRevocation(ctx); err != nil || v != 1 {
				t.Fatalf("the feed's version after the upgrade: %d %v", v, err)
			}
		})
	}
}
