package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/tokenissuer"
)

func newTenantsCommand(st *state) *cobra.Command {
	c := &cobra.Command{
		Use:   "tenants",
		Short: "Manage tenants: create, list, show, rename, set the scope ceiling, disable, enable, delete",
		Long: `A tenant is a business whose clients call the API. Its scope ceiling bounds the
scopes its clients may hold; disabling it makes the token endpoint refuse its
clients. Every change is audited.`,
		Args: cobra.ArbitraryArgs,
		RunE: cli.Group,
	}
	var nt tokenissuer.NewTenant
	var ceiling string
	create := clientCommand(st, "create", "Create a tenant with its scope ceiling",
		`  issuer tenants create --id acme --name "Acme Corp" --ceiling "accounts:read accounts:write" --config FILE`,
		cli.NoArgs, func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, _ []string) (any, error) {
			if nt.ID == "" {
				return nil, usageError{Command: c.CommandPath(), Msg: "--id is required"}
			}
			nt.ScopeCeiling = splitList(ceiling)
			return admin.CreateTenant(c.Context(), nt)
		})
	create.Flags().StringVar(&nt.ID, "id", "", "tenant ID")
	create.Flags().StringVar(&nt.Name, "name", "", "human-readable name")
	create.Flags().StringVar(&ceiling, "ceiling", "", "space- or comma-separated scopes its clients may hold")

	var force bool
	setCeiling := clientCommand(st, "set-ceiling TENANT_ID SCOPES", "Replace a tenant's scope ceiling",
		`  issuer tenants set-ceiling acme "accounts:read" --config FILE
  issuer tenants set-ceiling acme "accounts:read" --force --config FILE   # also narrows clients above it`,
		cli.ExactArgs(2, "TENANT_ID SCOPES"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			return admin.SetTenantCeiling(c.Context(), args[0], splitList(args[1]), force)
		})
	setCeiling.Flags().BoolVar(&force, "force", false, "narrow the clients that hold scopes outside the new ceiling")

	status := func(s tokenissuer.TenantStatus) func(*cobra.Command, *tokenissuer.Admin, tokenissuer.Store, []string) (any, error) {
		return func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
			return admin.SetTenantStatus(c.Context(), args[0], s)
		}
	}
	c.AddCommand(create, setCeiling,
		clientCommand(st, "list", "List every tenant", "  issuer tenants list --config FILE", cli.NoArgs,
			func(c *cobra.Command, _ *tokenissuer.Admin, store tokenissuer.Store, _ []string) (any, error) {
				return store.Tenants(c.Context())
			}),
		clientCommand(st, "show TENANT_ID", "Show a tenant", "  issuer tenants show acme --config FILE", cli.ExactArgs(1, "TENANT_ID"),
			func(c *cobra.Command, _ *tokenissuer.Admin, store tokenissuer.Store, args []string) (any, error) {
				t, err := store.Tenant(c.Context(), args[0])
				if err != nil {
					return nil, fmt.Errorf("tenant %q: %w", args[0], err)
				}
				return t, nil
			}),
		clientCommand(st, "rename TENANT_ID NAME", "Change a tenant's name", `  issuer tenants rename acme "Acme Corporation" --config FILE`, cli.ExactArgs(2, "TENANT_ID NAME"),
			func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				return admin.RenameTenant(c.Context(), args[0], args[1])
			}),
		clientCommand(st, "disable TENANT_ID", "Disable a tenant: the token endpoint refuses its clients", "  issuer tenants disable acme --config FILE",
			cli.ExactArgs(1, "TENANT_ID"), status(tokenissuer.TenantDisabled)),
		clientCommand(st, "enable TENANT_ID", "Enable a disabled tenant", "  issuer tenants enable acme --config FILE",
			cli.ExactArgs(1, "TENANT_ID"), status(tokenissuer.TenantActive)),
		clientCommand(st, "set-max-secret-age TENANT_ID DAYS", "Bound for how many days the tenant's client secrets work (0: until revoked)",
			"  issuer tenants set-max-secret-age acme 90 --config FILE", cli.ExactArgs(2, "TENANT_ID DAYS"),
			func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				days, err := strconv.Atoi(args[1])
				if err != nil {
					return nil, cli.UsageError{Command: c.CommandPath(), Msg: "DAYS must be a whole number of days, such as 90"}
				}
				return admin.SetMaxSecretAge(c.Context(), args[0], days)
			}),
		clientCommand(st, "delete TENANT_ID", "Delete a tenant that has no client and no person left", "  issuer tenants delete acme --config FILE",
			cli.ExactArgs(1, "TENANT_ID"), func(c *cobra.Command, admin *tokenissuer.Admin, _ tokenissuer.Store, args []string) (any, error) {
				if err := admin.DeleteTenant(c.Context(), args[0]); err != nil {
					return nil, err
				}
				return map[string]string{"deleted": args[0]}, nil
			}),
	)
	return c
}

func newAuditCommand(st *state) *cobra.Command {
	var q tokenissuer.AuditQuery
	var since, until string
	c := &cobra.Command{
		Use:   "audit",
		Short: "List the audit trail: who changed what, when, from where",
		Long: `List audit records, oldest first, as JSON: when, who (cli:<user>, client:<id>,
account:<email>), from where, the action and its target, and the changed fields
before and after. Never a secret. Page with --after SEQ (the last seq seen).`,
		Example: "  issuer audit --tenant acme --since 2026-11-01T00:00:00Z --config FILE\n  issuer audit --target acme-app --limit 20 --config FILE",
		Args:    cli.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			for flag, v := range map[string]*string{"--since": &since, "--until": &until} {
				if *v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, *v)
				if err != nil {
					return usageError{Command: c.CommandPath(), Msg: fmt.Sprintf("%s %q: use RFC 3339, e.g. 2026-11-01T00:00:00Z", flag, *v)}
				}
				if flag == "--since" {
					q.Since = t
				} else {
					q.Until = t
				}
			}
			admin, store, err := st.openAdmin(c)
			if err != nil {
				return err
			}
			defer store.Close()
			records, err := admin.Audit(c.Context(), q)
			if err != nil {
				return err
			}
			return cli.Print(c, records)
		},
	}
	f := c.Flags()
	f.StringVar(&q.TenantID, "tenant", "", "records of this tenant")
	f.StringVar(&q.TargetID, "target", "", "records of this client or tenant ID")
	f.StringVar(&q.Actor, "actor", "", `records by this actor, e.g. "cli:alice"`)
	f.StringVar(&since, "since", "", "from this time on (RFC 3339)")
	f.StringVar(&until, "until", "", "before this time (RFC 3339)")
	f.Int64Var(&q.AfterSeq, "after", 0, "records after this seq (paging)")
	f.IntVar(&q.Limit, "limit", 100, "records per page (at most 500)")
	return c
}
