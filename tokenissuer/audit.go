package tokenissuer

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// AuditRecord is one change, as the audit trail keeps it: when, who, from
// where, what, and the changed fields before and after. It never holds a
// secret or a hash.
type AuditRecord struct {
	// Seq orders the trail; it is the pagination cursor.
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// Actor is who: "cli:<os user>", "client:<client ID>", "account:<email>".
	Actor   string `json:"actor"`
	Address string `json:"address,omitempty"`
	// Action is what, e.g. client.create, tenant.set_ceiling.
	Action     string `json:"action"`
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	// TenantID is the tenant the target belongs to, for tenant queries.
	TenantID string          `json:"tenant_id,omitempty"`
	Before   json.RawMessage `json:"before,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
}

// AuditQuery selects audit records; empty fields select everything.
type AuditQuery struct {
	TenantID, TargetID, Actor string
	// Action selects one action (client.set_scopes), or every action of a
	// kind when it ends with a dot (client.).
	Action       string
	Since, Until time.Time
	// AfterSeq continues a listing after the last record seen (oldest
	// first); BeforeSeq before it (newest first).
	AfterSeq, BeforeSeq int64
	// Newest lists the newest records first.
	Newest bool
	// Limit bounds the page (the store caps it).
	Limit int
}

// maxAuditPage bounds one page of the audit trail.
const maxAuditPage = 500

// PageLimit is how many records one page of q holds: its Limit, within
// the bound of one page.
func (q AuditQuery) PageLimit() int {
	if q.Limit <= 0 || q.Limit > maxAuditPage {
		return maxAuditPage
	}
	return q.Limit
}

// AuditStore keeps the append-only audit trail.
type AuditStore interface {
	// AppendAudit adds a record and sets its Seq.
	AppendAudit(ctx context.Context, r *AuditRecord) error
	// AuditRecords returns records matching q, oldest first (newest first
	// when q.Newest).
	AuditRecords(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	// PruneAudit drops records older than before (the retention).
	PruneAudit(ctx context.Context, before time.Time) error
}

// IdempotencyRecord remembers a change made with an Idempotency-Key, so a
// retried request is answered from it instead of being made twice.
type IdempotencyRecord struct {
	// Scope is who may reuse the key: the caller's client ID.
	Scope string
	Key   string
	// Fingerprint identifies the request (method, path, body); the same key
	// with another request is refused.
	Fingerprint string
	CreatedAt   time.Time
	// Done is false while the first request is being made.
	Done bool
	// Status and ResourceID are the first request's outcome.
	Status     int
	ResourceID string
}

// ErrIdempotencyKeyTaken is returned when a claim finds the key already
// recorded; the existing record is returned with it.
var ErrIdempotencyKeyTaken = errors.New("idempotency key already used")

// IdempotencyStore records changes made with an Idempotency-Key, shared by
// every replica.
type IdempotencyStore interface {
	// ClaimIdempotencyKey records rec (not done) unless (Scope, Key) is
	// recorded already; then it returns that record and
	// ErrIdempotencyKeyTaken.
	ClaimIdempotencyKey(ctx context.Context, rec IdempotencyRecord) (*IdempotencyRecord, error)
	// CompleteIdempotencyKey records the outcome of the claimed request.
	CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, resourceID string) error
	// ReleaseIdempotencyKey forgets a claim whose request failed, so a
	// retry may make it.
	ReleaseIdempotencyKey(ctx context.Context, scope, key string) error
	// PruneIdempotency forgets records created before t.
	PruneIdempotency(ctx context.Context, before time.Time) error
}
