package tokenissuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/secretformat"

	"github.com/portcullis/portcullis/revocation"
)

// Admin is the one place the rules of client and tenant management live:
// the CLI, the admin API and the portal are adapters over it. Every
// operation reads who acts from the context (WithActor) and decides what
// that actor may see and change: another tenant's objects do not exist for
// it, and a context without an actor may do nothing. Every change is
// recorded in the audit trail with that actor.
type Admin struct {
	store  AdminStore
	hasher *SecretHasher
	clock  Clock
	// maxTokenLifetime caps per-client token lifetimes (tokens.max_lifetime;
	// 0: no cap). Old keys stay published only that long, so a longer
	// lifetime would outlive its key.
	maxTokenLifetime time.Duration
	// maxClientsPerTenant is tenants.max_clients (0: no quota).
	maxClientsPerTenant int
	// jwksURIPrivateNetworks is tenants.jwks_uri_private_networks.
	jwksURIPrivateNetworks bool
}

// AdminLimits are the bounds Admin enforces.
type AdminLimits struct {
	// MaxTokenLifetime caps per-client token lifetimes (0: no cap).
	MaxTokenLifetime time.Duration
	// MaxClientsPerTenant bounds each tenant's clients (0: no quota).
	MaxClientsPerTenant int
	// JWKSURIPrivateNetworks lets a client's jwks_uri name loopback and
	// private addresses, and plain http on loopback.
	JWKSURIPrivateNetworks bool
}

// AdminStore is what Admin changes and records changes in.
type AdminStore interface {
	ClientStore
	TenantStore
	AuditStore
	RevocationStore
	ChangeBus
}

// NewAdmin returns an Admin on store.
func NewAdmin(store AdminStore, hasher *SecretHasher, clock Clock, limits AdminLimits) *Admin {
	return &Admin{store: store, hasher: hasher, clock: clock, maxTokenLifetime: limits.MaxTokenLifetime, maxClientsPerTenant: limits.MaxClientsPerTenant,
		jwksURIPrivateNetworks: limits.JWKSURIPrivateNetworks}
}

// Actor is who makes a change, and from where: the audit trail records it,
// and the service's rules read it.
type Actor struct {
	// ID is "cli:<os user>", "client:<client ID>" or "account:<email>".
	ID      string
	Address string
	// Operator is a platform operator: the CLI, a token holding
	// portcullis.admin, a platform-admin person. An operator sees every
	// tenant, manages tenants and keys, and alone grants the issuer's own
	// scopes (portcullis.*). The zero Actor is not one, so an adapter that
	// forgets to say grants nothing.
	Operator bool
	// TenantID is the tenant a tenant's person or client token acts in: it
	// sees that tenant's clients, tenant record and audit trail, and
	// nothing of any other tenant.
	TenantID string
	// ReadOnly is an actor that may look but not change (a tenant viewer).
	ReadOnly bool
}

// sees reports whether the actor may know of an object of tenantID.
func (a Actor) sees(tenantID string) bool {
	return a.Operator || (a.TenantID != "" && a.TenantID == tenantID)
}

// mayKnowClient hides a client the actor may not see: to it, the client
// does not exist.
func mayKnowClient(ctx context.Context, c *Client) error {
	if !actorFrom(ctx).sees(c.TenantID) {
		return ErrClientNotFound
	}
	return nil
}

// mayChangeClient is mayKnowClient, and refuses read-only actors.
func mayChangeClient(ctx context.Context, c *Client) error {
	if err := mayKnowClient(ctx, c); err != nil {
		return err
	}
	if actorFrom(ctx).ReadOnly {
		return ErrNotPermitted
	}
	return nil
}

// operatorOnly refuses what only platform operators do: tenants and keys.
func operatorOnly(ctx context.Context) error {
	if a := actorFrom(ctx); !a.Operator || a.ReadOnly {
		return ErrNotPermitted
	}
	return nil
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the changes made with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func actorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.ID != "" {
		return a
	}
	return Actor{ID: "unknown"}
}

// CLIActor is the operator running the CLI: "cli:" and the OS user.
func CLIActor() Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return Actor{ID: "cli:" + name, Operator: true}
}

// platformScopePrefix begins the issuer's own scopes (the admin API's, the
// revocation feed's): power over the platform, not over a tenant's API.
const platformScopePrefix = "portcullis."

