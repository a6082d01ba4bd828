package main

import (
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/cmd/portcullis/loadtest"
)

func newNginxLoadCommand() *cobra.Command {
	o := loadtest.NginxOptions{Self: self}
	c := &cobra.Command{
		Use:   "nginx",
		Short: "Measure nginx with auth_request to authz against nginx alone and against an always-200 floor, with wrk",
		Long: `Run three nginx in front of the same upstream, each in its own process: nginx alone,
nginx asking authz (HTTP mode nginx) with examples/nginx/portcullis.conf, and the same
nginx configuration asking an always-200 HTTP server on authz's HTTP server. wrk sends
the same allowed request to each, in rounds whose order rotates; the report gives
throughput and p99 and their ratios, same round. Needs Debian's nginx and wrk.`,
		Example: "  portcullis load nginx --duration 10s --repeat 3",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Duration < time.Second || o.Duration > 10*time.Minute || o.Repeat < 1 || o.Repeat > 20 || o.Connections < 1 || o.Threads < 1 {
				return cli.UsageError{Msg: "--duration must be in [1s, 10m], --repeat in [1, 20], --connections and --threads at least 1", Command: c.CommandPath()}
			}
			for _, bin := range []*string{&o.Nginx, &o.Wrk} {
				path, err := exec.LookPath(*bin)
				if err != nil {
					return cli.UsageError{Msg: *bin + " not found: install Debian's nginx and wrk, or name them with --nginx and --wrk", Command: c.CommandPath()}
				}
				*bin = path
			}
			return loadtest.CompareThroughNginx(c.Context(), o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVar(&o.Nginx, "nginx", "nginx", "nginx binary")
	f.StringVar(&o.Wrk, "wrk", "wrk", "wrk binary")
	f.StringVar(&o.Site, "site", "examples/nginx/portcullis.conf", "the nginx configuration asking authz")
	f.StringVar(&o.Policy, "policy", "examples/policy", "policy for authz")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per nginx and round")
	f.IntVar(&o.Repeat, "repeat", 3, "rounds, each measuring every nginx once, in rotating order")
	f.IntVar(&o.Connections, "connections", 32, "wrk's open connections")
	f.IntVar(&o.Threads, "threads", 2, "wrk's threads")
	return c
}
