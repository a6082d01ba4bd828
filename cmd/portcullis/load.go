package main

import (
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/cmd/portcullis/loadtest"
)

func newLoadCommand() *cobra.Command {
	o := loadtest.CompareOptions{Self: self}
	var mix, alg string
	c := &cobra.Command{
		Use:   "load",
		Short: "Measure authz against an always-OK baseline under the same load",
		Long: `Drive authz's Check over gRPC with a realistic mix of requests (allowed, denied for
every reason, on-behalf-of, blocked users), and the same load against an always-OK
ext_authz server on the same gRPC stack. Each server runs in its own process, so
throughput and CPU per check (read from /proc) compare like with like on a shared
machine; the servers are measured in rounds whose order rotates, and a measurement
during which other processes took more than --max-noise of the machine is taken
again. Report ratios, not absolute figures.`,
		Example: "  portcullis load --mix allow-obo\n" +
			"  portcullis load --mix allow-obo --tokens 100000                 # a full token cache\n" +
			"  portcullis load --mix allow-obo --tokens 1000000 --alg ES256    # every request a new token\n" +
			"  portcullis load --mix allow-obo --http                          # the HTTP mode against an always-200 HTTP floor\n" +
			"  portcullis load --mix allow-obo --flood 16                      # forged tokens beside the hot path\n" +
			"  portcullis load --mix allow-obo --tokens 100000 --profile prof  # CPU profiles, and the GC's share of them\n" +
			"  portcullis load --baseline=false --repeat 1 --duration 3m --sample 15s   # a soak\n" +
			"  portcullis load --mix allow-obo -o json | jq '.servers[1].versus_first.cpu_per_check.median'",
		Args: cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Duration <= 0 || o.Duration > time.Hour || o.Concurrency < 1 || o.Repeat < 1 || o.Repeat > 20 || o.Flood < 0 {
				return cli.UsageError{Msg: "--duration must be in (0, 1h], --concurrency at least 1, --repeat in [1, 20], --flood not negative", Command: c.CommandPath()}
			}
			if err := o.Algorithm.Accept(alg); err != nil || (o.Algorithm != jwa.EdDSA && o.Algorithm != jwa.ES256) {
				return cli.UsageError{Msg: "--alg must be EdDSA or ES256", Command: c.CommandPath()}
			}
			o.Mix = loadtest.Mix(mix)
			if o.ProfileDir != "" {
				if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
					return err
				}
			}
			if f := c.Flag("output"); f != nil && f.Changed {
				if _, err := cli.Output(c); err != nil {
					return err
				}
				o.Structured = func(s loadtest.Summary) error { return cli.Print(c, s) }
			}
			return loadtest.Compare(c.Context(), o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per server and round")
	f.IntVar(&o.Repeat, "repeat", 3, "rounds, each measuring every server once, in rotating order")
	f.Float64Var(&o.MaxNoise, "max-noise", 0.10, "share of the machine other processes may take during a measurement before it is taken again")
	f.StringVar(&alg, "alg", "EdDSA", "token signing algorithm: EdDSA or ES256")
	f.StringVar(&o.ProfileDir, "profile", "", "write a CPU profile of every server's measurements to this directory, and report the share the garbage collector spent marking (profiling skews the CPU ratios: read those from a run without it)")
	f.StringVar(&o.AuthzBinary, "authz-binary", "", "measure this authz binary (go build -o authz ./cmd/authz) instead of this tool's own copy of authz")
	f.BoolVar(&o.Tracing, "tracing", false, "also measure authz with tracing on (no request sampled: the cost of unrecorded spans)")
	f.IntVar(&o.Flood, "flood", 0, "also measure authz while this many workers send forged tokens (valid kid, random signature) as fast as they are answered")
	f.DurationVar(&o.Warmup, "warmup", 3*time.Second, "unmeasured warm-up per server")
	f.IntVar(&o.Concurrency, "concurrency", 16, "concurrent requests in flight")
	f.IntVar(&o.Tokens, "tokens", 1000, "distinct tokens (clients get 10 each)")
	f.IntVar(&o.Users, "users", 1000, "users in the directory")
	f.StringVar(&mix, "mix", string(loadtest.MixRealistic), "request mix: realistic or allow-obo")
	f.StringVar(&o.Policy, "policy", "examples/policy", "policy for authz")
	f.IntVar(&o.CacheMaxTokens, "cache-max-tokens", 100_000, "authz token.cache_max_tokens")
	f.BoolVar(&o.Baseline, "baseline", true, "also measure the always-OK baseline (ratios are to it)")
	f.BoolVar(&o.HTTP, "http", false, "drive authz's HTTP authorization listener (mode forward-auth) instead of its gRPC Check, and an always-200 HTTP server on the same HTTP server as the baseline")
	f.DurationVar(&o.SampleEvery, "sample", 0, "soak: sample authz's memory and goroutines this often (e.g. 10s)")
	f.IntVar(&o.Revocations, "revocations", 0, "also measure authz following a revocation feed with this many entries (e.g. 10000)")
	c.AddCommand(newFollowersCommand(), newNginxLoadCommand())
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
	var listen, metrics string
	var overHTTP bool
	baseline := &cobra.Command{
		Use:    loadtest.BaselineServer,
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			var metricsLn net.Listener
			if metrics != "" {
				if metricsLn, err = net.Listen("tcp", metrics); err != nil {
					return err
				}
			}
			return loadtest.ServeBaseline(c.Context(), ln, metricsLn, overHTTP)
		},
	}
	baseline.Flags().StringVar(&listen, "listen", "127.0.0.1:9101", "gRPC address")
	baseline.Flags().StringVar(&metrics, "metrics", "", "HTTP address of /metrics (Go runtime metrics only); empty: none")
	baseline.Flags().BoolVar(&overHTTP, "http", false, "serve the always-200 HTTP authorization server instead")
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
	return []*cobra.Command{baseline, server, newIssuerServerCommand()}
}
