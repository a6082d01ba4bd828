package tokenissuer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis/portcullis/tokenissuer/limit"
)

// signInGuard holds the limits of portal sign-in. They slow the sender and
// never lock out the rightful owner:
//
//   - An address (the sender's own, or the one a trusted proxy passes on,
//     IPv6 by /64) that failed max times in a window is refused (429) until
//     the window ends.
//   - An account is something anyone can name, so it is never refused:
//     past max failures in a window, each further attempt for it waits
//     first, 1×, 2×, 4× … the delay up to 16×. The owner with the right
//     password still signs in, a few seconds late; a guesser gets a handful
//     of guesses a minute per connection, and the password pool bounds the
//     connections.
//
// Attempts are counted before the password is checked, in one atomic
// store statement, so concurrent attempts cannot all pass a limit that each
// of them checked alone; a right password gives its attempt back. Counts
// live in the store: replicas share them, and an operator's CLI clears them.
type signInGuard struct {
	store    FailureStore
	max      int
	window   time.Duration
	delay    time.Duration
	clock    Clock
	log      *slog.Logger
	maxMemos int

	mu sync.Mutex
	// refused remembers addresses over their limit until their window
	// ends, so a flood from one costs no store write per request.
	refused map[string]time.Time
	// held holds attempts back; past its bound an attempt goes on at once
	// (the password pool still bounds the work).
	held limit.Hold
}

// maxSignInDelayFactor caps the progressive delay at 16 times the first.
const maxSignInDelayFactor = 16

func newSignInGuard(store FailureStore, max int, window, delay time.Duration, maxEntries int, clock Clock, log *slog.Logger) *signInGuard {
	return &signInGuard{store: store, max: max, window: window, delay: delay, clock: clock, log: log, maxMemos: maxEntries,
		refused: map[string]time.Time{}, held: limit.NewHold()}
}

func signInAddressKey(address string) string { return "portal-address:" + address }
func signInAccountKey(email string) string   { return "portal-account:" + email }

// admit counts an attempt to sign in to account (an email; "" when none
// could exist) from address, refusing an address over its limit and holding
// back an attempt for an account over its limit.
func (g *signInGuard) admit(ctx context.Context, account, address string) error {
	now := g.clock.Now()
	if until, ok := g.refusedUntil(address, now); ok {
		return &RateLimitedError{RetryAfter: until.Sub(now)}
	}
	n, start, err := g.store.RecordFailure(ctx, signInAddressKey(address), now, g.window)
	if err != nil {
		return fmt.Errorf("count a sign-in attempt: %w", err)
	}
	if n > g.max {
		until := start.Add(g.window)
		g.refuse(address, until, now)
		return &RateLimitedError{RetryAfter: until.Sub(now)}
	}
	if account == "" {
		return nil
	}
	if n, _, err = g.store.RecordFailure(ctx, signInAccountKey(account), now, g.window); err != nil {
		return fmt.Errorf("count a sign-in attempt: %w", err)
	}
	if n > g.max {
		g.log.Warn("failed sign-ins for one account past the limit; slowing its attempts down", "account_email", account, "remote", address, "failures", n-1)
		g.held.Wait(ctx, g.clock, g.delayFor(n-g.max))
	}
	return ctx.Err()
}

// delayFor is the wait before the k-th attempt past the limit.
func (g *signInGuard) delayFor(k int) time.Duration {
	factor := 1
	for ; k > 1 && factor < maxSignInDelayFactor; k-- {
		factor *= 2
	}
	return g.delay * time.Duration(factor)
}

// passed gives back the attempt of a right password: the address's count,
// and the account's too when the sign-in is complete (a right password
// with a second factor still to come keeps the account's count, so that
// guesses at the code stay limited).
func (g *signInGuard) passed(ctx context.Context, account, address string, complete bool) {
	if err := g.store.ForgiveFailure(ctx, signInAddressKey(address)); err != nil {
		g.log.Warn("giving back a sign-in attempt failed", "err", err)
	}
	if complete && account != "" {
		if err := g.store.ClearFailures(ctx, signInAccountKey(account)); err != nil {
			g.log.Warn("clearing an account's failed sign-ins failed", "err", err)
		}
	}
}

// clear forgets an account's failed sign-ins (an operator's unlock).
func (g *signInGuard) clear(ctx context.Context, account string) error {
	return g.store.ClearFailures(ctx, signInAccountKey(account))
}

func (g *signInGuard) refusedUntil(address string, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.refused[address]
	if ok && !now.Before(until) {
		delete(g.refused, address)
		return time.Time{}, false
	}
	return until, ok
}

func (g *signInGuard) refuse(address string, until, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.refused) >= g.maxMemos {
		// Bounded memory: forget ended windows, then any (the store still
		// counts them; forgetting costs a write, not a guess).
		for k, u := range g.refused {
			if !now.Before(u) || len(g.refused) >= g.maxMemos {
				delete(g.refused, k)
			}
		}
	}
	g.refused[address] = until
}
