package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/examples"
	"github.com/portcullis/portcullis/internal/secretfile"
	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// demoClient is the local run's client; its secret is kept in clear in the
// local state directory because this is a throwaway development setup.
type demoClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

var demoScopes = []string{"accounts:read", "accounts:write", "transactions:read", "transactions:write", "cards:read", "users:read", authz.ActOnBehalfOfScope}

func newLocalCommand() *cobra.Command {
	var stateDir string
	var base int
	c := &cobra.Command{
		Use:   "local",
		Short: "Run the issuer and authz locally with embedded defaults",
		Long: `Run the issuer (SQLite store, a demo client of tenant acme) and authz (the sample
policy and user directory: examples/ when run in the repository, else the copies
built into this binary) in one process, and print how to get a token and try
allowed, 401, 403 and 409 requests. State (the store, its keys, the demo client's
secret) lives in the state directory, owner-only. Ctrl-C stops both.

It listens on loopback: the issuer on 8080 (its admin API and portal on 8081)
and authz on 9001 (admin 9002), or, with --listen-base N, on N to N+3. When one
of them is taken it takes free ports instead and says which.`,
		Example: "  portcullis local\n  portcullis local --state /tmp/portcullis --listen-base 18080",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if base < 0 || base > 65532 {
				return cli.UsageError{Msg: fmt.Sprintf("--listen-base %d: use a port between 1 and 65532", base), Command: c.CommandPath()}
			}
			return local(c.Context(), stateDir, base, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&stateDir, "state", ".local", "directory for the SQLite store and keys")
	c.Flags().IntVar(&base, "listen-base", 0, "first of four consecutive loopback ports (default: 8080, 8081, 9001, 9002)")
	return c
}

// localPorts returns the four loopback addresses (issuer, its admin
// listener, authz gRPC, authz admin): the usual ones, or four from base,
// or, when one of them is taken, four the system chooses, with a note.
func localPorts(base int) ([4]string, string) {
	ports := [4]int{8080, 8081, 9001, 9002}
	if base > 0 {
		ports = [4]int{base, base + 1, base + 2, base + 3}
	}
	var addrs [4]string
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for i, port := range ports {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			return freePorts(), fmt.Sprintf("port %d is taken, so local uses free ports instead (--listen-base chooses others)", port)
		}
		held = append(held, ln)
	}
	return addrs, ""
}

func freePorts() [4]string {
	var addrs [4]string
	var held []net.Listener
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			addrs[i] = "127.0.0.1:0"
			continue
		}
		held = append(held, ln)
		addrs[i] = ln.Addr().String()
	}
	for _, ln := range held {
		ln.Close()
	}
	return addrs
}

