// Command authz is Portcullis's Envoy external authorization server, and the
// tools platform engineers use around it: check a request, and lint, explain
// and test route policy. It runs beside every Envoy, so it links no issuer
// code: the developer tools (a local run of everything, the load tool) are
// in cmd/portcullis.
package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/cmd/internal/cli"
)

const envPrefix = "PORTCULLIS_AUTHZ"

type (
	usageError = cli.UsageError
	exitError  = cli.ExitError
)

func main() { cli.Main("authz", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Execute(ctx, newRootCommand(), args, stdout, stderr)
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "authz",
		Short: "Portcullis's Envoy external authorization server and policy tools",
		Long: `authz answers Envoy's ext_authz Check for every request: it verifies the bearer
token, matches the route policy, checks scopes and the on-behalf-of user, and
allows (with trusted headers for the upstream) or denies with a precise JSON body.`,
		Args: cobra.ArbitraryArgs,
		RunE: cli.Group,
	}
	cli.AddOutput(root)
	cli.AddVersion(root)
	root.AddCommand(newServeCommand(), newCheckCommand(), newPolicyCommand(), cli.EnvCommand(envPrefix, new(authz.DefaultConfig())))
	return root
}

func newServeCommand() *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the ext_authz gRPC server",
		Long: `Run the ext_authz gRPC server (envoy.service.auth.v3.Authorization, gRPC health
and reflection on listen) and the admin HTTP server (/healthz, /readyz, /metrics
on admin_listen). SIGTERM reports NOT_SERVING, finishes in-flight checks and exits.`,
		Example: "  authz serve --config examples/authz.yaml\n  PORTCULLIS_AUTHZ_CONFIG=/etc/portcullis/authz.yaml authz serve",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg := authz.DefaultConfig()
			if err := cli.LoadConfig(cli.ConfigPath(configPath, envPrefix), envPrefix, &cfg); err != nil {
				return err
			}
			srv, err := authz.NewServer(cfg, authz.SystemClock{}, cli.NewLogger(c.ErrOrStderr(), cfg.LogLevel))
			if err != nil {
				return err
			}
			return srv.Run(c.Context())
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "configuration file (YAML; default $"+envPrefix+"_CONFIG, else built-in defaults)")
	return c
}
