package main

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// accountView is what the CLI prints of an account: never a password hash,
// second factor or recovery code.
type accountView struct {
	ID           string                    `json:"id"`
	Email        string                    `json:"email"`
	Name         string                    `json:"name"`
	Role         tokenissuer.Role          `json:"role"`
	TenantID     string                    `json:"tenant_id,omitempty"`
	Status       tokenissuer.AccountStatus `json:"status"`
	SecondFactor bool                      `json:"second_factor"`
	CreatedAt    time.Time                 `json:"created_at"`
}

func viewAccount(a *tokenissuer.Account) accountView {
	return accountView{ID: a.ID, Email: a.Email, Name: a.Name, Role: a.Role, TenantID: a.TenantID, Status: a.Status, SecondFactor: a.SecondFactor(), CreatedAt: a.CreatedAt}
}

// openAccounts opens the account service on the configured store.
func (s *state) openAccounts(c *cobra.Command) (*tokenissuer.Accounts, server.Config, func(), error) {
	svc, cfg, err := s.openServices(c)
	if err != nil {
		return nil, cfg, nil, err
	}
	return svc.Accounts, cfg, func() { svc.Close() }, nil
}

// accountCommand is a command on the account service that prints its
// result as JSON.
func accountCommand(st *state, use, short, example string, args cobra.PositionalArgs,
	do func(c *cobra.Command, accounts *tokenissuer.Accounts, cfg server.Config, args []string) (any, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Example: example, Args: args,
		RunE: func(c *cobra.Command, args []string) error {
			accounts, cfg, closeStore, err := st.openAccounts(c)
			if err != nil {
				return err
			}
			defer closeStore()
			out, err := do(c, accounts, cfg, args)
			if err != nil {
				return err
			}
			return cli.Print(c, out)
		},
	}
}

