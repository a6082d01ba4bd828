package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"
)

// Engines opens a fresh, empty store of each engine: SQLite in a temporary
// directory, PostgreSQL in a new database on the test server (see
// internal/pgtest: .ci/run starts one; without it the PostgreSQL tests skip
// locally and fail in CI).
func Engines() map[string]func(t *testing.T) tokenissuer.Store {
	return map[string]func(t *testing.T) tokenissuer.Store{
		"sqlite":   func(t *testing.T) tokenissuer.Store { return OpenSQLite(t) },
		"postgres": func(t *testing.T) tokenissuer.Store { return OpenPostgres(t, pgtest.FreshDatabase(t)) },
	}
}

// OpenSQLite opens a fresh SQLite store that the test closes when it ends.
func OpenSQLite(t testing.TB) *sqlstore.SQLiteStore {
	t.Helper()
	s, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/store.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenPostgres opens the PostgreSQL store at dsn (pgtest.FreshDatabase
// makes one) that the test closes when it ends.
func OpenPostgres(t testing.TB, dsn string) *sqlstore.PostgresStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
