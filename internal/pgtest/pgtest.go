// Package pgtest gives tests a fresh PostgreSQL database on the server named
// by PORTCULLIS_TEST_POSTGRES_DSN (.ci/run starts one). Without it the
// tests skip, except in CI, where they fail: they must run there.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSNEnv names the server for the PostgreSQL tests.
const DSNEnv = "PORTCULLIS_TEST_POSTGRES_DSN"

var pgDatabases atomic.Int64

// FreshDatabase creates an empty database for t, dropped when t ends, and
// returns its DSN.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/run starts a server)", DSNEnv)
		}
		t.Skipf("set %s to a PostgreSQL server (e.g. postgres://user@127.0.0.1:5432/postgres) to run the PostgreSQL tests", DSNEnv)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", DSNEnv, err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("portcullis_test_%d_%d", os.Getpid(), pgDatabases.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