// ErrPlatformScope is a portcullis.* scope asked for by someone who is not
// a platform operator.
var ErrPlatformScope = errors.New("is granted by platform operators only")

// mayGrant refuses platform scopes to anyone but an operator, whatever a
// tenant's ceiling says: a tenant cannot make itself, or a bot of its own,
// an operator.
func mayGrant(ctx context.Context, scopes []string) error {
	if actorFrom(ctx).Operator {
		return nil
	}
	for _, s := range scopes {
		if strings.HasPrefix(s, platformScopePrefix) {
			return fmt.Errorf("scope %q %w", s, ErrPlatformScope)
		}
	}
	return nil
}

// NewClient describes a client to create.
type NewClient struct {
	// ID is generated when empty.
	ID            string
	Name          string
	TenantID      string
	Scopes        []string
	TokenLifetime time.Duration
	// Keys are its public keys for private_key_jwt; with Keys.Only it gets
	// no secret.
	Keys ClientKeys
}

// NewTenant describes a tenant to create.
type NewTenant struct {
	ID           string
	Name         string
	ScopeCeiling []string
}

// InvalidError is a request that breaks a rule of client or tenant
// management; its message says which and how to fix it.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// ErrVersionMismatch is a change made for a version of the object that is
// no longer current (an HTTP If-Match that no longer matches: 412).
var ErrVersionMismatch = errors.New("the object changed since that version was read; read it again")

type versionKey struct{}

// WithExpectedVersion returns ctx whose changes apply only if the object
// is still at version (ClientVersion, TenantVersion); the check is made in
// the store's transaction, so of two writers of one version one wins.
func WithExpectedVersion(ctx context.Context, version string) context.Context {
	return context.WithValue(ctx, versionKey{}, version)
}

func checkVersion(ctx context.Context, current string) error {
	if v, ok := ctx.Value(versionKey{}).(string); ok && v != current {
		return ErrVersionMismatch
	}
	return nil
}

// ClientVersion is the version of a client (its ETag): every change moves it.
func ClientVersion(c *Client) string { return strconv.FormatInt(c.UpdatedAt.UnixNano(), 36) }

// TenantVersion is the version of a tenant (its ETag).
func TenantVersion(t *Tenant) string { return strconv.FormatInt(t.UpdatedAt.UnixNano(), 36) }

// nextVersionTime is now, or just after previous when the clock has not
// moved (fast writes, a fake clock): versions never repeat.
func nextVersionTime(now, previous time.Time) time.Time {
	if !now.After(previous) {
		return previous.Add(time.Nanosecond)
	}
	return now
}

// Errors of client and tenant management.
var (
	ErrTooManySecrets = fmt.Errorf("the client already holds %d secrets; revoke one first", MaxSecretsPerClient)
	ErrLastSecret     = errors.New("this is the client's only secret; rotate first or disable the client")
	ErrSecretNotFound = errors.New("the client has no secret with this ID")
)

// QuotaError is a change refused because it would pass a quota.
type QuotaError struct{ Msg string }

func (e *QuotaError) Error() string { return e.Msg }

// CeilingError is a scope ceiling narrowed below what some of the tenant's
// clients hold: nothing changed. Force narrows those clients too.
type CeilingError struct {
	TenantID string
	// Exceeding maps each client to its scopes outside the new ceiling.
	Exceeding map[string][]string
}

func (e *CeilingError) Error() string {
	ids := make([]string, 0, len(e.Exceeding))
	for id := range e.Exceeding {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s (%s)", id, strings.Join(e.Exceeding[id], " ")))
	}
	return fmt.Sprintf("tenant %q: these clients hold scopes outside the new ceiling: %s; narrow them first, or force it to narrow them", e.TenantID, strings.Join(parts, ", "))
}

