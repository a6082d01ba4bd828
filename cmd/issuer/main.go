// Command issuer is Portcullis's OAuth2 token server (client credentials grant)
// and the tool that manages its clients and signing keys.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/internal/secretfile"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

const envPrefix = "PORTCULLIS_ISSUER"

type usageError = cli.UsageError

func main() { cli.Main("issuer", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var configPath string
	root := &cobra.Command{
		Use:   "issuer",
		Short: "Portcullis's OAuth2 token server, and the tool that manages its clients and keys",
		Long: `issuer serves the OAuth2 client credentials grant (RFC 6749 §4.4): POST /oauth2/token,
the JWKS and RFC 8414 metadata. The same binary manages clients and signing keys in
the store its configuration names.`,
		Args: cobra.ArbitraryArgs,
		RunE: cli.Group,
		// Every change made from here is audited as the operator's.
		PersistentPreRun: func(c *cobra.Command, _ []string) {
			c.SetContext(tokenissuer.WithActor(c.Context(), tokenissuer.CLIActor()))
		},
	}
	root.PersistentFlags().StringVar(&configPath, "config", "", "configuration file (YAML; default $"+envPrefix+"_CONFIG)")
	st := &state{configPath: &configPath}
	cli.AddOutput(root)
	cli.AddVersion(root)
	root.AddCommand(newServeCommand(st), newClientsCommand(st), newTenantsCommand(st), newAuditCommand(st), newKeysCommand(st), newAccountsCommand(st), newSecretsCommand(st), newClientKeysCommand(), cli.EnvCommand(envPrefix, new(server.DefaultConfig())))
	return cli.Execute(ctx, root, args, stdout, stderr)
}

// state opens what a command needs from the configuration named by --config.
type state struct {
	configPath *string
}

func (s *state) config() (server.Config, error) {
	cfg := server.DefaultConfig()
	return cfg, cli.LoadConfig(cli.ConfigPath(*s.configPath, envPrefix), envPrefix, &cfg)
}

// configForState is the configuration of a command that reads or changes
// the store. Without a configuration file such a command would quietly
// create a store in the current directory, so it refuses unless the
// environment names the store; it always says which store it uses.
func (s *state) configForState(c *cobra.Command) (server.Config, error) {
	if cli.ConfigPath(*s.configPath, envPrefix) == "" && !storeFromEnvironment() {
		return server.Config{}, usageError{Command: c.CommandPath(), Msg: "no configuration: pass --config FILE (or set " + envPrefix +
			"_CONFIG, or the store's settings such as " + envPrefix + "_STORE_SQLITE_PATH); without one this command would use ./issuer.db"}
	}
	cfg, err := s.config()
	if err != nil {
		return cfg, err
	}
	fmt.Fprintf(c.ErrOrStderr(), "store: %s\n", cfg.Store.Describe())
	return cfg, nil
}

func storeFromEnvironment() bool {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, envPrefix+"_STORE_") {
			return true
		}
	}
	return false
}

// openAdmin opens the configured store for a management command.
func (s *state) openAdmin(c *cobra.Command) (*tokenissuer.Admin, tokenissuer.Store, error) {
	svc, _, err := s.openServices(c)
	if err != nil {
		return nil, nil, err
	}
	return svc.Admin, svc.Store, nil
}

// openServices opens the configured store and the service layer over it,
// as the server does.
func (s *state) openServices(c *cobra.Command) (*server.Services, server.Config, error) {
	cfg, err := s.configForState(c)
	if err != nil {
		return nil, cfg, err
	}
	svc, err := server.OpenServices(c.Context(), cfg, tokenissuer.SystemClock{}, cli.NewLogger(c.ErrOrStderr(), cfg.LogLevel))
	return svc, cfg, err
}

