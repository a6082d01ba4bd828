// Package issuertest runs the real token issuer on loopback for other
// packages' tests: authz and the Envoy end-to-end tests get their tokens
// from it, as clients do in production.
package issuertest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// Issuer is a running issuer with one client.
type Issuer struct {
	Server       *server.Server
	URL          string
	ClientID     string
	ClientSecret string
}

// Options adjust the issuer and its client.
type Options struct {
	Algorithm string
	Audience  string
	TenantID  string
	Scopes    []string
	// Configure, when set, edits the configuration last.
	Configure func(*server.Config)
}

// Start runs an issuer until the test ends.
func Start(t testing.TB, opts Options) *Issuer {
	t.Helper()
	dir := t.TempDir()
	// The issuer URL names the listener, so its port is chosen first and
	// bound again by the server; another process may take it in between,
	// and then a new port is chosen.
	for attempt := 1; ; attempt++ {
		iss, err := start(t, dir, opts)
		if errors.Is(err, syscall.EADDRINUSE) && attempt < 10 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
}

func start(t testing.TB, dir string, opts Options) (*Issuer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.Issuer = addr, "127.0.0.1:0", "http://"+addr
	cfg.Store.SQLitePath = filepath.Join(dir, "issuer.db")
	cfg.Store.SecretHashKeyFile = filepath.Join(dir, "hash.key")
	if opts.Algorithm != "" {
		cfg.Keys.Algorithm = opts.Algorithm
	}
	if opts.Audience != "" {
		cfg.Audience = opts.Audience
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := server.NewServer(context.Background(), cfg, tokenissuer.SystemClock{}, log)
	if err != nil {
		return nil, err
	}
	admin := svc.Admin()
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
	if opts.TenantID != "" {
		if _, err := admin.CreateTenant(ops, tokenissuer.NewTenant{ID: opts.TenantID, Name: opts.TenantID, ScopeCeiling: opts.Scopes}); err != nil {
			t.Fatal(err)
		}
	}
	c, secret, err := admin.CreateClient(ops, tokenissuer.NewClient{ID: "acme-app", TenantID: opts.TenantID, Scopes: opts.Scopes})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &Issuer{Server: svc, URL: cfg.Issuer, ClientID: c.ID, ClientSecret: secret}, nil
}

// Token gets an access token with HTTP Basic client authentication; scope
// may be empty for all of the client's scopes.
func (i *Issuer) Token(t testing.TB, scope string) string {
	t.Helper()
	return TokenFrom(t, i.URL+"/oauth2/token", i.ClientID, i.ClientSecret, scope)
}

// TokenFrom requests a token at tokenURL, which may be behind a proxy.
func TokenFrom(t testing.TB, tokenURL, clientID, secret, scope string) string {
	t.Helper()
	resp := postToken(t, tokenURL, clientID, secret, scope)
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token request to %s: status %d, %v", tokenURL, resp.StatusCode, err)
	}
	return body.AccessToken
}

// TokenStatus is the status of a token request for clientID with secret
// at the issuer at base (client_secret_basic).
func TokenStatus(t testing.TB, base, clientID, secret string) int {
	t.Helper()
	resp := postToken(t, base+"/oauth2/token", clientID, secret, "")
	resp.Body.Close()
	return resp.StatusCode
}

// postToken sends a client credentials request with client_secret_basic
// (RFC 6749 §2.3.1: ID and secret form-urlencoded) and scope, when set.
func postToken(t testing.TB, tokenURL, clientID, secret, scope string) *http.Response {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
