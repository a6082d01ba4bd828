package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/tokenissuer/secretformat"
)

func newSecretsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "secrets",
		Short: "Recognise Portcullis client secrets, offline",
		Args:  cobra.ArbitraryArgs,
		RunE:  cli.Group,
	}
	c.AddCommand(&cobra.Command{
		Use:   "check SECRET",
		Short: "Say whether SECRET is a well-formed Portcullis client secret (exit 0) or not (exit 1), contacting nothing",
		Long: `Check reads a string's prefix, length and checksum: it says whether a string found
somewhere (a log, a repository, a ticket) is a Portcullis client secret, without
contacting any issuer and without saying whether the secret exists or works.
Pass - to read the string from standard input, so it stays out of the shell's history.`,
		Example: "  issuer secrets check portcullis_...\n  pbpaste | issuer secrets check -",
		Args:    cli.ExactArgs(1, "SECRET"),
		RunE: func(c *cobra.Command, args []string) error {
			s := args[0]
			if s == "-" {
				line, err := bufio.NewReader(c.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("reading the secret from standard input: %w", err)
				}
				s = line
			}
			s = strings.TrimSpace(s)
			if err := secretformat.Check(s); err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "not a Portcullis client secret: %v\n", err)
				return cli.ExitError{Code: 1}
			}
			fmt.Fprintln(c.OutOrStdout(), "a well-formed Portcullis client secret (prefix, length and checksum match); if it leaked, revoke it: issuer clients revoke-secret CLIENT_ID --secret-id ID --revoke-tokens")
			return nil
		},
	})
	return c
}