func newServeCommand(st *state) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the token server",
		Long: `Serve POST /oauth2/token, GET /.well-known/jwks.json, GET /.well-known/oauth-authorization-server,
GET /healthz and GET /metrics on listen. SIGTERM drains in-flight requests.`,
		Example: "  issuer serve --config examples/issuer.yaml",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			// Never a store made silently in the current directory.
			cfg, err := st.configForState(c)
			if err != nil {
				return err
			}
			log := cli.NewLogger(c.ErrOrStderr(), cfg.LogLevel)
			svc, err := server.NewServer(c.Context(), cfg, tokenissuer.SystemClock{}, log)
			if err != nil {
				return err
			}
			return svc.Run(c.Context())
		},
	}
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

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// clientCommand is a clients subcommand that acts on the store.
func clientCommand(st *state, use, short, example string, args cobra.PositionalArgs,
	do func(c *cobra.Command, admin *tokenissuer.Admin, store tokenissuer.Store, args []string) (any, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Example: example, Args: args,
		RunE: func(c *cobra.Command, args []string) error {
			admin, store, err := st.openAdmin(c)
			if err != nil {
				return err
			}
			defer store.Close()
			out, err := do(c, admin, store, args)
			if err != nil {
				return err
			}
			return cli.Print(c, out)
		},
	}
}

