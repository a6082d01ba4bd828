package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	httppprof "net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/cmd/portcullis/loadtest"
	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// issuerServer is the hidden command that runs an issuer configured from
// the environment, for the follower run.
const issuerServer = "load-issuer"

// profileEnv names the file the follower run's issuer writes a CPU profile
// of its whole run to.
const profileEnv = "PORTCULLIS_LOAD_ISSUER_CPU_PROFILE"

// pprofEnv names a loopback address where the follower run's issuer serves
// net/http/pprof, for a look at its memory while the followers are held.
const pprofEnv = "PORTCULLIS_LOAD_ISSUER_PPROF"

func newFollowersCommand() *cobra.Command {
	o := loadtest.FollowerOptions{}
	var tokens int
	var profile string
	c := &cobra.Command{
		Use:   "followers",
		Short: "Measure one issuer serving its revocation feed to many followers",
		Long: `Start an issuer (SQLite, in its own process), hold --followers long polls of its
revocation feed, each on its own connection as a fleet of sidecars would, then revoke
--revocations times through RFC 7009 and report the issuer's CPU per revocation, how
long each revocation took to reach every follower, the issuer's idle CPU with every
poll held (before anything is revoked, and after), and its resident memory.`,
		Example: "  portcullis load followers --followers 10000 --revocations 10",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Followers < 1 || o.Followers > 50_000 || o.Revocations < 1 || o.Revocations > 100 || tokens < 1 {
				return cli.UsageError{Msg: "--followers must be in [1, 50000], --revocations in [1, 100], --tokens at least 1", Command: c.CommandPath()}
			}
			return followers(c.Context(), o, tokens, profile, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.IntVar(&o.Followers, "followers", 1000, "followers, each on its own connection")
	f.IntVar(&o.Revocations, "revocations", 5, "revocations to time, one at a time")
	f.IntVar(&tokens, "tokens", 100, "distinct follower access tokens, shared round-robin")
	f.DurationVar(&o.Idle, "idle", 10*time.Second, "how long idle CPU is measured, before and after the revocations")
	f.IntVar(&o.Wait, "wait", 25, "each long poll's wait, in seconds (authz's revocation.wait)")
	f.StringVar(&profile, "profile", "", "write a CPU profile of the issuer's whole run to this file")
	return c
}

func followers(ctx context.Context, o loadtest.FollowerOptions, tokens int, profile string, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "portcullis-followers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := server.DefaultConfig()
	cfg.Store.SQLitePath = filepath.Join(dir, "issuer.db")
	cfg.Store.SecretHashKeyFile = filepath.Join(dir, "hash.key")
	followerSecret, victimSecret, err := followerClients(ctx, cfg)
	if err != nil {
		return err
	}
	listen, err := loadtest.FreePort()
	if err != nil {
		return err
	}
	admin, err := loadtest.FreePort()
	if err != nil {
		return err
	}
	base := "http://" + listen
	env := []string{"PORTCULLIS_ISSUER_LISTEN=" + listen, "PORTCULLIS_ISSUER_ADMIN_LISTEN=" + admin, "PORTCULLIS_ISSUER_ISSUER=" + base,
		"PORTCULLIS_ISSUER_STORE_SQLITE_PATH=" + cfg.Store.SQLitePath, "PORTCULLIS_ISSUER_STORE_SECRET_HASH_KEY_FILE=" + cfg.Store.SecretHashKeyFile,
		"PORTCULLIS_ISSUER_LOG_LEVEL=warn",
		// The run revokes and mints faster than one client may by default.
		"PORTCULLIS_ISSUER_RATE_LIMIT_TOKENS_PER_MINUTE=0", "PORTCULLIS_ISSUER_RATE_LIMIT_REVOCATIONS_PER_MINUTE=0"}
	if addr := os.Getenv(pprofEnv); addr != "" {
		env = append(env, pprofEnv+"="+addr)
	}
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return err
		}
		env = append(env, profileEnv+"="+abs)
	}
	issuer, err := loadtest.StartProcess(self(issuerServer), env, base+"/healthz", stderr)
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	defer issuer.Stop()
	for range tokens {
		tok, err := clientToken(ctx, base, "authz", followerSecret)
		if err != nil {
			return err
		}
		o.Tokens = append(o.Tokens, tok)
	}
	o.FeedURL = base + revocation.FeedPath
	o.MetricsURL = base + "/metrics"
	o.IssuerPID = issuer.PID()
	o.Revoke = func(ctx context.Context) error {
		tok, err := clientToken(ctx, base, "victim", victimSecret)
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("victim", victimSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("revoke: %s", resp.Status)
		}
		return nil
	}
	report, err := loadtest.RunFollowers(ctx, o, stderr)
	if err != nil {
		return err
	}
	report.Print(stdout)
	return nil
}

// followerClients creates the followers' client and the client whose
// tokens are revoked, in the store the issuer will open.
func followerClients(ctx context.Context, cfg server.Config) (follower, victim string, err error) {
	svc, err := server.OpenServices(ctx, cfg, tokenissuer.SystemClock{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", "", err
	}
	defer svc.Close()
	admin := svc.Admin
	ctx = tokenissuer.WithActor(ctx, tokenissuer.Actor{ID: "cli:load", Operator: true})
	if _, follower, err = admin.CreateClient(ctx, tokenissuer.NewClient{ID: "authz", Scopes: []string{revocation.ReadScope}}); err != nil {
		return "", "", err
	}
	if _, victim, err = admin.CreateClient(ctx, tokenissuer.NewClient{ID: "victim", Scopes: []string{"a"}}); err != nil {
		return "", "", err
	}
	return follower, victim, nil
}

func clientToken(ctx context.Context, base, id, secret string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token for %s: %s %v", id, resp.Status, err)
	}
	return body.AccessToken, nil
}

// newIssuerServerCommand runs an issuer configured from the environment.
func newIssuerServerCommand() *cobra.Command {
	return &cobra.Command{
		Use:    issuerServer,
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg := server.DefaultConfig()
			if err := cli.LoadConfig("", "PORTCULLIS_ISSUER", &cfg); err != nil {
				return err
			}
			srv, err := server.NewServer(c.Context(), cfg, tokenissuer.SystemClock{}, cli.NewLogger(c.ErrOrStderr(), cfg.LogLevel))
			if err != nil {
				return err
			}
			if path := os.Getenv(profileEnv); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if addr := os.Getenv(pprofEnv); addr != "" {
				// Heap and goroutine profiles of the run's issuer, on loopback.
				mux := http.NewServeMux()
				mux.HandleFunc("/debug/pprof/", httppprof.Index)
				mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
				go http.ListenAndServe(addr, mux)
			}
			return srv.Run(c.Context())
		},
	}
}
