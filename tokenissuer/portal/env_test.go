package portal_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// testPassword is the password of the test accounts (for tests only).
const testPassword = "correct horse battery staple"

// env is a real issuer on loopback with the portal on its admin listener,
// two tenants, and people of each role.
type env struct {
	t        *testing.T
	srv      *server.Server
	public   string
	portal   string
	admin    *tokenissuer.Admin
	accounts *tokenissuer.Accounts
	// otherClient belongs to tenant globex, which acme's people must not see.
	otherClient string
}

func start(t *testing.T, configure ...func(*server.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.SQLitePath, cfg.Store.SecretHashKeyFile = filepath.Join(dir, "issuer.db"), filepath.Join(dir, "hash.key")
	cfg.ClientCacheTTL = 0 // the token endpoint sees each change at once
	cfg.Portal.SecureCookies = false
	for _, c := range configure {
		c(&cfg)
	}
	srv := runIssuer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))

	e := &env{t: t, srv: srv, public: "http://" + srv.Addr().String(), portal: "http://" + srv.AdminAddr().String() + "/portal/",
		admin: srv.Admin(), accounts: srv.Accounts}
	op := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	for _, tn := range []tokenissuer.NewTenant{
		{ID: "acme", Name: "Acme", ScopeCeiling: []string{"accounts:read", "accounts:write", "cards:read"}},
		{ID: "globex", Name: "Globex", ScopeCeiling: []string{"accounts:read"}},
	} {
		if _, err := e.admin.CreateTenant(op, tn); err != nil {
			t.Fatal(err)
		}
	}
	other, _, err := e.admin.CreateClient(op, tokenissuer.NewClient{Name: "Globex app", TenantID: "globex", Scopes: []string{"accounts:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.otherClient = other.ID
	for _, na := range []tokenissuer.NewAccount{
		{Email: "ops@example.com", Name: "Olga Ops", Role: tokenissuer.RolePlatformAdmin, Password: testPassword},
		{Email: "admin@acme.example", Name: "Ada Admin", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Password: testPassword},
		{Email: "viewer@acme.example", Name: "Vic Viewer", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", Password: testPassword},
	} {
		if _, err := e.accounts.CreateAccount(op, na); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// runIssuer runs an issuer with the admin API and the portal on its admin
// listener until the test ends.
func runIssuer(t *testing.T, cfg server.Config, log *slog.Logger) *server.Server {
	t.Helper()
	srv, err := server.NewServer(context.Background(), cfg, tokenissuer.SystemClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// tokenStatus asks the token endpoint for a token as a client would, and
// returns the HTTP status.
func (e *env) tokenStatus(id, secret string) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.public+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