func newClientsCommand(st *state) *cobra.Command {
	c := &cobra.Command{
		Use:   "clients",
		Short: "Manage OAuth2 clients: create, list, show, rotate and revoke secrets, disable, enable, delete, set scopes",
		Long: `Manage the clients in the store the configuration names. Output: -o json, yaml
or table (a table at a terminal, JSON otherwise). A secret
is generated by the issuer (256 random bits), printed once by create and
rotate-secret, and stored only as a keyed hash.`,
		Args: cobra.ArbitraryArgs,
		RunE: cli.Group,
	}
	var nc tokenissuer.NewClient
	var scopes, secretFile, jwksFile string
	var noScopes, existsOK bool
	create := clientCommand(st, "create", "Create a client with one generated secret (printed once)",
		`  issuer clients create --config FILE --id acme-app --name "Acme billing" --tenant acme --scopes "accounts:read accounts:write"`,
		cli.NoArgs, func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, _ []string) (any, error) {
			nc.Scopes = splitList(scopes)
			if jwksFile != "" {
				raw, err := os.ReadFile(jwksFile)
				if err != nil {
					return nil, fmt.Errorf("--jwks-file: %w", err)
				}
				nc.Keys.JWKS = raw
			}
			if len(nc.Scopes) == 0 && !noScopes {
				return nil, usageError{Command: c.CommandPath(), Msg: "a client without scopes can call no protected route: give --scopes, or --no-scopes if that is what you want"}
			}
			if secretFile != "" {
				if _, err := os.Stat(secretFile); err == nil {
					if !existsOK {
						return nil, fmt.Errorf("--secret-file %s exists; a secret is never replaced (remove it, or pass --exists-ok for a setup step that may run again)", secretFile)
					}
					existing, err := admin.Client(c.Context(), nc.ID)
					if err != nil {
						return nil, fmt.Errorf("--secret-file %s exists but client %q cannot be read: %w", secretFile, nc.ID, err)
					}
					return view(existing), nil
				}
			}
			created, secret, err := admin.CreateClient(c.Context(), nc)
			if err != nil {
				return nil, err
			}
			v := view(created)
			if nc.Keys.Only {
				return v, nil // no secret to hand out
			}
			if secretFile == "" {
				v.ClientSecret = secret
				return v, nil
			}
			if err := secretfile.Create(secretFile, []byte(secret+"\n")); err != nil {
				// The client exists and nobody has its secret: remove it, so that
				// running the step again can succeed.
				_ = admin.DeleteClient(c.Context(), created.ID)
				return nil, fmt.Errorf("--secret-file: %w", err)
			}
			return v, nil
		})
	f := create.Flags()
	f.StringVar(&secretFile, "secret-file", "", "write the secret to this new owner-only file instead of printing it (authz's revocation.client_secret_file)")
	f.BoolVar(&existsOK, "exists-ok", false, "with --secret-file: when the file exists already, leave the client as it is and succeed (a setup step run again)")
	f.StringVar(&nc.ID, "id", "", "client ID (generated when empty)")
	f.StringVar(&nc.Name, "name", "", "human-readable name")
	f.StringVar(&nc.TenantID, "tenant", "", "tenant the client belongs to")
	f.StringVar(&scopes, "scopes", "", "space- or comma-separated scopes")
	f.BoolVar(&noScopes, "no-scopes", false, "create the client without scopes")
	f.DurationVar(&nc.TokenLifetime, "token-lifetime", 0, "token lifetime for this client, at most tokens.max_lifetime (default: tokens.lifetime)")
	f.StringVar(&jwksFile, "jwks-file", "", "the client's public keys (a JWKS file) for private_key_jwt")
	f.StringVar(&nc.Keys.JWKSURI, "jwks-uri", "", "where the client publishes its public keys (https) for private_key_jwt")
	f.BoolVar(&nc.Keys.Only, "private-key-jwt-only", false, "the client authenticates with its keys only: it gets no secret")

	var keys tokenissuer.ClientKeys
	var keysFile string
	setKeys := clientCommand(st, "set-keys CLIENT_ID", "Register the client's public keys for private_key_jwt (or, with neither flag, remove them)",
		"  issuer clients set-keys acme-app --jwks-file acme-app.jwks.json --private-key-jwt-only --config FILE\n  issuer clients set-keys acme-app --jwks-uri https://acme.example/.well-known/jwks.json --config FILE",
		cli.ExactArgs(1, "CLIENT_ID"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			if keysFile != "" {
				raw, err := os.ReadFile(keysFile)
				if err != nil {
					return nil, fmt.Errorf("--jwks-file: %w", err)
				}
				keys.JWKS = raw
			}
			cl, err := admin.SetClientKeys(c.Context(), args[0], keys)
			return viewOrErr(args[0], cl, err)
		})
	setKeys.Flags().StringVar(&keysFile, "jwks-file", "", "a JWKS file of the client's public keys")
	setKeys.Flags().StringVar(&keys.JWKSURI, "jwks-uri", "", "where the client publishes its public keys (https)")
	setKeys.Flags().BoolVar(&keys.Only, "private-key-jwt-only", false, "remove the client's secrets: its keys become its only way to authenticate")

	var secretID string
	var withTokens bool
	revoke := clientCommand(st, "revoke-secret CLIENT_ID", "Revoke a secret (the oldest, or --secret-id)",
		"  issuer clients revoke-secret acme-app --config FILE\n  issuer clients revoke-secret acme-app --secret-id Xy12 --revoke-tokens --config FILE   # a leaked secret",
		cli.ExactArgs(1, "CLIENT_ID"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			cl, err := admin.RevokeSecret(c.Context(), args[0], secretID)
			if err == nil && withTokens {
				err = admin.RevokeClientTokens(c.Context(), args[0])
			}
			return viewOrErr(args[0], cl, err)
		})
	revoke.Flags().StringVar(&secretID, "secret-id", "", "secret to revoke (default: the oldest)")
	revoke.Flags().BoolVar(&withTokens, "revoke-tokens", false, "also revoke every token the client holds (a leaked secret)")
	revokeTokens := clientCommand(st, "revoke-tokens CLIENT_ID", "Revoke every token the client holds now; new ones work",
		"  issuer clients revoke-tokens acme-app --config FILE", cli.ExactArgs(1, "CLIENT_ID"),
		func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			if err := admin.RevokeClientTokens(c.Context(), args[0]); err != nil {
				return nil, fmt.Errorf("client %q: %w", args[0], err)
			}
			fmt.Fprintln(c.ErrOrStderr(), "every authz following the revocation feed refuses the client's current tokens within seconds")
			return map[string]string{"revoked_tokens_of": args[0]}, nil
		})

	setStatus := func(status tokenissuer.ClientStatus) func(*cobra.Command, *tokenissuer.Admin, tokenissuer.Store, []string) (any, error) {
		return func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			cl, err := admin.SetStatus(c.Context(), args[0], status)
			return viewOrErr(args[0], cl, err)
		}
	}
	list := clientCommand(st, "list", "List every client, or a tenant's with --tenant", "  issuer clients list --config FILE\n  issuer clients list --tenant acme --config FILE", cli.NoArgs,
		func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, _ []string) (any, error) {
			tenant, _ := c.Flags().GetString("tenant")
			all, err := admin.Clients(c.Context(), tokenissuer.ClientQuery{TenantID: tenant})
			if err != nil {
				return nil, err
			}
			views := make([]clientView, len(all))
			for i, cl := range all {
				views[i] = view(cl)
			}
			return views, nil
		})
	list.Flags().String("tenant", "", "list only this tenant's clients")
	c.AddCommand(create, revoke, revokeTokens, setKeys,
		list,
		clientCommand(st, "show CLIENT_ID", "Show a client (never its secrets)", "  issuer clients show acme-app --config FILE", cli.ExactArgs(1, "CLIENT_ID"),
			func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				cl, err := admin.Client(c.Context(), args[0])
				return viewOrErr(args[0], cl, err)
			}),
		clientCommand(st, "rotate-secret CLIENT_ID", "Add a second secret (printed once); both work until one is revoked",
			"  issuer clients rotate-secret acme-app --config FILE", cli.ExactArgs(1, "CLIENT_ID"),
			func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				cl, added, secret, err := admin.RotateSecret(c.Context(), args[0])
				if err != nil {
					return nil, fmt.Errorf("client %q: %w", args[0], err)
				}
				v := view(cl)
				v.ClientSecret, v.SecretID = secret, added.ID
				return v, nil
			}),
		clientCommand(st, "disable CLIENT_ID", "Disable a client: the token endpoint refuses it", "  issuer clients disable acme-app --config FILE",
			cli.ExactArgs(1, "CLIENT_ID"), setStatus(tokenissuer.ClientDisabled)),
		clientCommand(st, "enable CLIENT_ID", "Enable a disabled client", "  issuer clients enable acme-app --config FILE",
			cli.ExactArgs(1, "CLIENT_ID"), setStatus(tokenissuer.ClientActive)),
		clientCommand(st, "delete CLIENT_ID", "Delete a client and its secrets", "  issuer clients delete acme-app --config FILE",
			cli.ExactArgs(1, "CLIENT_ID"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				if err := admin.DeleteClient(c.Context(), args[0]); err != nil {
					return nil, fmt.Errorf("client %q: %w", args[0], err)
				}
				return map[string]string{"deleted": args[0]}, nil
			}),
		clientCommand(st, "set-scopes CLIENT_ID SCOPES", "Replace a client's scopes", `  issuer clients set-scopes acme-app "accounts:read cards:read" --config FILE`,
			cli.ExactArgs(2, "CLIENT_ID SCOPES"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				cl, err := admin.SetScopes(c.Context(), args[0], splitList(args[1]))
				return viewOrErr(args[0], cl, err)
			}),
	)
	return c
}

