package main

import (
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/internal/loadtest"
)

func newLoadCommand() *cobra.Command {
	o := loadtest.CompareOptions{Self: self}
	var mix string
	c := &cobra.Command{
		Use:   "load",
		Short: "Measure authz against an always-OK baseline under the same load",
		Long: `Drive authz's Check over gRPC with a realistic mix of requests (allowed, denied for
every reason, on-behalf-of, blocked users), and the same load against an always-OK
ext_authz server on the same gRPC stack first. Each server runs in its own process,
so throughput and CPU per check (read from /proc) compare like with like on a
shared machine: report ratios, not absolute figures.`,
		Example: "  portcullis load\n  portcullis load --duration 1m --mix allow-obo --concurrency 32\n  portcullis load --baseline=false --duration 3m --sample 15s   # a soak",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Duration <= 0 || o.Duration > time.Hour || o.Concurrency < 1 {
				return cli.UsageError{Msg: "--duration must be in (0, 1h] and --concurrency at least 1", Command: c.CommandPath()}
			}
			o.Mix = loadtest.Mix(mix)
			return loadtest.Compare(c.Context(), o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.DurationVar(&o.Duration, "duration", 20*time.Second, "measured time per server")
	f.DurationVar(&o.Warmup, "warmup", 3*time.Second, "unmeasured warm-up per server")
	f.IntVar(&o.Concurrency, "concurrency", 16, "concurrent requests in flight")
	f.IntVar(&o.Tokens, "tokens", 1000, "distinct tokens (clients get 10 each)")
	f.IntVar(&o.Users, "users", 1000, "users in the directory")
	f.StringVar(&mix, "mix", string(loadtest.MixRealistic), "request mix: realistic or allow-obo")
	f.StringVar(&o.Policy, "policy", "examples/policy", "policy for authz")
	f.IntVar(&o.CacheMaxTokens, "cache-max-tokens", 100_000, "authz token.cache_max_tokens")
	f.BoolVar(&o.Baseline, "baseline", true, "also measure the always-OK baseline")
	f.DurationVar(&o.SampleEvery, "sample", 0, "soak: sample authz's memory and goroutines this often (e.g. 10s)")
	f.IntVar(&o.Revocations, "revocations", 0, "also measure authz following a revocation feed with this many entries (e.g. 10000)")
	return c
}

// self runs this binary again with args, for the load tool's servers.
func self(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, args...)
}

// newLoadServerCommands are the hidden commands the load tool runs in their
// own processes: the always-OK baseline, and authz configured from the
// environment.
func newLoadServerCommands() []*cobra.Command {
	var listen string
	baseline := &cobra.Command{
		Use:    loadtest.BaselineServer,
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			return loadtest.ServeBaseline(c.Context(), ln)
		},
	}
	baseline.Flags().StringVar(&listen, "listen", "127.0.0.1:9101", "gRPC address")
	server := &cobra.Command{
		Use:    loadtest.AuthzServer,
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg := authz.DefaultConfig()
			if err := cli.LoadConfig("", "PORTCULLIS_AUTHZ", &cfg); err != nil {
				return err
			}
			srv, err := authz.NewServer(cfg, authz.SystemClock{}, cli.NewLogger(c.ErrOrStderr(), cfg.LogLevel))
			if err != nil {
				return err
			}
			return srv.Run(c.Context())
		},
	}
	return []*cobra.Command{baseline, server}
}
