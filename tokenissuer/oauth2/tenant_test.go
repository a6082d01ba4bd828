package oauth2_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore/storetest"
)

func TestClientScopesStayWithinTheTenantCeiling(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	ctx := operatorContext()
	if _, err := ti.admin.CreateTenant(ctx, tokenissuer.NewTenant{ID: "acme", Name: "Acme", ScopeCeiling: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ti.admin.CreateClient(ctx, tokenissuer.NewClient{ID: "c1", TenantID: "acme", Scopes: []string{"a", "c"}}); err == nil || !strings.Contains(err.Error(), "scopes c are outside the scope ceiling") {
		t.Fatalf("scope above the ceiling: %v", err)
	}
	if _, _, err := ti.admin.CreateClient(ctx, tokenissuer.NewClient{ID: "c1", TenantID: "nobody", Scopes: []string{"a"}}); err == nil || !strings.Contains(err.Error(), `tenant "nobody" does not exist`) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if _, _, err := ti.admin.CreateClient(ctx, tokenissuer.NewClient{ID: "c1", TenantID: "acme", Scopes: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ti.admin.SetScopes(ctx, "c1", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ti.admin.SetScopes(ctx, "c1", []string{"a", "z"}); err == nil || !strings.Contains(err.Error(), "scopes z are outside") {
		t.Fatalf("set scopes above the ceiling: %v", err)
	}
	if _, err := ti.admin.CreateTenant(ctx, tokenissuer.NewTenant{ID: "acme"}); !errors.Is(err, tokenissuer.ErrTenantExists) || !strings.Contains(err.Error(), `tenant "acme"`) {
		t.Fatalf("duplicate tenant: %v", err)
	}
}

// TestNarrowingACeiling: below what clients hold it is refused with the
// clients named, or forced, narrowing them; widening never widens a client.
func TestNarrowingACeiling(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:ops"})
	ti.admin.CreateTenant(ctx, tokenissuer.NewTenant{ID: "acme", ScopeCeiling: []string{"a", "b"}})
	ti.createClient(tokenissuer.NewClient{ID: "c1", TenantID: "acme", Scopes: []string{"a", "b"}})
	ti.createClient(tokenissuer.NewClient{ID: "c2", TenantID: "acme", Scopes: []string{"a"}})

	_, err := ti.admin.SetTenantCeiling(ctx, "acme", []string{"a"}, false)
	var ce *tokenissuer.CeilingError
	if !errors.As(err, &ce) || len(ce.Exceeding) != 1 || strings.Join(ce.Exceeding["c1"], " ") != "b" || !strings.Contains(err.Error(), "c1 (b)") {
		t.Fatalf("narrowing below a client: %v", err)
	}
	if tn, _ := ti.store.Tenant(ctx, "acme"); strings.Join(tn.ScopeCeiling, " ") != "a b" {
		t.Fatalf("a refused narrowing changed the ceiling: %v", tn.ScopeCeiling)
	}
	if _, err := ti.admin.SetTenantCeiling(ctx, "acme", []string{"a"}, true); err != nil {
		t.Fatal(err)
	}
	if c, _ := ti.store.Client(ctx, "c1"); strings.Join(c.Scopes, " ") != "a" {
		t.Fatalf("forced narrowing left c1 with %v", c.Scopes)
	}
	if _, err := ti.admin.SetTenantCeiling(ctx, "acme", []string{"a", "b", "z"}, false); err != nil {
		t.Fatal(err)
	}
	if c, _ := ti.store.Client(ctx, "c2"); strings.Join(c.Scopes, " ") != "a" {
		t.Fatalf("widening the ceiling widened c2: %v", c.Scopes)
	}
	records, _ := ti.admin.Audit(ctx, tokenissuer.AuditQuery{TargetID: "c1"})
	if last := records[len(records)-1]; last.Action != "client.set_scopes" || last.Actor != "cli:ops" || !strings.Contains(string(last.Before), `"b"`) {
		t.Fatalf("forced narrowing of c1 is not audited: %+v", last)
	}
}

func TestDisabledTenantsClientsGetNoToken(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{TenantID: "acme", Scopes: []string{"a"}})
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)); r.status != http.StatusOK {
		t.Fatalf("active tenant: %d %v", r.status, r.body)
	}
	if _, err := ti.admin.SetTenantStatus(operatorContext(), "acme", tokenissuer.TenantDisabled); err != nil {
		t.Fatal(err)
	}
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
	if r.status != http.StatusBadRequest || r.body["error"] != "unauthorized_client" || !strings.Contains(r.body["error_description"].(string), "tenant is disabled") {
		t.Fatalf("disabled tenant: %d %v", r.status, r.body)
	}
	ti.admin.SetTenantStatus(operatorContext(), "acme", tokenissuer.TenantActive)
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)); r.status != http.StatusOK {
		t.Fatalf("enabled again: %d %v", r.status, r.body)
	}
}

