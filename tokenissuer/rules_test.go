package tokenissuer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// TestTheServiceDecidesWhoMayDoWhat runs the table of actors × operations
// against the service layer itself: whatever adapter calls it, and whatever
// that adapter forgets to check, these are the outcomes.
func TestTheServiceDecidesWhoMayDoWhat(t *testing.T) {
	t.Parallel()
	iss, admin, ops := twoTenants(t)
	actors := map[issuertest.Role]context.Context{
		issuertest.Operator:    ops,
		issuertest.AcmeAdmin:   tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "account:ada@acme.example", TenantID: "acme"}),
		issuertest.AcmeViewer:  tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "account:vic@acme.example", TenantID: "acme", ReadOnly: true}),
		issuertest.AcmeBot:     tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "client:acme-bot", TenantID: "acme"}),
		issuertest.GlobexAdmin: tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "account:gus@globex.example", TenantID: "globex"}),
		issuertest.Nobody:      context.Background(),
	}
	n := 0
	// fresh is a client of acme for one operation, so that operations do
	// not depend on one another.
	fresh := func() string {
		n++
		c, _, err := admin.CreateClient(ops, tokenissuer.NewClient{ID: fmt.Sprint("acme-", n), TenantID: "acme", Scopes: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	do := map[issuertest.Op]func(ctx context.Context) (shown bool, err error){
		issuertest.ReadClient: func(ctx context.Context) (bool, error) {
			_, err := admin.Client(ctx, fresh())
			return true, err
		},
		issuertest.ListClients: func(ctx context.Context) (bool, error) {
			id := fresh()
			list, err := admin.Clients(ctx, tokenissuer.ClientQuery{TenantID: "acme"})
			return slices.ContainsFunc(list, func(c *tokenissuer.Client) bool { return c.ID == id }), err
		},
		issuertest.CreateClient: func(ctx context.Context) (bool, error) {
			_, _, err := admin.CreateClient(ctx, tokenissuer.NewClient{TenantID: "acme", Scopes: []string{"a"}})
			return true, err
		},
		issuertest.RotateSecret: func(ctx context.Context) (bool, error) {
			_, _, _, err := admin.RotateSecret(ctx, fresh())
			return true, err
		},
		issuertest.SetClientKeys: func(ctx context.Context) (bool, error) {
			_, err := admin.SetClientKeys(ctx, fresh(), tokenissuer.ClientKeys{JWKSURI: issuertest.ClientJWKSURI})
			return true, err
		},
		issuertest.DisableAClient: func(ctx context.Context) (bool, error) {
			_, err := admin.SetStatus(ctx, fresh(), tokenissuer.ClientDisabled)
			return true, err
		},
		issuertest.RevokeTokens: func(ctx context.Context) (bool, error) {
			return true, admin.RevokeClientTokens(ctx, fresh())
		},
		issuertest.DeleteClient: func(ctx context.Context) (bool, error) {
			return true, admin.DeleteClient(ctx, fresh())
		},
		issuertest.ReadTenant: func(ctx context.Context) (bool, error) {
			_, err := admin.Tenant(ctx, "acme")
			return true, err
		},
		issuertest.ChangeTenant: func(ctx context.Context) (bool, error) {
			_, err := admin.SetTenantCeiling(ctx, "acme", []string{"a", "b"}, false)
			return true, err
		},
		issuertest.ReadAudit: func(ctx context.Context) (bool, error) {
			records, err := admin.Audit(ctx, tokenissuer.AuditQuery{TenantID: "acme"})
			return len(records) > 0, err
		},
		issuertest.RotateKeys: func(ctx context.Context) (bool, error) {
			_, err := admin.RotateSigningKey(ctx, iss.Server.Keys)
			return true, err
		},
	}
	for op, want := range issuertest.Rules {
		if do[op] == nil {
			t.Errorf("the table of the service has no way to %s", op)
			continue
		}
		for _, role := range issuertest.Roles {
			shown, err := do[op](actors[role])
			if got := outcomeOf(t, shown, err); got != want[role] {
				t.Errorf("%s may %s: got %s (%v), want %s", role, op, got, err, want[role])
			}
		}
	}
}

// TestTenantPoliciesAndDeletion: a tenant's policies (second factor,
// secret age) are set by operators and the tenant's own writers, never by
// its viewers or another tenant (to whom it does not exist); deleting a
// tenant is for operators alone, and nobody else learns anything by trying.
func TestTenantPoliciesAndDeletion(t *testing.T) {
	t.Parallel()
	_, admin, ops := twoTenants(t)
	if _, err := admin.CreateTenant(ops, tokenissuer.NewTenant{ID: "empty", ScopeCeiling: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	as := func(a tokenissuer.Actor) context.Context { return tokenissuer.WithActor(context.Background(), a) }
	acmeAdmin := as(tokenissuer.Actor{ID: "account:ada@acme.example", TenantID: "acme"})
	acmeViewer := as(tokenissuer.Actor{ID: "account:vic@acme.example", TenantID: "acme", ReadOnly: true})
	globexAdmin := as(tokenissuer.Actor{ID: "account:gus@globex.example", TenantID: "globex"})
	emptyAdmin := as(tokenissuer.Actor{ID: "account:eve@empty.example", TenantID: "empty"})
	policies := map[string]func(ctx context.Context) error{
		"require a second factor": func(ctx context.Context) error {
			_, err := admin.SetSecondFactorRequired(ctx, "acme", true)
			return err
		},
		"bound the secrets' age": func(ctx context.Context) error {
			_, err := admin.SetMaxSecretAge(ctx, "acme", 90)
			return err
		},
	}
	for name, set := range policies {
		for _, c := range []struct {
			actor string
			ctx   context.Context
			want  error
		}{
			{"an operator", ops, nil},
			{"acme's admin", acmeAdmin, nil},
			{"acme's viewer", acmeViewer, tokenissuer.ErrNotPermitted},
			{"globex's admin", globexAdmin, tokenissuer.ErrTenantNotFound},
			{"an unnamed actor", context.Background(), tokenissuer.ErrTenantNotFound},
		} {
			if err := set(c.ctx); !errors.Is(err, c.want) {
				t.Errorf("%s may %s for acme: %v, want %v", c.actor, name, err, c.want)
			}
		}
	}
	if _, err := admin.SetMaxSecretAge(acmeAdmin, "acme", 100_000); !errors.As(err, new(*tokenissuer.InvalidError)) {
		t.Errorf("a maximum secret age past ten years: %v", err)
	}

	// Not even an empty tenant's own admin deletes it; the refusal is the
	// same whether the tenant exists for the actor or not.
	for name, ctx := range map[string]context.Context{"its own admin": emptyAdmin, "another tenant's admin": globexAdmin, "an unnamed actor": context.Background()} {
		if err := admin.DeleteTenant(ctx, "empty"); !errors.Is(err, tokenissuer.ErrNotPermitted) {
			t.Errorf("%s deletes tenant empty: %v, want ErrNotPermitted", name, err)
		}
	}
	if _, err := admin.Tenant(ops, "empty"); err != nil {
		t.Fatalf("a refused deletion removed the tenant: %v", err)
	}
	if err := admin.DeleteTenant(ops, "empty"); err != nil {
		t.Fatalf("an operator deletes an empty tenant: %v", err)
	}
	if _, err := admin.Tenant(ops, "empty"); !errors.Is(err, tokenissuer.ErrTenantNotFound) {
		t.Fatalf("a deleted tenant: %v", err)
	}
}

// TestAnotherTenantsTenantListIsItsOwn: a tenant's actor listing tenants
// sees its own alone.
func TestAnotherTenantsTenantListIsItsOwn(t *testing.T) {
	t.Parallel()
	_, admin, _ := twoTenants(t)
	list, err := admin.Tenants(tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "client:acme-bot", TenantID: "acme"}))
	if err != nil || len(list) != 1 || list[0].ID != "acme" {
		t.Fatalf("acme's list of tenants: %v %v", err, list)
	}
	if list, err := admin.Tenants(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("an unnamed actor's list of tenants: %v %v", err, list)
	}
}

func outcomeOf(t *testing.T, shown bool, err error) issuertest.Outcome {
	t.Helper()
	var invalid *tokenissuer.InvalidError
	switch {
	case err == nil && shown:
		return issuertest.Allowed
	case err == nil:
		return issuertest.Hidden
	case errors.Is(err, tokenissuer.ErrClientNotFound), errors.Is(err, tokenissuer.ErrTenantNotFound):
		return issuertest.Hidden
	case errors.Is(err, tokenissuer.ErrNotPermitted), errors.Is(err, tokenissuer.ErrPlatformScope), errors.As(err, &invalid):
		return issuertest.Refused
	}
	t.Fatalf("an unexpected error: %v", err)
	return ""
}

// TestATenantsClientsAreBoundedByAQuota: one tenant's bot cannot fill the
// store (and slow every other tenant's lists); other tenants and operators
// keep their room.
func TestATenantsClientsAreBoundedByAQuota(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, issuertest.Options{TenantID: "acme", Scopes: []string{"a"}, Configure: func(c *server.Config) { c.Tenants.MaxClients = 3 }})
	admin := iss.Server.Admin()
	bot := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "client:acme-bot", TenantID: "acme"})
	for i := range 2 { // acme-app is the first
		if _, _, err := admin.CreateClient(bot, tokenissuer.NewClient{Name: fmt.Sprint("bot ", i), Scopes: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
	}
	var quota *tokenissuer.QuotaError
	if _, _, err := admin.CreateClient(bot, tokenissuer.NewClient{Name: "one too many", Scopes: []string{"a"}}); !errors.As(err, &quota) {
		t.Fatalf("past the quota: %v", err)
	}
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:ops", Operator: true})
	if _, _, err := admin.CreateClient(ops, tokenissuer.NewClient{Name: "a platform client", Scopes: []string{"a"}}); err != nil {
		t.Fatalf("a client of no tenant: %v", err)
	}
	// Deleting one makes room.
	list, err := admin.Clients(bot, tokenissuer.ClientQuery{Limit: 1})
	if err != nil || len(list) != 1 {
		t.Fatal(err, list)
	}
	if err := admin.DeleteClient(bot, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.CreateClient(bot, tokenissuer.NewClient{Name: "in its place", Scopes: []string{"a"}}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// twoTenants is an issuer with tenants acme (and its client acme-app) and
// globex, its service, and an operator's context.
func twoTenants(t *testing.T) (*issuertest.Issuer, *tokenissuer.Admin, context.Context) {
	t.Helper()
	iss := issuertest.Start(t, issuertest.Options{TenantID: "acme", Scopes: []string{"a"}})
	admin := iss.Server.Admin()
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:ops", Operator: true})
	if _, err := admin.CreateTenant(ops, tokenissuer.NewTenant{ID: "globex", ScopeCeiling: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	return iss, admin, ops
}

// TestNamesAreOneRuleForEveryAdapter: what the service accepts as a name
// every page can show. Empty becomes the ID (or email), surrounding spaces
// go, and a name too long or with control characters is refused, on
// create and on rename, for clients, tenants and people alike.
func TestNamesAreOneRuleForEveryAdapter(t *testing.T) {
	t.Parallel()
	_, admin, ops := twoTenants(t)
	long := strings.Repeat("n", tokenissuer.MaxNameLength+1)
	c, _, err := admin.CreateClient(ops, tokenissuer.NewClient{ID: "named-by-id", Scopes: []string{"a"}})
	if err != nil || c.Name != "named-by-id" {
		t.Fatalf("an unnamed client: %v %+v", err, c)
	}
	if c, _, err = admin.CreateClient(ops, tokenissuer.NewClient{ID: "spaced", Name: "  Billing job  ", Scopes: []string{"a"}}); err != nil || c.Name != "Billing job" {
		t.Fatalf("surrounding spaces: %v %+v", err, c)
	}
	for _, bad := range []string{long, "two\nlines", "bell\a", "zero\u200bwidth"} {
		var invalid *tokenissuer.InvalidError
		if _, _, err := admin.CreateClient(ops, tokenissuer.NewClient{Name: bad, Scopes: []string{"a"}}); !errors.As(err, &invalid) {
			t.Errorf("client named %q: %v", bad, err)
		}
		if _, err := admin.RenameClient(ops, "spaced", bad); !errors.As(err, &invalid) {
			t.Errorf("client renamed %q: %v", bad, err)
		}
		if _, err := admin.CreateTenant(ops, tokenissuer.NewTenant{ID: "t-bad", Name: bad, ScopeCeiling: []string{"a"}}); !errors.As(err, &invalid) {
			t.Errorf("tenant named %q: %v", bad, err)
		}
		if _, err := admin.RenameTenant(ops, "acme", bad); !errors.As(err, &invalid) {
			t.Errorf("tenant renamed %q: %v", bad, err)
		}
	}
	if c, err := admin.RenameClient(ops, "spaced", ""); err != nil || c.Name != "spaced" {
		t.Errorf("renamed to nothing: %v %+v", err, c)
	}
	if c, err := admin.RenameClient(ops, "spaced", "Zahlungen – Café ☕"); err != nil || c.Name != "Zahlungen – Café ☕" {
		t.Errorf("a name beyond ASCII: %v %+v", err, c)
	}
}