// CreateClient creates an active client with one generated secret, returned
// in clear text: it is never stored nor shown again. A client of a tenant
// holds only scopes within the tenant's ceiling.
func (a *Admin) CreateClient(ctx context.Context, nc NewClient) (*Client, string, error) {
	if actor := actorFrom(ctx); !actor.Operator {
		switch {
		case actor.ReadOnly || actor.TenantID == "":
			return nil, "", ErrNotPermitted
		case nc.TenantID != "" && nc.TenantID != actor.TenantID:
			return nil, "", fmt.Errorf("tenant %q: %w", nc.TenantID, ErrTenantNotFound) // another tenant does not exist for it
		case nc.ID != "":
			// Client IDs are global: a chosen one that another tenant uses
			// would be refused, and the refusal would tell of that tenant.
			return nil, "", invalid("client_id: the issuer chooses the IDs of a tenant's clients; give the client a name instead")
		}
		nc.TenantID = actor.TenantID
	}
	if nc.ID == "" {
		nc.ID = "client-" + RandomID(12)
	}
	if !ValidClientID(nc.ID) {
		return nil, "", invalid("client ID %q: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", nc.ID)
	}
	name, err := cleanName("name", nc.Name, nc.ID)
	if err != nil {
		return nil, "", err
	}
	nc.Name = name
	if err := validateScopes(nc.Scopes); err != nil {
		return nil, "", err
	}
	if err := mayGrant(ctx, nc.Scopes); err != nil {
		return nil, "", err
	}
	if nc.TenantID != "" {
		if err := a.withinCeiling(ctx, nc.TenantID, nc.Scopes); err != nil {
			return nil, "", err
		}
	}
	if nc.TokenLifetime < 0 {
		return nil, "", invalid("token lifetime must not be negative")
	}
	if a.maxTokenLifetime > 0 && nc.TokenLifetime > a.maxTokenLifetime {
		return nil, "", invalid("token lifetime %s is longer than tokens.max_lifetime (%s), the longest any token may live", nc.TokenLifetime, a.maxTokenLifetime)
	}
	if nc.Keys, err = validateClientKeys(nc.Keys, a.jwksURIPrivateNetworks); err != nil {
		return nil, "", err
	}
	now := a.clock.Now().UTC()
	c := &Client{
		ID: nc.ID, Name: nc.Name, TenantID: nc.TenantID, Scopes: dedupe(nc.Scopes), Status: ClientActive,
		TokenLifetime: nc.TokenLifetime, CreatedAt: now, UpdatedAt: now, Keys: nc.Keys, Secrets: []Secret{},
	}
	secret := ""
	if !nc.Keys.Only {
		if secret, err = secretformat.New(); err != nil {
			return nil, "", err
		}
		c.Secrets = []Secret{{ID: RandomID(6), Hash: a.hasher.Hash(nc.ID, secret), Lookup: a.hasher.Lookup(secret), Hint: SecretHint(secret), CreatedAt: now}}
	}
	if err := a.store.CreateClient(ctx, c, a.maxClientsPerTenant); errors.Is(err, ErrClientQuota) {
		return nil, "", &QuotaError{Msg: fmt.Sprintf("tenant %q has %d clients, as many as tenants.max_clients allows; delete one first", c.TenantID, a.maxClientsPerTenant)}
	} else if err != nil {
		return nil, "", fmt.Errorf("client %q: %w", nc.ID, err)
	}
	return c, secret, a.audit(ctx, "client.create", c.TenantID, "client", c.ID, nil, clientAudit(c))
}

// withinCeiling checks that scopes lie within the tenant's ceiling.
func (a *Admin) withinCeiling(ctx context.Context, tenantID string, scopes []string) error {
	t, err := a.store.Tenant(ctx, tenantID)
	if errors.Is(err, ErrTenantNotFound) {
		return invalid("tenant %q does not exist; create it first (issuer tenants create)", tenantID)
	}
	if err != nil {
		return err
	}
	if outside := scopesOutside(scopes, t.ScopeCeiling); len(outside) > 0 {
		return invalid("scopes %s are outside the scope ceiling of tenant %q (%s)", strings.Join(outside, " "), tenantID, strings.Join(t.ScopeCeiling, " "))
	}
	return nil
}

func scopesOutside(scopes, ceiling []string) []string {
	var outside []string
	for _, s := range scopes {
		if !slices.Contains(ceiling, s) {
			outside = append(outside, s)
		}
	}
	return outside
}

