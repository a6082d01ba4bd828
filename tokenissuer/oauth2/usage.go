package oauth2

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/limit"
)

// UsageFlushInterval is how often the last-used times gathered in memory are
// written: the times shown are this coarse, and a busy client costs the
// store one write an interval per replica, not one per token.
const UsageFlushInterval = time.Minute

// maxPendingUses bounds the uses held between flushes. It is reached only
// by more distinct secrets getting tokens in one interval than that; the
// rest wait for the next flush's room.
const maxPendingUses = 100_000

type useKey struct{ clientID, secretID string }

// UsageRecorder gathers the last use of each client and secret in memory
// and writes them in batches.
type UsageRecorder struct {
	store tokenissuer.UsageStore
	clock tokenissuer.Clock
	log   *slog.Logger

	mu      sync.Mutex
	pending map[useKey]time.Time
}

// NewUsageRecorder returns a recorder writing to store.
func NewUsageRecorder(store tokenissuer.UsageStore, clock tokenissuer.Clock, log *slog.Logger) *UsageRecorder {
	return &UsageRecorder{store: store, clock: clock, log: log, pending: map[useKey]time.Time{}}
}

// Note records that the client got a token with the secret at at. It never
// touches the store.
func (u *UsageRecorder) Note(clientID, secretID string, at time.Time) {
	k := useKey{clientID, secretID}
	u.mu.Lock()
	defer u.mu.Unlock()
	if prev, ok := u.pending[k]; ok {
		if at.After(prev) {
			u.pending[k] = at
		}
		return
	}
	if len(u.pending) < maxPendingUses {
		u.pending[k] = at
	}
}

// Flush writes the uses gathered since the last flush. Uses that could not
// be written are kept for the next one.
func (u *UsageRecorder) Flush(ctx context.Context) error {
	u.mu.Lock()
	pending := u.pending
	u.pending = make(map[useKey]time.Time, len(pending))
	u.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	uses := make([]tokenissuer.Usage, 0, len(pending))
	for k, at := range pending {
		uses = append(uses, tokenissuer.Usage{ClientID: k.clientID, SecretID: k.secretID, At: at})
	}
	if err := u.store.RecordUsage(ctx, uses); err != nil {
		for _, use := range uses {
			u.Note(use.ClientID, use.SecretID, use.At)
		}
		return err
	}
	return nil
}

// Run flushes every UsageFlushInterval until ctx ends. Whoever stops it
// flushes once more after the last request, so that a graceful shutdown
// loses nothing.
func (u *UsageRecorder) Run(ctx context.Context) {
	for limit.Sleep(ctx, u.clock, UsageFlushInterval) == nil {
		if err := u.Flush(ctx); err != nil {
			u.log.Warn("recording when clients last got tokens failed; retrying at the next flush", "err", err)
		}
	}
}