func viewOrErr(id string, c *tokenissuer.Client, err error) (any, error) {
	if err != nil {
		return nil, fmt.Errorf("client %q: %w", id, err)
	}
	return view(c), nil
}

func newKeysCommand(st *state) *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "Manage signing keys: list, rotate, encrypt",
		Args:  cobra.ArbitraryArgs,
		RunE:  cli.Group,
	}
	// Changes to keys go through Admin, so they are audited.
	keyCommand := func(use, short, long, example string, before func(*cobra.Command, *keys.Manager, *tokenissuer.Admin) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Long: long, Example: example, Args: cli.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				svc, cfg, err := st.openServices(c)
				if err != nil {
					return err
				}
				defer svc.Close()
				km, admin := svc.Keys, svc.Admin
				if before != nil {
					if err := before(c, km, admin); err != nil {
						return err
					}
				}
				if err := km.Load(c.Context()); err != nil {
					return err
				}
				if use == "rotate" {
					key, err := admin.RotateSigningKey(c.Context(), km)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.ErrOrStderr(), "new key %s is published now and signs from %s on; running issuers pick it up within %s\n",
						key.KID, key.ActiveAt.Format(time.RFC3339), cfg.Keys.ReloadInterval)
				}
				return cli.Print(c, km.Keys())
			},
		}
	}
	c.AddCommand(
		keyCommand("list", "List the published keys and which one signs", "", "  issuer keys list --config FILE", nil),
		keyCommand("rotate", "Publish a new key now; it signs after keys.publish_delay",
			`The new key is published in the JWKS at once and signs only after keys.publish_delay,
so every verifier has it first. Older keys stay published until every token they
signed has expired.`, "  issuer keys rotate --config FILE", nil),
		keyCommand("encrypt", "Encrypt signing keys an older version stored in clear",
			`Seal, under the key-encryption key, every signing key the store holds in clear.
An issuer with a key-encryption key refuses keys in clear, since whoever can write
the database could have planted them; run this once after upgrading.`, "  issuer keys encrypt --config FILE",
			func(c *cobra.Command, km *keys.Manager, admin *tokenissuer.Admin) error {
				n, err := admin.EncryptStoredKeys(c.Context(), km)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.ErrOrStderr(), "encrypted %d signing key(s) stored in clear\n", n)
				return nil
			}),
	)
	return c
}
