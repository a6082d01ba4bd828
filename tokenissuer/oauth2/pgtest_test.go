package oauth2_test

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
)

// freshPostgres is a new, empty database on the test server (see
// internal/pgtest: .ci/run starts one; without it the PostgreSQL tests skip
// locally and fail in CI).
func freshPostgres(t testing.TB) string { return pgtest.FreshDatabase(t) }

func openPostgresForTest(t testing.TB, dsn string) *tokenissuer.PostgresStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := tokenissuer.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// storeFactories are the stores every conformance test runs against.
func storeFactories() map[string]func(t *testing.T) tokenissuer.Store {
	return map[string]func(t *testing.T) tokenissuer.Store{
		"sqlite": func(t *testing.T) tokenissuer.Store {
			s, err := tokenissuer.OpenSQLite(context.Background(), t.TempDir()+"/store.db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(t *testing.T) tokenissuer.Store {
			return openPostgresForTest(t, freshPostgres(t))
		},
	}
}
