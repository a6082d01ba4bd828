package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/secretformat"
)

func newSecretsCommand(st *state) *cobra.Command {
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
			s, err := secretArg(c, args[0])
			if err != nil {
				return err
			}
			if err := secretformat.Check(s); err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "not a Portcullis client secret: %v\n", err)
				return cli.ExitError{Code: 1}
			}
			fmt.Fprintln(c.OutOrStdout(), "a well-formed Portcullis client secret (prefix, length and checksum match); if it leaked, revoke it: issuer clients revoke-secret CLIENT_ID --secret-id ID --revoke-tokens")
			return nil
		},
	})
	var foundAt string
	report := clientCommand(st, "report SECRET", "Revoke a leaked secret and every token of its client, and record where it was found",
		"  issuer secrets report - --url https://github.com/acme/app/blob/main/.env --config FILE",
		cli.ExactArgs(1, "SECRET"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			s, err := secretArg(c, args[0])
			if err != nil {
				return nil, err
			}
			revoked, err := admin.RevokeLeakedSecret(c.Context(), tokenissuer.LeakReport{Secret: s, URL: foundAt, Source: "cli"})
			if err != nil {
				return nil, err
			}
			if revoked == nil {
				fmt.Fprintln(c.ErrOrStderr(), "no live secret of this issuer matches (secrets made before the portcullis_ format cannot be found from the secret alone: revoke those with clients revoke-secret)")
				return nil, cli.ExitError{Code: 1}
			}
			fmt.Fprintln(c.ErrOrStderr(), "revoked; every authz following the revocation feed refuses the client's tokens within seconds; rotate its secret")
			return map[string]string{"revoked_secret_of": revoked.ID}, nil
		})
	report.Flags().StringVar(&foundAt, "url", "", "where the secret was found, for the audit trail")
	c.AddCommand(report)
	return c
}

// secretArg is the secret an argument gives: itself, or a line of standard
// input for "-" (out of the shell's history).
func secretArg(c *cobra.Command, arg string) (string, error) {
	if arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	line, err := bufio.NewReader(c.InOrStdin()).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the secret from standard input: %w", err)
	}
	return strings.TrimSpace(line), nil
}
