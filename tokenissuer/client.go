package tokenissuer

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"time"
)

// ClientStatus says whether a client may obtain tokens.
type ClientStatus string

// Client statuses.
const (
	ClientActive   ClientStatus = "active"
	ClientDisabled ClientStatus = "disabled"
)

// MaxSecretsPerClient is how many secrets a client may hold at once: two, so a
// new secret can be rolled out before the old one is revoked.
const MaxSecretsPerClient = 2

// Client is an OAuth2 client allowed to use the client credentials grant.
type Client struct {
	ID       string       `json:"client_id"`
	Name     string       `json:"name"`
	TenantID string       `json:"tenant_id,omitempty"`
	Scopes   []string     `json:"scopes"`
	Status   ClientStatus `json:"status"`
	// TokenLifetime overrides the configured default when positive.
	TokenLifetime time.Duration `json:"-"`
	Secrets       []Secret      `json:"secrets"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	// LastUsedAt is when the client last got a token, to within the
	// usage flush interval; zero when it never has (or not since this was
	// recorded).
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Keys are the public keys the client signs its private_key_jwt
	// assertions with (RFC 7523 §2.2), when it has any.
	Keys ClientKeys `json:"keys,omitzero"`
	// KeysLastUsedAt is when each key (by kid) last got a token.
	KeysLastUsedAt map[string]time.Time `json:"key_last_used_at,omitempty"`
}

// ClientKeys are a client's public keys: a JWKS given inline, or the URL
// it is fetched from; and whether they are its only way to authenticate.
type ClientKeys struct {
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// Only makes private_key_jwt the client's only method: it holds no
	// secret, and none can be made for it.
	Only bool `json:"private_key_jwt_only,omitempty"`
}

// Any reports whether keys are registered.
func (k ClientKeys) Any() bool { return len(k.JWKS) > 0 || k.JWKSURI != "" }

// Secret is one stored client secret: only its keyed hash is kept, and a
// hint (its last characters) that tells a person which string a deployment
// holds without revealing it.
type Secret struct {
	ID   string `json:"id"`
	Hash []byte `json:"-"`
	// Lookup finds the secret from the secret alone (a leak report holds
	// no client ID): a keyed hash of it, empty for secrets made before.
	Lookup    []byte    `json:"-"`
	Hint      string    `json:"hint,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is when the secret last got a token (see
	// Client.LastUsedAt); zero when never.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// secretHintLength is how many of a secret's last characters its hint
// keeps: enough to tell two secrets apart, far too few to help guess one
// (the rest holds over 230 bits).
const secretHintLength = 4

// SecretHint returns the hint stored for secret: its last characters.
func SecretHint(secret string) string {
	if len(secret) <= secretHintLength*4 {
		return "" // not a generated secret; a hint would give too much away
	}
	return secret[len(secret)-secretHintLength:]
}

// IdleSince is when the secret was last used, or created when it never
// was: the start of the time it has been idle.
func (s Secret) IdleSince() time.Time {
	if s.LastUsedAt.IsZero() {
		return s.CreatedAt
	}
	return s.LastUsedAt
}

// SecretHashes returns the hashes of every secret the client holds.
func (c *Client) SecretHashes() [][]byte {
	hashes := make([][]byte, len(c.Secrets))
	for i, s := range c.Secrets {
		hashes[i] = s.Hash
	}
	return hashes
}

// Store errors.
var (
	ErrClientNotFound = errors.New("client not found")
	ErrClientExists   = errors.New("a client with this ID already exists")
	// ErrClientQuota is a tenant at its quota of clients (tenants.max_clients).
	ErrClientQuota = errors.New("the tenant has as many clients as tenants.max_clients allows; delete one first")
)

// ClientStore keeps clients; the token endpoint reads them and Admin
// changes them.
type ClientStore interface {
	// CreateClient stores a new client; ErrClientExists if the ID is taken,
	// ErrClientQuota if its tenant already has maxPerTenant clients (0: no
	// quota), counted in the same transaction so that racing creations
	// cannot pass it together.
	CreateClient(ctx context.Context, c *Client, maxPerTenant int) error
	// Client returns the client with the ID, or ErrClientNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// Clients returns a page of clients ordered by ID: it reads only the
	// rows it returns.
	Clients(ctx context.Context, q ClientQuery) ([]*Client, error)
	// UpdateClient applies update to the client atomically (read, modify,
	// write in one transaction) and returns the result.
	UpdateClient(ctx context.Context, id string, update func(*Client) error) (*Client, error)
	// DeleteClient removes the client and its secrets if check, run on the
	// client in the same transaction, allows it, and returns what it
	// removed; ErrClientNotFound when there is no such client.
	DeleteClient(ctx context.Context, id string, check func(*Client) error) (*Client, error)
	// SecretByLookup returns the client and secret IDs of the secret whose
	// Lookup is lookup, or ErrSecretNotFound.
	SecretByLookup(ctx context.Context, lookup []byte) (clientID, secretID string, err error)
}

// ClientQuery selects a page of clients.
type ClientQuery struct {
	// TenantID selects one tenant's clients; empty selects every client.
	TenantID string
	// After continues after this client ID.
	After string
	// Limit bounds the page; 0 returns every client selected.
	Limit int
}

// idPattern keeps client and tenant IDs safe in URLs, logs, headers and
// Basic credentials.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// maxClientIDLength is the longest client ID idPattern allows.
const maxClientIDLength = 128

// ValidClientID reports whether id is a client ID the issuer could have
// created: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter
// or digit. The length is checked first, so an 8 KB ID costs nothing.
func ValidClientID(id string) bool {
	return len(id) > 0 && len(id) <= maxClientIDLength && idPattern.MatchString(id)
}