// TestStoresMigrateTenantsNamedOnClients: a store written before tenants
// were records gets one per tenant its clients name, with the union of
// their scopes as ceiling, so no client exceeds its ceiling.
func TestStoresMigrateTenantsNamedOnClients(t *testing.T) {
	t.Parallel()
	for name, open := range storetest.Engines() {
		t.Run(name, func(t *testing.T) {
			ctx := operatorContext()
			s := open(t)
			now := fakeclock.New().Now()
			for _, c := range []*tokenissuer.Client{
				{ID: "old-1", TenantID: "legacy", Scopes: []string{"b", "a"}, Status: tokenissuer.ClientActive, CreatedAt: now, UpdatedAt: now},
				{ID: "old-2", TenantID: "legacy", Scopes: []string{"c", "b"}, Status: tokenissuer.ClientActive, CreatedAt: now, UpdatedAt: now},
				{ID: "old-3", Scopes: []string{"x"}, Status: tokenissuer.ClientActive, CreatedAt: now, UpdatedAt: now},
			} {
				if err := s.CreateClient(ctx, c, 0); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 2; i++ { // idempotent
				if err := tokenissuer.EnsureTenantRecords(ctx, s, fakeclock.New()); err != nil {
					t.Fatal(err)
				}
			}
			tenants, err := s.Tenants(ctx)
			if err != nil || len(tenants) != 1 || tenants[0].ID != "legacy" || strings.Join(tenants[0].ScopeCeiling, " ") != "a b c" || tenants[0].Status != tokenissuer.TenantActive {
				t.Fatalf("migrated tenants: %+v %v", tenants, err)
			}
			if records, _ := s.AuditRecords(ctx, tokenissuer.AuditQuery{TargetID: "legacy"}); len(records) != 1 || records[0].Actor != "migration" {
				t.Fatalf("migration audit: %+v", records)
			}
		})
	}
}

// TestEveryChangeIsAudited: who, from where, what, before and after, for
// every client and tenant change, and never a secret or a hash.
func TestEveryChangeIsAudited(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	ti := startIssuer(t, cfg, fakeclock.New())
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:ops", Address: "192.0.2.1"})
	a := ti.admin
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.CreateTenant(ctx, tokenissuer.NewTenant{ID: "acme", Name: "Acme", ScopeCeiling: []string{"a", "b"}})
	must(err)
	_, secret, err := a.CreateClient(ctx, tokenissuer.NewClient{ID: "c1", TenantID: "acme", Scopes: []string{"a"}})
	must(err)
	_, _, rotated, err := a.RotateSecret(ctx, "c1")
	must(err)
	_, err = a.RevokeSecret(ctx, "c1", "")
	must(err)
	_, err = a.SetStatus(ctx, "c1", tokenissuer.ClientDisabled)
	must(err)
	_, err = a.SetStatus(ctx, "c1", tokenissuer.ClientActive)
	must(err)
	_, err = a.SetScopes(ctx, "c1", []string{"a", "b"})
	must(err)
	_, err = a.RenameTenant(ctx, "acme", "Acme Corp")
	must(err)
	_, err = a.SetTenantStatus(ctx, "acme", tokenissuer.TenantDisabled)
	must(err)
	must(a.DeleteClient(ctx, "c1"))

	records, err := a.Audit(operatorContext(), tokenissuer.AuditQuery{TenantID: "acme"})
	must(err)
	var actions []string
	for _, r := range records {
		actions = append(actions, r.Action)
		if r.Actor != "cli:ops" || r.Address != "192.0.2.1" || r.At.IsZero() {
			t.Errorf("%s: actor %q from %q at %v", r.Action, r.Actor, r.Address, r.At)
		}
		all := string(r.Before) + string(r.After)
		hash := ti.hasher.Hash("c1", secret)
		if strings.Contains(all, secret) || strings.Contains(all, rotated) || strings.Contains(all, "hash") || strings.Contains(all, string(hash)) {
			t.Errorf("%s: the audit record holds a secret: %s", r.Action, all)
		}
	}
	// Disabling and deleting revoke the tokens held, each audited too.
	want := "tenant.create client.create client.rotate_secret client.revoke_secret client.disable revocation.client client.enable client.set_scopes tenant.rename tenant.disable revocation.tenant client.delete revocation.client"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("actions:\n got %s\nwant %s", got, want)
	}
	scopes := records[7]
	if !strings.Contains(string(scopes.Before), `"scopes":["a"]`) || !strings.Contains(string(scopes.After), `"scopes":["a","b"]`) {
		t.Errorf("set_scopes before/after: %s → %s", scopes.Before, scopes.After)
	}
	if del := records[len(records)-2]; del.After != nil || del.Before == nil {
		t.Errorf("delete keeps what was deleted, nothing after: %s → %s", del.Before, del.After)
	}
}

