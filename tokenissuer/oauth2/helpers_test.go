package oauth2_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
	"github.com/portcullis/portcullis/tokenissuer/server"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"

	"github.com/prometheus/client_golang/prometheus"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testIssuer is an issuer served over real HTTP on loopback.
type testIssuer struct {
	t      testing.TB
	cfg    server.Config
	clock  tokenissuer.Clock
	store  tokenissuer.Store
	keys   *keys.Manager
	hasher *tokenissuer.SecretHasher
	admin  *tokenissuer.Admin
	server *oauth2.Endpoints
	http   *httptest.Server
}

// testConfig returns a configuration whose files live in dir.
func testConfig(dir string) server.Config {
	cfg := server.DefaultConfig()
	cfg.Store.SQLitePath = filepath.Join(dir, "issuer.db")
	cfg.Store.SecretHashKeyFile = filepath.Join(dir, "hash.key")
	cfg.ClientCacheTTL = 0 // tests change clients and expect the next request to see it
	return cfg
}

// startIssuer serves an issuer built from cfg; the issuer URL in the
// configuration is replaced by the test server's.
func startIssuer(t testing.TB, cfg server.Config, clock tokenissuer.Clock) *testIssuer {
	t.Helper()
	ctx := operatorContext()
	store, err := sqlstore.OpenSQLite(ctx, cfg.Store.SQLitePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return startIssuerOn(t, cfg, clock, store)
}

func startIssuerOn(t testing.TB, cfg server.Config, clock tokenissuer.Clock, store tokenissuer.Store) *testIssuer {
	t.Helper()
	ctx := operatorContext()
	hasher, err := server.LoadHasher(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := server.NewKeyManagerFor(cfg, store, clock, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ti := &testIssuer{t: t, clock: clock, store: store, keys: keys, hasher: hasher, admin: tokenissuer.NewAdmin(store, hasher, clock, cfg.AdminLimits())}
	// The handler is installed after the server exists so that the issuer
	// URL in the tokens is the test server's own.
	var handler http.Handler
	ti.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ti.http.Close)
	cfg.Issuer = ti.http.URL
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ti.cfg = cfg
	srv, err := oauth2.NewEndpoints(cfg.Endpoints(), store, tokenissuer.NewAdmin(store, hasher, clock, cfg.AdminLimits()), keys, hasher, clock, discardLogger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ti.server = srv
	ti.runInBackground(func(ctx context.Context) { oauth2.FollowChanges(ctx, store, srv) })
	ti.runInBackground(srv.Feed.Run)
	handler = srv.Handler()
	return ti
}

// runInBackground runs loop until the test ends, and waits for it to
// return before the store closes (cleanups run last registered first): a
// loop still querying a closing SQLite store can reopen the file while the
// test's directory is being removed.
func (ti *testIssuer) runInBackground(loop func(context.Context)) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop(ctx)
	}()
	ti.t.Cleanup(func() {
		stop()
		<-done
	})
}

// createClient creates a client, and its tenant (with the client's scopes
// as ceiling) when the tenant does not exist yet.
func (ti *testIssuer) createClient(nc tokenissuer.NewClient) (*tokenissuer.Client, string) {
	ti.t.Helper()
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
	if nc.TenantID != "" {
		if _, err := ti.admin.CreateTenant(ops, tokenissuer.NewTenant{ID: nc.TenantID, ScopeCeiling: nc.Scopes}); err != nil && !errors.Is(err, tokenissuer.ErrTenantExists) {
			ti.t.Fatal(err)
		}
	}
	c, secret, err := ti.admin.CreateClient(ops, nc)
	if err != nil {
		ti.t.Fatal(err)
	}
	return c, secret
}

// testOperator is the platform operator the tests act as, as the CLI does.
var testOperator = tokenissuer.Actor{ID: "cli:test", Operator: true}

// operatorContext is a context in which testOperator acts: the service
// layer lets a context without an actor do nothing.
func operatorContext() context.Context {
	return tokenissuer.WithActor(context.Background(), testOperator)
}