// updateClient applies change to a client and records it.
func (a *Admin) updateClient(ctx context.Context, action, id string, change func(c *Client) error) (*Client, error) {
	var before *Client
	c, err := a.store.UpdateClient(ctx, id, func(c *Client) error {
		if err := mayChangeClient(ctx, c); err != nil {
			return err
		}
		if err := checkVersion(ctx, ClientVersion(c)); err != nil {
			return err
		}
		snapshot := *c // changes may edit slices in place: copy them
		snapshot.Scopes, snapshot.Secrets = slices.Clone(c.Scopes), slices.Clone(c.Secrets)
		before = &snapshot
		if err := change(c); err != nil {
			return err
		}
		c.UpdatedAt = nextVersionTime(a.clock.Now().UTC(), snapshot.UpdatedAt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.clientChanged(ctx, c.ID)
	return c, a.audit(ctx, action, c.TenantID, "client", c.ID, clientAudit(before), clientAudit(c))
}

// RotateSecret adds a second secret to the client and returns it in clear
// text; both secrets work until the old one is revoked.
func (a *Admin) RotateSecret(ctx context.Context, id string) (*Client, Secret, string, error) {
	secret, err := secretformat.New()
	if err != nil {
		return nil, Secret{}, "", err
	}
	added := Secret{ID: RandomID(6), Hash: a.hasher.Hash(id, secret), Lookup: a.hasher.Lookup(secret), Hint: SecretHint(secret), CreatedAt: a.clock.Now().UTC()}
	c, err := a.updateClient(ctx, "client.rotate_secret", id, func(c *Client) error {
		if c.Keys.Only {
			return invalid("client %q authenticates with private_key_jwt only: it holds no secret; rotate its keys instead", c.ID)
		}
		if len(c.Secrets) >= MaxSecretsPerClient {
			return ErrTooManySecrets
		}
		c.Secrets = append(c.Secrets, added)
		return nil
	})
	if err != nil {
		return nil, Secret{}, "", err
	}
	return c, added, secret, nil
}

// RevokeSecret removes the secret with secretID, or the oldest secret when
// secretID is empty. A client's last secret cannot be revoked.
func (a *Admin) RevokeSecret(ctx context.Context, id, secretID string) (*Client, error) {
	return a.updateClient(ctx, "client.revoke_secret", id, func(c *Client) error {
		if len(c.Secrets) <= 1 {
			return ErrLastSecret
		}
		idx := 0
		if secretID != "" {
			idx = slices.IndexFunc(c.Secrets, func(s Secret) bool { return s.ID == secretID })
			if idx < 0 {
				return ErrSecretNotFound
			}
		}
		c.Secrets = slices.Delete(c.Secrets, idx, idx+1)
		return nil
	})
}

// SetStatus enables or disables a client. Disabling also revokes every
// token the client holds: they stop working at every authz within seconds,
// and stay revoked if the client is enabled again.
func (a *Admin) SetStatus(ctx context.Context, id string, status ClientStatus) (*Client, error) {
	action := "client.enable"
	if status == ClientDisabled {
		action = "client.disable"
	}
	c, err := a.updateClient(ctx, action, id, func(c *Client) error {
		c.Status = status
		return nil
	})
	if err != nil || status != ClientDisabled {
		return c, err
	}
	return c, a.revoke(ctx, revocation.KindClient, c.ID, c.TenantID, action)
}

// SetScopes replaces the client's scopes, within its tenant's ceiling.
func (a *Admin) SetScopes(ctx context.Context, id string, scopes []string) (*Client, error) {
	if err := validateScopes(scopes); err != nil {
		return nil, err
	}
	if err := mayGrant(ctx, scopes); err != nil {
		return nil, err
	}
	// The ceiling is read before the client's transaction: a store read
	// inside it would need a second connection while holding a row lock,
	// which a busy PostgreSQL pool may not have.
	current, err := a.store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	if current.TenantID != "" {
		if err := a.withinCeiling(ctx, current.TenantID, scopes); err != nil {
			return nil, err
		}
	}
	return a.updateClient(ctx, "client.set_scopes", id, func(c *Client) error {
		if c.TenantID != current.TenantID {
			return ErrVersionMismatch // moved to another tenant meanwhile
		}
		c.Scopes = dedupe(scopes)
		return nil
	})
}

// RenameClient changes a client's name.
func (a *Admin) RenameClient(ctx context.Context, id, name string) (*Client, error) {
	return a.updateClient(ctx, "client.rename", id, func(c *Client) error {
		clean, err := cleanName("name", name, c.ID)
		c.Name = clean
		return err
	})
}

// DeleteClient removes a client and its secrets.
func (a *Admin) DeleteClient(ctx context.Context, id string) error {
	// The version is compared inside the delete's transaction: a change
	// that lands between a read and the delete cannot be lost.
	c, err := a.store.DeleteClient(ctx, id, func(c *Client) error {
		if err := mayChangeClient(ctx, c); err != nil {
			return err
		}
		return checkVersion(ctx, ClientVersion(c))
	})
	if err != nil {
		return err
	}
	a.clientChanged(ctx, id)
	if err := a.audit(ctx, "client.delete", c.TenantID, "client", id, clientAudit(c), nil); err != nil {
		return err
	}
	return a.revoke(ctx, revocation.KindClient, id, c.TenantID, "client.delete")
}

// CreateTenant creates an active tenant with its scope ceiling.
func (a *Admin) CreateTenant(ctx context.Context, nt NewTenant) (*Tenant, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	if !idPattern.MatchString(nt.ID) {
		return nil, invalid("tenant ID %q: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", nt.ID)
	}
	if err := validateScopes(nt.ScopeCeiling); err != nil {
		return nil, err
	}
	if err := mayGrant(ctx, nt.ScopeCeiling); err != nil {
		return nil, err
	}
	name, err := cleanName("name", nt.Name, nt.ID)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now().UTC()
	t := &Tenant{ID: nt.ID, Name: name, Status: TenantActive, ScopeCeiling: dedupe(nt.ScopeCeiling), CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateTenant(ctx, t); err != nil {
		return nil, fmt.Errorf("tenant %q: %w", nt.ID, err)
	}
	return t, a.audit(ctx, "tenant.create", t.ID, "tenant", t.ID, nil, t)
}

// updateTenant applies change to a tenant and records it; operators only.
func (a *Admin) updateTenant(ctx context.Context, action, id string, change func(t *Tenant) error) (*Tenant, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	return a.changeTenant(ctx, action, id, change)
}

// changeTenant applies change to a tenant and records it, for an actor
// already found allowed to.
func (a *Admin) changeTenant(ctx context.Context, action, id string, change func(t *Tenant) error) (*Tenant, error) {
	var before Tenant
	t, err := a.store.UpdateTenant(ctx, id, func(t *Tenant) error {
		if err := checkVersion(ctx, TenantVersion(t)); err != nil {
			return err
		}
		before = *t
		before.ScopeCeiling = slices.Clone(t.ScopeCeiling)
		if err := change(t); err != nil {
			return err
		}
		t.UpdatedAt = nextVersionTime(a.clock.Now().UTC(), before.UpdatedAt)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", id, err)
	}
	return t, a.audit(ctx, action, id, "tenant", id, &before, t)
}

// RenameTenant changes a tenant's name.
func (a *Admin) RenameTenant(ctx context.Context, id, name string) (*Tenant, error) {
	return a.updateTenant(ctx, "tenant.rename", id, func(t *Tenant) error {
		clean, err := cleanName("name", name, t.ID)
		t.Name = clean
		return err
	})
}

// maySetTenantPolicy allows operators and the tenant's own writers to set
// the tenant's policies (second factor, secret age): another tenant does
// not exist for the actor, and viewers only read.
func maySetTenantPolicy(ctx context.Context, id string) error {
	actor := actorFrom(ctx)
	if !actor.sees(id) {
		return ErrTenantNotFound
	}
	if actor.ReadOnly {
		return ErrNotPermitted
	}
	return nil
}

// SetSecondFactorRequired sets whether every person of the tenant must set
// up a second factor. Operators and the tenant's own admins may: the policy
// is the tenant's, and turning it on only asks more of its people.
func (a *Admin) SetSecondFactorRequired(ctx context.Context, id string, required bool) (*Tenant, error) {
	if err := maySetTenantPolicy(ctx, id); err != nil {
		return nil, err
	}
	return a.changeTenant(ctx, "tenant.require_second_factor", id, func(t *Tenant) error {
		t.SecondFactorRequired = required
		return nil
	})
}

// maxSecretAgeDays bounds the policy: ten years.
const maxSecretAgeDays = 3650

// SetMaxSecretAge sets for how many days the tenant's clients' secrets work
// (0: without end). Like the second-factor policy it is the tenant's own:
// operators and the tenant's admins set it. Secrets older than a new,
// shorter bound stop working at once.
func (a *Admin) SetMaxSecretAge(ctx context.Context, id string, days int) (*Tenant, error) {
	if err := maySetTenantPolicy(ctx, id); err != nil {
		return nil, err
	}
	if days < 0 || days > maxSecretAgeDays {
		return nil, invalid("a maximum secret age is 0 (none) to %d days", maxSecretAgeDays)
	}
	t, err := a.changeTenant(ctx, "tenant.set_max_secret_age", id, func(t *Tenant) error {
		t.MaxSecretAgeDays = days
		return nil
	})
	if err == nil {
		_ = a.store.NotifyChange(ctx, TopicTenant, id) // the token endpoint's copy
	}
	return t, err
}

// DeleteTenant removes a tenant that has no client and no person left
// (*TenantInUseError otherwise), with its pending invitations; operators
// only. A watermark refuses any token still carrying its ID.
func (a *Admin) DeleteTenant(ctx context.Context, id string) error {
	if err := operatorOnly(ctx); err != nil {
		return err
	}
	t, err := a.store.DeleteTenant(ctx, id, func(t *Tenant) error { return checkVersion(ctx, TenantVersion(t)) })
	if err != nil {
		return fmt.Errorf("tenant %q: %w", id, err)
	}
	_ = a.store.NotifyChange(ctx, TopicTenant, id)
	if err := a.audit(ctx, "tenant.delete", id, "tenant", id, t, nil); err != nil {
		return err
	}
	return a.revoke(ctx, revocation.KindTenant, id, id, "tenant.delete")
}

// SetTenantStatus enables or disables a tenant; the token endpoint refuses
// the clients of a disabled tenant.
func (a *Admin) SetTenantStatus(ctx context.Context, id string, status TenantStatus) (*Tenant, error) {
	action := "tenant.enable"
	if status == TenantDisabled {
		action = "tenant.disable"
	}
	t, err := a.updateTenant(ctx, action, id, func(t *Tenant) error {
		t.Status = status
		return nil
	})
	if err != nil {
		return t, err
	}
	// Tenants are cached like clients: forget every copy of this one.
	_ = a.store.NotifyChange(ctx, TopicTenant, t.ID)
	if status != TenantDisabled {
		return t, nil
	}
	return t, a.revoke(ctx, revocation.KindTenant, t.ID, t.ID, action)
}

// SetTenantCeiling replaces a tenant's scope ceiling. Widening never widens
// a client. Narrowing below what clients hold is refused with a
// *CeilingError naming them, unless force, which narrows those clients
// first (each change audited).
func (a *Admin) SetTenantCeiling(ctx context.Context, id string, ceiling []string, force bool) (*Tenant, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	if err := validateScopes(ceiling); err != nil {
		return nil, err
	}
	if err := mayGrant(ctx, ceiling); err != nil {
		return nil, err
	}
	ceiling = dedupe(ceiling)
	clients, err := a.store.Clients(ctx, ClientQuery{TenantID: id})
	if err != nil {
		return nil, err
	}
	exceeding := map[string][]string{}
	for _, c := range clients {
		if outside := scopesOutside(c.Scopes, ceiling); len(outside) > 0 {
			exceeding[c.ID] = outside
		}
	}
	if len(exceeding) > 0 && !force {
		return nil, &CeilingError{TenantID: id, Exceeding: exceeding}
	}
	if _, err := a.store.Tenant(ctx, id); err != nil {
		return nil, fmt.Errorf("tenant %q: %w", id, err)
	}
	for clientID := range exceeding {
		if _, err := a.updateClient(ctx, "client.set_scopes", clientID, func(c *Client) error {
			c.Scopes = slices.DeleteFunc(c.Scopes, func(s string) bool { return !slices.Contains(ceiling, s) })
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return a.updateTenant(ctx, "tenant.set_ceiling", id, func(t *Tenant) error {
		t.ScopeCeiling = ceiling
		return nil
	})
}

// RotateSigningKey rotates the signing keys (see keys.Manager.Rotate) and
// records it.
func (a *Admin) RotateSigningKey(ctx context.Context, km *keys.Manager) (keys.SigningKey, error) {
	if err := operatorOnly(ctx); err != nil {
		return keys.SigningKey{}, err
	}
	key, err := km.Rotate(ctx)
	if err != nil {
		return keys.SigningKey{}, err
	}
	after := map[string]any{"kid": key.KID, "alg": key.Algorithm, "active_at": key.ActiveAt}
	return key, a.audit(ctx, "key.rotate", "", "key", key.KID, nil, after)
}

// SigningKeys lists the signing keys (public parts and dates): for
// operators.
func (a *Admin) SigningKeys(ctx context.Context, km *keys.Manager) ([]keys.Info, error) {
	if err := operatorOnly(ctx); err != nil {
		return nil, err
	}
	return km.Keys(), nil
}

// EncryptStoredKeys encrypts the signing keys stored in clear (see
// keys.Manager.EncryptStoredKeys) and records it when there were any.
func (a *Admin) EncryptStoredKeys(ctx context.Context, km *keys.Manager) (int, error) {
	if err := operatorOnly(ctx); err != nil {
		return 0, err
	}
	n, err := km.EncryptStoredKeys(ctx)
	if n > 0 {
		if aerr := a.audit(ctx, "key.encrypt", "", "key", "", nil, map[string]int{"encrypted": n}); aerr != nil && err == nil {
			err = aerr
		}
	}
	return n, err
}

// Client returns the client with the ID, if the actor may see it.
func (a *Admin) Client(ctx context.Context, id string) (*Client, error) {
	c, err := a.store.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, mayKnowClient(ctx, c)
}

// Clients returns a page of the clients the actor may see: of q.TenantID,
// or of every tenant for an operator when it is empty. A tenant's actor
// asking for another tenant gets an empty page, read from no row.
func (a *Admin) Clients(ctx context.Context, q ClientQuery) ([]*Client, error) {
	if actor := actorFrom(ctx); !actor.Operator {
		if actor.TenantID == "" || (q.TenantID != "" && q.TenantID != actor.TenantID) {
			return nil, nil
		}
		q.TenantID = actor.TenantID
	}
	return a.store.Clients(ctx, q)
}

// Tenant returns the tenant with the ID, if the actor may see it.
func (a *Admin) Tenant(ctx context.Context, id string) (*Tenant, error) {
	if !actorFrom(ctx).sees(id) {
		return nil, ErrTenantNotFound
	}
	return a.store.Tenant(ctx, id)
}

// Tenants returns the tenants the actor may see: every one for an
// operator, its own for a tenant's actor.
func (a *Admin) Tenants(ctx context.Context) ([]*Tenant, error) {
	actor := actorFrom(ctx)
	if actor.Operator {
		return a.store.Tenants(ctx)
	}
	if actor.TenantID == "" {
		return nil, nil
	}
	t, err := a.store.Tenant(ctx, actor.TenantID)
	if errors.Is(err, ErrTenantNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []*Tenant{t}, nil
}

// Audit returns audit records matching q that the actor may see: a
// tenant's actor sees its tenant's records only.
func (a *Admin) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	if actor := actorFrom(ctx); !actor.Operator {
		if actor.TenantID == "" || (q.TenantID != "" && q.TenantID != actor.TenantID) {
			return nil, nil
		}
		q.TenantID = actor.TenantID
	}
	return a.store.AuditRecords(ctx, q)
}

// clientAuditView is what the audit trail keeps of a client: never a secret
// or a hash, only the IDs of the secrets it holds.
type clientAuditView struct {
	Name          string       `json:"name"`
	TenantID      string       `json:"tenant_id,omitempty"`
	Scopes        []string     `json:"scopes"`
	Status        ClientStatus `json:"status"`
	TokenLifetime string       `json:"token_lifetime,omitempty"`
	SecretIDs     []string     `json:"secret_ids"`
	// The keys it authenticates with, by kid or URL.
	KeyIDs  []string `json:"key_ids,omitempty"`
	JWKSURI string   `json:"jwks_uri,omitempty"`
	KeyOnly bool     `json:"private_key_jwt_only,omitempty"`
}

func clientAudit(c *Client) *clientAuditView {
	if c == nil {
		return nil
	}
	v := &clientAuditView{Name: c.Name, TenantID: c.TenantID, Scopes: c.Scopes, Status: c.Status, SecretIDs: []string{}}
	if c.TokenLifetime > 0 {
		v.TokenLifetime = c.TokenLifetime.String()
	}
	for _, s := range c.Secrets {
		v.SecretIDs = append(v.SecretIDs, s.ID)
	}
	v.JWKSURI, v.KeyOnly = c.Keys.JWKSURI, c.Keys.Only
	if set, err := jwk.Parse(c.Keys.JWKS); err == nil {
		for i := range set.Len() {
			k, _ := set.Key(i)
			v.KeyIDs = append(v.KeyIDs, k.KeyID())
		}
	}
	return v
}

// audit appends a record of a change already made. before and after are
// the views of the target (nil when it did not or no longer exists).
func (a *Admin) audit(ctx context.Context, action, tenantID, targetType, targetID string, before, after any) error {
	actor := actorFrom(ctx)
	r := &AuditRecord{At: a.clock.Now().UTC(), Actor: actor.ID, Address: actor.Address, Action: action,
		TargetType: targetType, TargetID: targetID, TenantID: tenantID}
	var err error
	if r.Before, err = marshalAudit(before); err != nil {
		return err
	}
	if r.After, err = marshalAudit(after); err != nil {
		return err
	}
	if err := a.store.AppendAudit(ctx, r); err != nil {
		return fmt.Errorf("%s %s was done, but its audit record could not be written: %w", action, targetID, err)
	}
	return nil
}

func marshalAudit(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// EnsureTenantRecords creates a tenant record, with the union of its
// clients' scopes as ceiling, for every tenant that clients name but that
// has none: stores written before tenants were records. Idempotent, and safe
// with replicas starting together.
func EnsureTenantRecords(ctx context.Context, store AdminStore, clock Clock) error {
	clients, err := store.Clients(ctx, ClientQuery{})
	if err != nil {
		return err
	}
	ceilings := map[string][]string{}
	for _, c := range clients {
		if c.TenantID != "" {
			ceilings[c.TenantID] = dedupe(append(ceilings[c.TenantID], c.Scopes...))
		}
	}
	for id, ceiling := range ceilings {
		if _, err := store.Tenant(ctx, id); !errors.Is(err, ErrTenantNotFound) {
			if err != nil {
				return err
			}
			continue
		}
		now := clock.Now().UTC()
		sort.Strings(ceiling)
		t := &Tenant{ID: id, Name: id, Status: TenantActive, ScopeCeiling: ceiling, CreatedAt: now, UpdatedAt: now}
		switch err := store.CreateTenant(ctx, t); {
		case errors.Is(err, ErrTenantExists): // another replica was first
		case err != nil:
			return fmt.Errorf("migrate tenant %q: %w", id, err)
		default:
			after, _ := json.Marshal(t)
			if err := store.AppendAudit(ctx, &AuditRecord{At: now, Actor: "migration", Action: "tenant.create", TargetType: "tenant", TargetID: id, TenantID: id, After: after}); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateScopes(scopes []string) error {
	for _, s := range scopes {
		if !ValidScopeToken(s) {
			return invalid("scope %q is not a valid scope-token (RFC 6749 §3.3: printable ASCII, no spaces, quotes or backslashes)", s)
		}
	}
	return nil
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ErrAuthorityGone is an access token whose client is gone, disabled, or no
// longer of the token's tenant, or whose tenant is disabled.
var ErrAuthorityGone = errors.New("the token's client or tenant no longer holds this authority; get a new token")

// CurrentGrant is what an access token may do now: the scopes it was issued
// that its client still holds, while the client is active and of the
// token's tenant, and that tenant is active. Authority is read when it is
// used: a scope removed, a client or tenant disabled, takes effect at the
// next call, not when the token expires.
func (a *Admin) CurrentGrant(ctx context.Context, at keys.AccessToken) (keys.AccessToken, error) {
	c, err := a.store.Client(ctx, at.ClientID)
	if errors.Is(err, ErrClientNotFound) {
		return keys.AccessToken{}, ErrAuthorityGone
	}
	if err != nil {
		return keys.AccessToken{}, err
	}
	if c.Status != ClientActive || c.TenantID != at.TenantID {
		return keys.AccessToken{}, ErrAuthorityGone
	}
	if c.TenantID != "" {
		t, err := a.store.Tenant(ctx, c.TenantID)
		if errors.Is(err, ErrTenantNotFound) {
			return keys.AccessToken{}, ErrAuthorityGone
		}
		if err != nil {
			return keys.AccessToken{}, err
		}
		if t.Status != TenantActive {
			return keys.AccessToken{}, ErrAuthorityGone
		}
	}
	held := make([]string, 0, len(at.Scopes))
	for _, s := range at.Scopes {
		if slices.Contains(c.Scopes, s) {
			held = append(held, s)
		}
	}
	at.Scopes = held
	return at, nil
}
