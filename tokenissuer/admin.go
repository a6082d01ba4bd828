package tokenissuer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Admin manages clients in a Store: the operations behind `issuer clients`.
type Admin struct {
	store  ClientStore
	hasher *SecretHasher
	clock  Clock
	// maxTokenLifetime caps per-client token lifetimes (tokens.max_lifetime;
	// 0: no cap). Old keys stay published only that long, so a longer
	// lifetime would outlive its key.
	maxTokenLifetime time.Duration
}

// NewAdmin returns an Admin on store.
func NewAdmin(store ClientStore, hasher *SecretHasher, clock Clock, maxTokenLifetime time.Duration) *Admin {
	return &Admin{store: store, hasher: hasher, clock: clock, maxTokenLifetime: maxTokenLifetime}
}

// clientIDPattern keeps client IDs safe in URLs, logs, headers and Basic
// credentials.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// maxClientIDLength is the longest client ID clientIDPattern allows.
const maxClientIDLength = 128

// ValidClientID reports whether id is a client ID the issuer could have
// created: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter
// or digit. The length is checked first, so an 8 KB ID costs nothing.
func ValidClientID(id string) bool {
	return len(id) > 0 && len(id) <= maxClientIDLength && clientIDPattern.MatchString(id)
}

// NewClient describes a client to create.
type NewClient struct {
	// ID is generated when empty.
	ID            string
	Name          string
	TenantID      string
	Scopes        []string
	TokenLifetime time.Duration
}

// Errors of client management.
var (
	ErrTooManySecrets = fmt.Errorf("the client already holds %d secrets; revoke one first", MaxSecretsPerClient)
	ErrLastSecret     = errors.New("this is the client's only secret; rotate first or disable the client")
	ErrSecretNotFound = errors.New("the client has no secret with this ID")
)

// CreateClient creates an active client with one generated secret, returned
// in clear text: it is never stored nor shown again.
func (a *Admin) CreateClient(ctx context.Context, nc NewClient) (*Client, string, error) {
	if nc.ID == "" {
		nc.ID = "client-" + newID(12)
	}
	if !ValidClientID(nc.ID) {
		return nil, "", fmt.Errorf("client ID %q: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", nc.ID)
	}
	if nc.TenantID != "" && !clientIDPattern.MatchString(nc.TenantID) {
		return nil, "", fmt.Errorf("tenant ID %q: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", nc.TenantID)
	}
	if err := validateScopes(nc.Scopes); err != nil {
		return nil, "", err
	}
	if nc.TokenLifetime < 0 {
		return nil, "", errors.New("token lifetime must not be negative")
	}
	if a.maxTokenLifetime > 0 && nc.TokenLifetime > a.maxTokenLifetime {
		return nil, "", fmt.Errorf("token lifetime %s is longer than tokens.max_lifetime (%s), the longest any token may live", nc.TokenLifetime, a.maxTokenLifetime)
	}
	secret, err := GenerateSecret()
	if err != nil {
		return nil, "", err
	}
	now := a.clock.Now().UTC()
	c := &Client{
		ID: nc.ID, Name: nc.Name, TenantID: nc.TenantID, Scopes: dedupe(nc.Scopes), Status: ClientActive,
		TokenLifetime: nc.TokenLifetime, CreatedAt: now, UpdatedAt: now,
		Secrets: []Secret{{ID: newID(6), Hash: a.hasher.Hash(nc.ID, secret), CreatedAt: now}},
	}
	if err := a.store.CreateClient(ctx, c); err != nil {
		return nil, "", fmt.Errorf("client %q: %w", nc.ID, err)
	}
	return c, secret, nil
}

// RotateSecret adds a second secret to the client and returns it in clear
// text; both secrets work until the old one is revoked.
func (a *Admin) RotateSecret(ctx context.Context, id string) (*Client, Secret, string, error) {
	secret, err := GenerateSecret()
	if err != nil {
		return nil, Secret{}, "", err
	}
	now := a.clock.Now().UTC()
	added := Secret{ID: newID(6), Hash: a.hasher.Hash(id, secret), CreatedAt: now}
	c, err := a.store.UpdateClient(ctx, id, func(c *Client) error {
		if len(c.Secrets) >= MaxSecretsPerClient {
			return ErrTooManySecrets
		}
		c.Secrets = append(c.Secrets, added)
		c.UpdatedAt = now
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
	return a.store.UpdateClient(ctx, id, func(c *Client) error {
		if len(c.Secrets) <= 1 {
			return ErrLastSecret
		}
		idx := 0
		if secretID != "" {
			idx = -1
			for i, s := range c.Secrets {
				if s.ID == secretID {
					idx = i
				}
			}
			if idx < 0 {
				return ErrSecretNotFound
			}
		}
		c.Secrets = append(c.Secrets[:idx:idx], c.Secrets[idx+1:]...)
		c.UpdatedAt = a.clock.Now().UTC()
		return nil
	})
}

// SetStatus enables or disables a client.
func (a *Admin) SetStatus(ctx context.Context, id string, status ClientStatus) (*Client, error) {
	return a.store.UpdateClient(ctx, id, func(c *Client) error {
		c.Status = status
		c.UpdatedAt = a.clock.Now().UTC()
		return nil
	})
}

// SetScopes replaces the client's scopes.
func (a *Admin) SetScopes(ctx context.Context, id string, scopes []string) (*Client, error) {
	if err := validateScopes(scopes); err != nil {
		return nil, err
	}
	return a.store.UpdateClient(ctx, id, func(c *Client) error {
		c.Scopes = dedupe(scopes)
		c.UpdatedAt = a.clock.Now().UTC()
		return nil
	})
}

func validateScopes(scopes []string) error {
	for _, s := range scopes {
		if !ValidScopeToken(s) {
			return fmt.Errorf("scope %q is not a valid scope-token (RFC 6749 §3.3: printable ASCII, no spaces, quotes or backslashes)", s)
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