// TestOnlyOperatorsGrantPlatformScopes is the rule on portcullis.* scopes
// written once, in the service, as a table of actors and operations: a
// tenant's ceiling holding such a scope (an operator put it there) still
// lets only an operator give it to a client, and an actor that an adapter
// forgot to describe is no operator.
func TestOnlyOperatorsGrantPlatformScopes(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:ops", Operator: true})
	if _, err := ti.admin.CreateTenant(ops, tokenissuer.NewTenant{ID: "acme", ScopeCeiling: []string{"accounts:read", "portcullis.clients:manage"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ti.admin.CreateClient(ops, tokenissuer.NewClient{ID: "acme-app", TenantID: "acme", Scopes: []string{"accounts:read"}}); err != nil {
		t.Fatal(err)
	}
	actors := map[string]*tokenissuer.Actor{
		"the CLI":                      ptr(tokenissuer.CLIActor()),
		"a platform-admin person":      &tokenissuer.Actor{ID: "account:olga@example.com", Operator: true},
		"a portcullis.admin token":     &tokenissuer.Actor{ID: "client:platform-ops", Operator: true},
		"a tenant-admin person":        &tokenissuer.Actor{ID: "account:ada@acme.example", TenantID: "acme"},
		"a tenant's automation client": &tokenissuer.Actor{ID: "client:acme-bot", TenantID: "acme"},
		"nobody an adapter named":      nil,
	}
	n := 0
	operations := map[string]func(ctx context.Context) error{
		"create a tenant client with portcullis.clients:manage": func(ctx context.Context) error {
			_, _, err := ti.admin.CreateClient(ctx, tokenissuer.NewClient{TenantID: "acme", Scopes: []string{"portcullis.clients:manage"}})
			return err
		},
		"give a client portcullis.clients:manage": func(ctx context.Context) error {
			_, err := ti.admin.SetScopes(ctx, "acme-app", []string{"accounts:read", "portcullis.clients:manage"})
			return err
		},
		"create a client with portcullis.admin": func(ctx context.Context) error {
			_, _, err := ti.admin.CreateClient(ctx, tokenissuer.NewClient{Scopes: []string{"portcullis.admin"}})
			return err
		},
		"put portcullis.admin in a ceiling": func(ctx context.Context) error {
			_, err := ti.admin.SetTenantCeiling(ctx, "acme", []string{"accounts:read", "portcullis.clients:manage", "portcullis.admin"}, false)
			return err
		},
		"create a tenant whose ceiling holds portcullis.admin": func(ctx context.Context) error {
			n++
			_, err := ti.admin.CreateTenant(ctx, tokenissuer.NewTenant{ID: fmt.Sprint("t-", n), ScopeCeiling: []string{"portcullis.admin"}})
			return err
		},
	}
	for actor, a := range actors {
		ctx, operator := context.Background(), false
		if a != nil {
			ctx, operator = tokenissuer.WithActor(ctx, *a), a.Operator
		}
		for op, do := range operations {
			err := do(ctx)
			switch {
			case operator && err != nil:
				t.Errorf("%s may %s: %v", actor, op, err)
			case !operator && !errors.Is(err, tokenissuer.ErrPlatformScope) && !errors.Is(err, tokenissuer.ErrNotPermitted):
				// Refused for the scope, or before it: tenants are the
				// operators' to manage at all.
				t.Errorf("%s must not %s: %v", actor, op, err)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
