// Command portcullis holds the developer tools around the two servers: a
// local run of the whole system with embedded defaults, and the load tool.
// The servers themselves are cmd/authz (beside every Envoy, linking no issuer
// code) and cmd/issuer.
package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
)

func main() { cli.Main("portcullis", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:   "portcullis",
		Short: "Developer tools for Portcullis: a local run of everything, and the load tool",
		Args:  cobra.ArbitraryArgs,
		RunE:  cli.Group,
	}
	cli.AddOutput(root)
	cli.AddVersion(root)
	root.AddCommand(newLocalCommand(), newLoadCommand())
	root.AddCommand(newLoadServerCommands()...)
	return cli.Execute(ctx, root, args, stdout, stderr)
}
