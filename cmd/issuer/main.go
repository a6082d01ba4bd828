// Command issuer is Portcullis's OAuth2 token server (client credentials grant)
// and the tool that manages its clients and signing keys.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/cmd/internal/configfile"
	"github.com/portcullis/portcullis/tokenissuer"
)

const envPrefix = "PORTCULLIS_ISSUER"

const usage = `usage: issuer COMMAND [flags]

commands:
  serve          run the token server
  clients        manage clients: create, list, show, rotate-secret,
                 revoke-secret, disable, enable, delete, set-scopes
  keys           manage signing keys: list, rotate, encrypt (keys stored
                 in clear by older versions)
  env            list the environment variables that override settings

Every command takes --config FILE (default: $PORTCULLIS_ISSUER_CONFIG).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	cli.Exit("issuer", usage, err)
}

type usageError = cli.UsageError

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{Msg: "a command is required"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "clients":
		return clients(ctx, args[1:], stdout)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr)
	case "env":
		cfg := tokenissuer.DefaultConfig()
		for _, name := range configfile.EnvNames(envPrefix, &cfg) {
			fmt.Fprintln(stdout, name)
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{Msg: fmt.Sprintf("unknown command %q", args[0])}
	}
}

// loadConfig reads the file named by --config (or $PORTCULLIS_ISSUER_CONFIG),
// applies environment overrides and validates the result.
func loadConfig(path string) (tokenissuer.Config, error) {
	cfg := tokenissuer.DefaultConfig()
	return cfg, cli.LoadConfig(path, envPrefix, &cfg)
}

var newLogger = cli.NewLogger

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return usageError{Msg: err.Error()}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	svc, err := tokenissuer.NewService(ctx, cfg, tokenissuer.SystemClock{}, log)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// openAdmin opens the configured store for a management command.
func openAdmin(ctx context.Context, configPath string) (*tokenissuer.Admin, tokenissuer.Store, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	hasher, err := tokenissuer.LoadHasher(cfg.Store)
	if err != nil {
		return nil, nil, err
	}
	store, err := tokenissuer.OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, nil, err
	}
	return tokenissuer.NewAdmin(store, hasher, tokenissuer.SystemClock{}), store, nil
}

// clientView is the JSON the CLI prints for a client: never a secret hash.
type clientView struct {
	*tokenissuer.Client
	TokenLifetime string `json:"token_lifetime,omitempty"`
	// ClientSecret is present only in the output of create and rotate-secret.
	ClientSecret string `json:"client_secret,omitempty"`
	SecretID     string `json:"new_secret_id,omitempty"`
}

func view(c *tokenissuer.Client) clientView {
	v := clientView{Client: c}
	if c.TokenLifetime > 0 {
		v.TokenLifetime = c.TokenLifetime.String()
	}
	return v
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func clients(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{Msg: "clients: a subcommand is required (create, list, show, rotate-secret, revoke-secret, disable, enable, delete, set-scopes)"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("clients "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file (YAML)")
	var (
		id, name, tenant, scopes, secretID string
		lifetime                           time.Duration
	)
	switch sub {
	case "create":
		fs.StringVar(&id, "id", "", "client ID (generated when empty)")
		fs.StringVar(&name, "name", "", "human-readable name")
		fs.StringVar(&tenant, "tenant", "", "tenant the client belongs to")
		fs.StringVar(&scopes, "scopes", "", "space- or comma-separated scopes")
		fs.DurationVar(&lifetime, "token-lifetime", 0, "token lifetime for this client (default: tokens.lifetime)")
	case "revoke-secret":
		fs.StringVar(&secretID, "secret-id", "", "secret to revoke (default: the oldest)")
	case "list", "show", "rotate-secret", "disable", "enable", "delete", "set-scopes":
	default:
		return usageError{Msg: fmt.Sprintf("clients: unknown subcommand %q", sub)}
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{Msg: err.Error()}
	}
	rest := fs.Args()
	needArgs := map[string]int{"create": 0, "list": 0, "set-scopes": 2}
	want, ok := needArgs[sub]
	if !ok {
		want = 1
	}
	if len(rest) != want {
		return usageError{Msg: fmt.Sprintf("clients %s: expected %d argument(s) (CLIENT_ID%s), got %d", sub, want, map[bool]string{true: " SCOPES"}[sub == "set-scopes"], len(rest))}
	}
	admin, store, err := openAdmin(ctx, *configPath)
	if err != nil {
		return err
	}
	defer store.Close()

	switch sub {
	case "create":
		c, secret, err := admin.CreateClient(ctx, tokenissuer.NewClient{ID: id, Name: name, TenantID: tenant, Scopes: splitList(scopes), TokenLifetime: lifetime})
		if err != nil {
			return err
		}
		v := view(c)
		v.ClientSecret = secret
		return printJSON(stdout, v)
	case "list":
		all, err := store.Clients(ctx)
		if err != nil {
			return err
		}
		views := make([]clientView, len(all))
		for i, c := range all {
			views[i] = view(c)
		}
		return printJSON(stdout, views)
	case "show":
		c, err := store.Client(ctx, rest[0])
		if err != nil {
			return fmt.Errorf("client %q: %w", rest[0], err)
		}
		return printJSON(stdout, view(c))
	case "rotate-secret":
		c, added, secret, err := admin.RotateSecret(ctx, rest[0])
		if err != nil {
			return fmt.Errorf("client %q: %w", rest[0], err)
		}
		v := view(c)
		v.ClientSecret, v.SecretID = secret, added.ID
		return printJSON(stdout, v)
	case "revoke-secret":
		c, err := admin.RevokeSecret(ctx, rest[0], secretID)
		if err != nil {
			return fmt.Errorf("client %q: %w", rest[0], err)
		}
		return printJSON(stdout, view(c))
	case "disable", "enable":
		status := tokenissuer.ClientActive
		if sub == "disable" {
			status = tokenissuer.ClientDisabled
		}
		c, err := admin.SetStatus(ctx, rest[0], status)
		if err != nil {
			return fmt.Errorf("client %q: %w", rest[0], err)
		}
		return printJSON(stdout, view(c))
	case "delete":
		if err := store.DeleteClient(ctx, rest[0]); err != nil {
			return fmt.Errorf("client %q: %w", rest[0], err)
		}
		return printJSON(stdout, map[string]string{"deleted": rest[0]})
	case "set-scopes":
		c, err := admin.SetScopes(ctx, rest[0], splitList(rest[1]))
		if err != nil {
			return fmt.Errorf("client %q: %w", rest[0], err)
		}
		return printJSON(stdout, view(c))
	}
	return nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate" && args[0] != "encrypt") {
		return usageError{Msg: "keys: a subcommand is required (list, rotate, encrypt)"}
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{Msg: err.Error()}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	store, err := tokenissuer.OpenStore(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer store.Close()
	log := newLogger(stderr, cfg.LogLevel)
	km, err := tokenissuer.NewKeyManagerFor(cfg, store, tokenissuer.SystemClock{}, log)
	if err != nil {
		return err
	}
	if args[0] == "encrypt" {
		// Before Load: Load refuses keys stored in clear.
		n, err := km.EncryptStoredKeys(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "encrypted %d signing key(s) stored in clear\n", n)
	}
	if err := km.Load(ctx); err != nil {
		return err
	}
	if args[0] == "rotate" {
		key, err := km.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "new key %s is published now and signs from %s on; running issuers pick it up within %s\n",
			key.KID, key.ActiveAt.Format(time.RFC3339), cfg.Keys.ReloadInterval)
	}
	return printJSON(stdout, km.Keys())
}