func newAccountsCommand(st *state) *cobra.Command {
	c := &cobra.Command{
		Use:   "accounts",
		Short: "Manage the people who sign in to the portal: create, list, disable, enable, delete",
		Long: `Portal accounts are people: platform-admin (every tenant, tenants and keys),
tenant-admin (one tenant's clients and colleagues) or tenant-viewer (read only).
Create the first ones here; tenant admins then invite colleagues from the portal.
Every change is audited.`,
		Args: cobra.ArbitraryArgs,
		RunE: cli.Group,
	}
	var na tokenissuer.NewAccount
	var role string
	var passwordStdin bool
	create := accountCommand(st, "create", "Create an account, or an invitation link that lets the person set their password",
		`  issuer accounts create --email ops@example.com --role platform-admin --config FILE
  issuer accounts create --email ada@acme.example --name "Ada" --role tenant-admin --tenant acme --config FILE
  printf '%s\n' "$PASSWORD" | issuer accounts create --email ops@example.com --role platform-admin --password-stdin --config FILE`,
		cli.NoArgs, func(c *cobra.Command, accounts *tokenissuer.Accounts, cfg server.Config, _ []string) (any, error) {
			if na.Email == "" || role == "" {
				return nil, usageError{Command: c.CommandPath(), Msg: "--email and --role are required"}
			}
			na.Role = tokenissuer.Role(role)
			if !passwordStdin {
				token, inv, err := accounts.Invite(c.Context(), nil, tokenissuer.NewInvite{Email: na.Email, Name: na.Name, Role: na.Role, TenantID: na.TenantID})
				if err != nil {
					return nil, err
				}
				fmt.Fprintf(c.ErrOrStderr(), "send this link to %s: it lets them set their password, once, until %s\n", inv.Email, inv.ExpiresAt.Format(time.RFC3339))
				return struct {
					Email         string    `json:"email"`
					Role          string    `json:"role"`
					TenantID      string    `json:"tenant_id,omitempty"`
					InvitationURL string    `json:"invitation_url"`
					ExpiresAt     time.Time `json:"expires_at"`
				}{inv.Email, string(inv.Role), inv.TenantID, cfg.PortalURL() + "invitation/" + token, inv.ExpiresAt}, nil
			}
			line, err := bufio.NewReader(c.InOrStdin()).ReadString('\n')
			if err != nil && line == "" {
				return nil, usageError{Command: c.CommandPath(), Msg: "--password-stdin: no password on standard input"}
			}
			na.Password = strings.TrimRight(line, "\r\n")
			a, err := accounts.CreateAccount(c.Context(), na)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(c.ErrOrStderr(), "%s can sign in at %s\n", a.Email, cfg.PortalURL())
			return viewAccount(a), nil
		})
	create.Flags().StringVar(&na.Email, "email", "", "the person's email, which they sign in with")
	create.Flags().StringVar(&na.Name, "name", "", "their name")
	create.Flags().StringVar(&role, "role", "", "platform-admin, tenant-admin or tenant-viewer")
	create.Flags().StringVar(&na.TenantID, "tenant", "", "their tenant (tenant roles)")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input instead of creating an invitation")

	// byEmail runs a change on the account with the email given.
	byEmail := func(change func(c *cobra.Command, accounts *tokenissuer.Accounts, a *tokenissuer.Account) (*tokenissuer.Account, error)) func(*cobra.Command, *tokenissuer.Accounts, server.Config, []string) (any, error) {
		return func(c *cobra.Command, accounts *tokenissuer.Accounts, _ server.Config, args []string) (any, error) {
			a, err := accounts.FindAccount(c.Context(), args[0])
			if err != nil {
				return nil, fmt.Errorf("account %q: %w", args[0], err)
			}
			if a, err = change(c, accounts, a); err != nil {
				return nil, err
			}
			if a == nil {
				return map[string]string{"deleted": args[0]}, nil
			}
			return viewAccount(a), nil
		}
	}
	status := func(s tokenissuer.AccountStatus) func(*cobra.Command, *tokenissuer.Accounts, server.Config, []string) (any, error) {
		return byEmail(func(c *cobra.Command, accounts *tokenissuer.Accounts, a *tokenissuer.Account) (*tokenissuer.Account, error) {
			return accounts.SetAccountStatus(c.Context(), nil, a.ID, s)
		})
	}
	c.AddCommand(create,
		accountCommand(st, "list", "List every account", "  issuer accounts list --config FILE", cli.NoArgs,
			func(c *cobra.Command, accounts *tokenissuer.Accounts, _ server.Config, _ []string) (any, error) {
				list, err := accounts.Accounts(c.Context(), nil)
				if err != nil {
					return nil, err
				}
				views := make([]accountView, len(list))
				for i, a := range list {
					views[i] = viewAccount(a)
				}
				return views, nil
			}),
		accountCommand(st, "disable EMAIL", "Disable an account and end its sessions", "  issuer accounts disable ada@acme.example --config FILE",
			cli.ExactArgs(1, "EMAIL"), status(tokenissuer.AccountDisabled)),
		accountCommand(st, "enable EMAIL", "Enable a disabled account", "  issuer accounts enable ada@acme.example --config FILE",
			cli.ExactArgs(1, "EMAIL"), status(tokenissuer.AccountActive)),
		accountCommand(st, "remove-second-factor EMAIL", "Remove an account's TOTP second factor (a lost phone)",
			"  issuer accounts remove-second-factor ada@acme.example --config FILE", cli.ExactArgs(1, "EMAIL"),
			byEmail(func(c *cobra.Command, accounts *tokenissuer.Accounts, a *tokenissuer.Account) (*tokenissuer.Account, error) {
				return accounts.RemoveSecondFactor(c.Context(), nil, a.ID, "", "")
			})),
		accountCommand(st, "clear-sign-in-failures EMAIL", "Forget an account's failed sign-ins, so its sign-ins are no longer slowed",
			"  issuer accounts clear-sign-in-failures ada@acme.example --config FILE", cli.ExactArgs(1, "EMAIL"),
			byEmail(func(c *cobra.Command, accounts *tokenissuer.Accounts, a *tokenissuer.Account) (*tokenissuer.Account, error) {
				return a, accounts.ClearSignInFailures(c.Context(), nil, a.ID)
			})),
		accountCommand(st, "delete EMAIL", "Delete an account and its sessions", "  issuer accounts delete ada@acme.example --config FILE",
			cli.ExactArgs(1, "EMAIL"), byEmail(func(c *cobra.Command, accounts *tokenissuer.Accounts, a *tokenissuer.Account) (*tokenissuer.Account, error) {
				return nil, accounts.DeleteAccount(c.Context(), nil, a.ID)
			})),
	)
	return c
}
