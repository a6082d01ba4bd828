package tokenissuer

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/tokenissuer/keys"
)

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
