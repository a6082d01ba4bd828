package tokenissuer

import (
	"context"
	"errors"
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
	UsageStore
	AssertionStore
	Close() error
}

// ErrAssertionReplayed is a client assertion whose ID was used before.
var ErrAssertionReplayed = errors.New("the client assertion was used before")

// AssertionStore remembers the IDs (jti) of the private_key_jwt
// assertions used, until they expire, for every replica: an assertion is
// good once (RFC 7523 §3).
type AssertionStore interface {
	// UseAssertionID records jti of clientID, or returns
	// ErrAssertionReplayed when it is recorded already.
	UseAssertionID(ctx context.Context, clientID, jti string, expires time.Time) error
	// PruneAssertionIDs forgets IDs of assertions expired before t.
	PruneAssertionIDs(ctx context.Context, before time.Time) error
}

// Usage is a token issued: to which client, with which of its secrets (or
// keys: "key:" and the kid), when.
type Usage struct {
	ClientID, SecretID string
	At                 time.Time
}

// KeyUsePrefix marks a Usage of a key, not a secret.
const KeyUsePrefix = "key:"

// UsageStore keeps when each client and secret last got a token.
type UsageStore interface {
	// RecordUsage moves each named client's and secret's last-used time
	// forward to At (never back: replicas flush in any order), in one
	// transaction, without changing the client's version. Uses of clients
	// or secrets that no longer exist are dropped.
	RecordUsage(ctx context.Context, uses []Usage) error
}