// samplePolicy returns the sample policy directory and user file: those of
// examples/ when run in the repository (edits reload), else the copies
// built into the binary, written under stateDir.
func samplePolicy(stateDir string) (policyDir, usersFile string, err error) {
	if _, err := os.Stat("examples/policy"); err == nil {
		if _, err := os.Stat("examples/users/users.yaml"); err == nil {
			return "examples/policy", "examples/users/users.yaml", nil
		}
	}
	dir := filepath.Join(stateDir, "samples")
	err = fs.WalkDir(examples.Samples, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := examples.Samples.ReadFile(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	return filepath.Join(dir, "policy"), filepath.Join(dir, "users", "users.yaml"), err
}

// local runs the issuer (SQLite store, demo client) and authz (sample policy
// and users) in one process, with state under stateDir.
func local(ctx context.Context, stateDir string, base int, stdout, stderr io.Writer) error {
	if err := secretfile.EnsureDir(stateDir); err != nil {
		return err
	}
	// Info shows the decision log of every denial, which is what one tries locally.
	log := cli.NewLogger(stderr, "info")
	ports, note := localPorts(base)
	if note != "" {
		fmt.Fprintln(stderr, "note: "+note)
	}
	policyDir, usersFile, err := samplePolicy(stateDir)
	if err != nil {
		return fmt.Errorf("sample policy: %w", err)
	}

	icfg := server.DefaultConfig()
	icfg.Listen, icfg.AdminListen, icfg.Issuer = ports[0], ports[1], "http://"+ports[0]
	icfg.Store.SQLitePath = filepath.Join(stateDir, "issuer.db")
	icfg.Store.SecretHashKeyFile = filepath.Join(stateDir, "issuer-secret-hash.key")
	icfg.Portal.SecureCookies = false // plain HTTP on loopback
	issuer, err := server.NewServer(ctx, icfg, tokenissuer.SystemClock{}, log)
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	demo, err := ensureDemoClient(ctx, issuer, filepath.Join(stateDir, "demo-client.json"))
	if err != nil {
		return err
	}
	people, err := ensureDemoAccounts(ctx, issuer, filepath.Join(stateDir, "demo-accounts.json"))
	if err != nil {
		return err
	}
	follower, err := ensureClient(ctx, issuer, filepath.Join(stateDir, "authz-client.json"), tokenissuer.NewClient{
		ID: "authz-local", Name: "authz (revocation feed)", Scopes: []string{revocation.ReadScope}})
	if err != nil {
		return err
	}
	acfg := authz.DefaultConfig()
	acfg.Listen, acfg.AdminListen, acfg.Token.Issuer = ports[2], ports[3], icfg.Issuer
	acfg.Policy, acfg.Users.File = policyDir, usersFile
	acfg.Revocation.Enabled = true
	acfg.Revocation.ClientID, acfg.Revocation.ClientSecret = follower.ClientID, follower.ClientSecret
	az, err := authz.NewServer(acfg, authz.SystemClock{}, log)
	if err != nil {
		return fmt.Errorf("authz: %w", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- issuer.Run(runCtx) }()
	go func() { errc <- az.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !az.Ready() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !az.Ready() {
		fmt.Fprintln(stderr, "warning: authz is not ready yet (issuer keys not fetched)")
	}
	printLocalHelp(stdout, stateDir, icfg, acfg, demo, people)

	// Both stop when ctx ends; if one fails first, stop the other too.
	first := <-errc
	cancel()
	if second := <-errc; first == nil {
		first = second
	}
	return first
}

func ensureDemoClient(ctx context.Context, issuer *server.Server, path string) (demoClient, error) {
	admin := issuer.Admin()
	actx := tokenissuer.WithActor(ctx, tokenissuer.CLIActor())
	if _, err := admin.CreateTenant(actx, tokenissuer.NewTenant{ID: "acme", Name: "Acme (demo)", ScopeCeiling: demoScopes}); err != nil && !errors.Is(err, tokenissuer.ErrTenantExists) {
		return demoClient{}, fmt.Errorf("create demo tenant: %w", err)
	}
	return ensureClient(ctx, issuer, path, tokenissuer.NewClient{ID: "demo-client", Name: "Demo client", TenantID: "acme", Scopes: demoScopes})
}

// ensureClient creates the client nc, unless the one whose ID and secret
// path keeps (owner-only) still exists.
func ensureClient(ctx context.Context, issuer *server.Server, path string, nc tokenissuer.NewClient) (demoClient, error) {
	var kept demoClient
	if raw, err := secretfile.Read(path); err == nil && json.Unmarshal(raw, &kept) == nil {
		if _, err := issuer.Store.Client(ctx, kept.ClientID); err == nil {
			return kept, nil
		}
	}
	admin := issuer.Admin()
	ctx = tokenissuer.WithActor(ctx, tokenissuer.CLIActor())
	// Its secret is lost with the state file: start again.
	if err := admin.DeleteClient(ctx, nc.ID); err != nil && !errors.Is(err, tokenissuer.ErrClientNotFound) {
		return kept, err
	}
	c, secret, err := admin.CreateClient(ctx, nc)
	if err != nil {
		return kept, fmt.Errorf("create client %s: %w", nc.ID, err)
	}
	kept = demoClient{ClientID: c.ID, ClientSecret: secret}
	raw, _ := json.MarshalIndent(kept, "", "  ")
	return kept, secretfile.Write(path, raw)
}

// demoAccount is a portal sign-in of the local demo.
type demoAccount struct {
	Email    string           `json:"email"`
	Password string           `json:"password"`
	Role     tokenissuer.Role `json:"role"`
	TenantID string           `json:"tenant_id,omitempty"`
}

// ensureDemoAccounts creates a platform admin and a tenant admin of acme,
// with generated passwords kept (owner-only) in path, unless they exist.
func ensureDemoAccounts(ctx context.Context, issuer *server.Server, path string) ([]demoAccount, error) {
	var people []demoAccount
	if raw, err := secretfile.Read(path); err == nil && json.Unmarshal(raw, &people) == nil && len(people) == 2 {
		if _, err := issuer.Accounts.FindAccount(ctx, people[0].Email); err == nil {
			if _, err := issuer.Accounts.FindAccount(ctx, people[1].Email); err == nil {
				return people, nil
			}
		}
	}
	ctx = tokenissuer.WithActor(ctx, tokenissuer.CLIActor())
	people = []demoAccount{
		{Email: "ops@example.com", Role: tokenissuer.RolePlatformAdmin},
		{Email: "admin@acme.example", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme"},
	}
	for i, p := range people {
		if old, err := issuer.Accounts.FindAccount(ctx, p.Email); err == nil {
			if err := issuer.Accounts.DeleteAccount(ctx, nil, old.ID); err != nil {
				return nil, err
			}
		}
		secret, err := tokenissuer.GenerateSecret()
		if err != nil {
			return nil, err
		}
		people[i].Password = secret[:20]
		if _, err := issuer.Accounts.CreateAccount(ctx, tokenissuer.NewAccount{Email: p.Email, Role: p.Role, TenantID: p.TenantID, Password: people[i].Password}); err != nil {
			return nil, fmt.Errorf("create demo portal account: %w", err)
		}
	}
	raw, _ := json.MarshalIndent(people, "", "  ")
	return people, secretfile.Write(path, raw)
}

func printLocalHelp(w io.Writer, stateDir string, icfg server.Config, acfg authz.Config, demo demoClient, people []demoAccount) {
	check := "authz check"
	if acfg.Listen != "127.0.0.1:9001" {
		check += " --addr " + acfg.Listen
	}
	text := fmt.Sprintf(`Portcullis is running locally (Ctrl-C stops it).
  issuer  %s   (SQLite store under %s)
  authz   gRPC %s, admin http://%s/readyz and /metrics
  policy  %s, users %s

Get a token for the demo client (tenant acme):
  TOKEN=$(curl -s -u %s:%s -d grant_type=client_credentials \
    %s/oauth2/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

Ask authz as Envoy would (in another terminal):
  CHECK --token "$TOKEN" GET /v1/accounts/42                          # 200, x-auth-* headers set
  CHECK GET /v1/accounts/42                                           # 401 missing-token
  CHECK --token "$TOKEN" POST /v1/users/42/block                      # 403 missing-scope
  CHECK --token "$TOKEN" --on-behalf-of "user 42" POST /v1/accounts   # 200, x-auth-user-id: 42
  CHECK --token "$TOKEN" --on-behalf-of "user 43" GET /v1/accounts/1  # 200: a blocked user may read
  CHECK --token "$TOKEN" --on-behalf-of "user 43" POST /v1/accounts   # 409 user-blocked

Revoke the token (RFC 7009); authz refuses it within a second (401 token-revoked):
  curl -s -u %s:%s -d token="$TOKEN" %s/oauth2/revoke
  CHECK --token "$TOKEN" GET /v1/accounts/42

Explain a route:  authz policy explain %s GET /v1/accounts/42
`, icfg.Issuer, stateDir, acfg.Listen, acfg.AdminListen, acfg.Policy, acfg.Users.File, demo.ClientID, demo.ClientSecret, icfg.Issuer, demo.ClientID, demo.ClientSecret, icfg.Issuer, acfg.Policy)
	_, _ = io.WriteString(w, strings.ReplaceAll(text, "  CHECK", "  "+check))
	fmt.Fprintf(w, "\nThe Enterprise Portal: %s\n", icfg.PortalURL())
	for _, p := range people {
		fmt.Fprintf(w, "  sign in as %-20s password %s   (%s%s)\n", p.Email, p.Password, p.Role, map[bool]string{true: " of " + p.TenantID}[p.TenantID != ""])
	}
}
