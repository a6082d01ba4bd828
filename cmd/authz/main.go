// Command authz is Portcullis's Envoy external authorization server, and the
// tools platform engineers use around it: policy lint/explain/test, check,
// and a local run of the whole system.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/cmd/internal/configfile"
)

const envPrefix = "PORTCULLIS_AUTHZ"

const usage = `usage: authz COMMAND [flags]

commands:
  serve --config FILE               run the ext_authz gRPC server
  check [flags] METHOD PATH         send one CheckRequest to a running authz and print the decision
  policy lint PATH                  check policy files; errors as file:line:col: message
  policy explain PATH METHOD PATH   which route matches and why the others do not
  policy test PATH CASES.yaml       run policy test cases; exit 1 on failure
  local                             run the issuer and authz locally with embedded defaults
  load [flags]                      measure authz against an always-OK baseline under the same load
  env                               list the environment variables that override settings
`

type (
	usageError = cli.UsageError
	exitError  = cli.ExitError
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	cli.Exit("authz", usage, err)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{Msg: "a command is required"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check":
		return check(ctx, args[1:], stdout)
	case "policy":
		return policyCommand(ctx, args[1:], stdout, stderr)
	case "local":
		return local(ctx, args[1:], stdout, stderr)
	case "load":
		return load(ctx, args[1:], stdout, stderr)
	case "load-baseline":
		return loadBaseline(ctx, args[1:])
	case "env":
		cfg := authz.DefaultConfig()
		for _, name := range configfile.EnvNames(envPrefix, &cfg) {
			fmt.Fprintln(stdout, name)
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{Msg: fmt.Sprintf("unknown command %q", args[0])}
}

func loadConfig(path string) (authz.Config, error) {
	cfg := authz.DefaultConfig()
	return cfg, cli.LoadConfig(path, envPrefix, &cfg)
}

var newLogger = cli.NewLogger

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve")
	configPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return usageError{Msg: err.Error()}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	srv, err := authz.NewServer(cfg, authz.SystemClock{}, newLogger(stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
