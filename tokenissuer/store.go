package tokenissuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"strings"
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
}

// Secret is one stored client secret: only its keyed hash is kept.
type Secret struct {
	ID        string    `json:"id"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
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

// where returns the query's WHERE clause and arguments, ph naming the
// dialect's n-th placeholder.
func (q ClientQuery) where(ph func(n int) string) (string, []any) {
	var conds []string
	var args []any
	if q.TenantID != "" {
		args = append(args, q.TenantID)
		conds = append(conds, "tenant_id = "+ph(len(args)))
	}
	if q.After != "" {
		args = append(args, q.After)
		conds = append(conds, "id > "+ph(len(args)))
	}
	sql := ""
	if len(conds) > 0 {
		sql = " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY id"
	if q.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return sql, args
}

// FailureStore counts failed authentications for the shared failure limit.
type FailureStore interface {
	// RecordFailure counts a failed authentication for key in the window
	// that started at most window ago (a new window starts otherwise), and
	// returns the count and the window's start. Shared by every replica.
	RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration) (failures int, windowStart time.Time, err error)
	// ForgiveFailure takes one back from key's count (an attempt that
	// turned out rightful); ClearFailures forgets key's count.
	ForgiveFailure(ctx context.Context, key string) error
	ClearFailures(ctx context.Context, key string) error
	// PruneFailures forgets windows that started before t.
	PruneFailures(ctx context.Context, before time.Time) error
}

// Store is a whole store as OpenStore returns it: the embedded SQLite store,
// or the PostgreSQL store used by several issuer replicas. Each consumer
// takes only the part it uses.
type Store interface {
	ClientStore
	TenantStore
	AuditStore
	IdempotencyStore
	keys.Store
	FailureStore
	AccountStore
	RevocationStore
	ChangeBus
	Close() error
}

func joinScopes(scopes []string) string { return strings.Join(scopes, " ") }

func splitScopes(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// The two SQL stores share their row decoding: database/sql and pgx rows
// both offer these methods.
type (
	rowScanner interface {
		Scan(dest ...any) error
	}
	rowsScanner interface {
		Next() bool
		Scan(dest ...any) error
		Err() error
	}
)

// clientColumns is the SELECT list scanClient expects.
const clientColumns = `id, name, tenant_id, scopes, status, token_lifetime_ns, created_at, updated_at`

// scanClient decodes one row of clientColumns; the driver's "no rows" error
// is returned as is.
func scanClient(row rowScanner) (*Client, error) {
	c := &Client{}
	var scopes, status string
	var lifetime, created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.TenantID, &scopes, &status, &lifetime, &created, &updated); err != nil {
		return nil, err
	}
	c.Scopes, c.Status, c.TokenLifetime = splitScopes(scopes), ClientStatus(status), time.Duration(lifetime)
	c.CreatedAt, c.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return c, nil
}

// scanSecrets decodes rows of (id, hash, created_at).
func scanSecrets(rows rowsScanner) ([]Secret, error) {
	secrets := []Secret{}
	for rows.Next() {
		var sec Secret
		var at int64
		if err := rows.Scan(&sec.ID, &sec.Hash, &at); err != nil {
			return nil, fmt.Errorf("read client secrets: %w", err)
		}
		sec.CreatedAt = fromUnixNano(at)
		secrets = append(secrets, sec)
	}
	return secrets, rows.Err()
}

// signingKeyColumns is the SELECT list scanSigningKeys expects.
const signingKeyColumns = `kid, algorithm, private_jwk, created_at, active_at, retire_at`

func scanSigningKeys(rows rowsScanner) ([]keys.SigningKey, error) {
	var out []keys.SigningKey
	for rows.Next() {
		var k keys.SigningKey
		var created, active, retire int64
		if err := rows.Scan(&k.KID, &k.Algorithm, &k.PrivateJWK, &created, &active, &retire); err != nil {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		k.CreatedAt, k.ActiveAt, k.RetireAt = fromUnixNano(created), fromUnixNano(active), fromUnixNano(retire)
		out = append(out, k)
	}
	return out, rows.Err()
}

// clientsByID loads each listed client, skipping any deleted meanwhile.
func clientsByID(ctx context.Context, s ClientStore, ids []string) ([]*Client, error) {
	clients := make([]*Client, 0, len(ids))
	for _, id := range ids {
		c, err := s.Client(ctx, id)
		if errors.Is(err, ErrClientNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// tenantColumns is the SELECT list scanTenant expects.
const tenantColumns = `id, name, status, scope_ceiling, created_at, updated_at`

func scanTenant(row rowScanner) (*Tenant, error) {
	t := &Tenant{}
	var status, ceiling string
	var created, updated int64
	if err := row.Scan(&t.ID, &t.Name, &status, &ceiling, &created, &updated); err != nil {
		return nil, err
	}
	t.Status, t.ScopeCeiling = TenantStatus(status), splitScopes(ceiling)
	t.CreatedAt, t.UpdatedAt = fromUnixNano(created), fromUnixNano(updated)
	return t, nil
}

// scanTenants decodes rows of tenantColumns.
func scanTenants(rows rowsScanner) ([]*Tenant, error) {
	out := []*Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// auditColumns is the SELECT list scanAudit expects.
const auditColumns = `seq, at, actor, address, action, target_type, target_id, tenant_id, before_json, after_json`

func scanAudit(rows rowsScanner) ([]AuditRecord, error) {
	out := []AuditRecord{}
	for rows.Next() {
		var r AuditRecord
		var at int64
		var before, after string
		if err := rows.Scan(&r.Seq, &at, &r.Actor, &r.Address, &r.Action, &r.TargetType, &r.TargetID, &r.TenantID, &before, &after); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		r.At = fromUnixNano(at)
		if before != "" {
			r.Before = json.RawMessage(before)
		}
		if after != "" {
			r.After = json.RawMessage(after)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// auditFilter builds the WHERE clause of q with placeholders made by ph
// (SQLite "?", PostgreSQL "$n").
func auditFilter(q AuditQuery, ph func(n int) string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.Replace(cond, "?", ph(len(args)), 1))
	}
	add("seq > ?", q.AfterSeq)
	if q.TenantID != "" {
		add("tenant_id = ?", q.TenantID)
	}
	if q.TargetID != "" {
		add("target_id = ?", q.TargetID)
	}
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if !q.Since.IsZero() {
		add("at >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("at < ?", q.Until.UnixNano())
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

func rawOrEmpty(m json.RawMessage) string {
	if len(m) == 0 {
		return ""
	}
	return string(m)
}

// idempotencyColumns is the SELECT list scanIdempotency expects.
const idempotencyColumns = `scope, key, fingerprint, created_at, done, status, resource_id`

func scanIdempotency(row rowScanner) (*IdempotencyRecord, error) {
	r := &IdempotencyRecord{}
	var created int64
	if err := row.Scan(&r.Scope, &r.Key, &r.Fingerprint, &created, &r.Done, &r.Status, &r.ResourceID); err != nil {
		return nil, err
	}
	r.CreatedAt = fromUnixNano(created)
	return r, nil
}
