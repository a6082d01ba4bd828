// Package limit counts events per key in fixed windows, in bounded memory:
// failed authentications (to refuse an address or slow a guesser) and an
// authenticated client's own bounds. The issuer decides what a limit does;
// this package only counts.
package limit

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"time"
)

// Clock tells the time; tests drive a fake one.
type Clock interface{ Now() time.Time }

// Store counts failures shared by every replica (the issuer's SQL store).
type Store interface {
	// RecordFailure counts a failure for key in the window that started
	// at most window ago (a new window starts otherwise), and returns the
	// count and the window's start.
	RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration) (failures int, windowStart time.Time, err error)
}

// Failures counts failed client authentications per key (a client ID or
// a remote address) in a fixed window and refuses a key that has failed too
// often until its window ends. Memory is bounded: at most maxEntries keys are
// tracked and the least recently failed key is forgotten first, so a flood of
// distinct keys cannot exhaust memory; each of those keys is itself limited.
type Failures struct {
	maxFailures int
	window      time.Duration
	maxEntries  int
	clock       Clock

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List // front = most recently failed
}

type failureEntry struct {
	key         string
	windowStart time.Time
	failures    int
}

// NewFailures returns a limiter allowing maxFailures failures per window
// for each key, tracking at most maxEntries keys.
func NewFailures(maxFailures int, window time.Duration, maxEntries int, clock Clock) *Failures {
	return &Failures{maxFailures: maxFailures, window: window, maxEntries: maxEntries, clock: clock,
		entries: make(map[string]*list.Element), lru: list.New()}
}

// Blocked reports whether key has used up its failures, and if so how long
// until it may try again.
func (l *Failures) Blocked(key string) (bool, time.Duration) {
	if l == nil || l.maxFailures <= 0 {
		return false, 0
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.entries[key]
	if !ok {
		return false, 0
	}
	e := el.Value.(*failureEntry)
	end := e.windowStart.Add(l.window)
	if !now.Before(end) {
		l.lru.Remove(el)
		delete(l.entries, key)
		return false, 0
	}
	if e.failures >= l.maxFailures {
		return true, end.Sub(now)
	}
	return false, 0
}

// Fail records a failed authentication for key.
func (l *Failures) Fail(_ context.Context, key string) {
	if l == nil || l.maxFailures <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(key, l.clock.Now()).failures++
}

// Take counts one event for key if key has not used up its window, in one
// step (two requests racing cannot both take the last one), and otherwise
// says how long until it may. Used as a plain rate limit (events per
// window), it bounds what an authenticated client does.
func (l *Failures) Take(key string) (bool, time.Duration) {
	if l == nil || l.maxFailures <= 0 {
		return true, 0
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key, now)
	if e.failures >= l.maxFailures {
		return false, e.windowStart.Add(l.window).Sub(now)
	}
	e.failures++
	return true, 0
}

// entry returns key's current window, starting a new one when it has none
// or its window has ended; l.mu is held.
func (l *Failures) entry(key string, now time.Time) *failureEntry {
	if el, ok := l.entries[key]; ok {
		e := el.Value.(*failureEntry)
		if !now.Before(e.windowStart.Add(l.window)) {
			e.windowStart, e.failures = now, 0
		}
		l.lru.MoveToFront(el)
		return e
	}
	for len(l.entries) >= l.maxEntries {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.entries, oldest.Value.(*failureEntry).key)
	}
	e := &failureEntry{key: key, windowStart: now}
	l.entries[key] = l.lru.PushFront(e)
	return e
}

// Prune forgets every key whose window has ended.
func (l *Failures) Prune() {
	if l == nil {
		return
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for el := l.lru.Back(); el != nil; {
		prev := el.Prev()
		e := el.Value.(*failureEntry)
		if !now.Before(e.windowStart.Add(l.window)) {
			l.lru.Remove(el)
			delete(l.entries, e.key)
		}
		el = prev
	}
}

// Len returns how many keys are tracked.
func (l *Failures) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// SharedFailures counts failures in the Store, so that replicas share
// one count per key: an attacker spreading guesses over N replicas does not
// get N times the limit. Each replica remembers locally which keys the shared
// count has blocked, so allowed requests cost no database round trip; a key
// that crosses the limit on one replica is blocked on another at its next
// failure there, so a window allows at most max_failures + replicas − 1
// guesses in all.
type SharedFailures struct {
	store       Store
	maxFailures int
	window      time.Duration
	maxEntries  int
	clock       Clock
	log         *slog.Logger

	mu      sync.Mutex
	blocked map[string]time.Time
}

// NewSharedFailures returns a store-backed limiter.
func NewSharedFailures(store Store, maxFailures int, window time.Duration, maxEntries int, clock Clock, log *slog.Logger) *SharedFailures {
	return &SharedFailures{store: store, maxFailures: maxFailures, window: window, maxEntries: maxEntries, clock: clock, log: log, blocked: map[string]time.Time{}}
}

// Blocked reports, from the local memory of blocked keys.
func (l *SharedFailures) Blocked(key string) (bool, time.Duration) {
	if l.maxFailures <= 0 {
		return false, 0
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.blocked[key]
	if !ok {
		return false, 0
	}
	if !now.Before(until) {
		delete(l.blocked, key)
		return false, 0
	}
	return true, until.Sub(now)
}

// Fail counts a failure: the shared count is incremented atomically
// and, past the limit, the key is blocked here until its window ends.
func (l *SharedFailures) Fail(ctx context.Context, key string) {
	if l.maxFailures <= 0 {
		return
	}
	now := l.clock.Now()
	n, start, err := l.store.RecordFailure(ctx, key, now, l.window)
	if err != nil {
		l.log.Warn("recording a failed authentication in the store failed", "err", err)
		return
	}
	if n < l.maxFailures {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.blocked) >= l.maxEntries {
		// Bounded memory: forget expired blocks first, then arbitrary ones
		// (the shared count still blocks them at their next failure).
		for k, until := range l.blocked {
			if !now.Before(until) {
				delete(l.blocked, k)
			}
		}
		for k := range l.blocked {
			if len(l.blocked) < l.maxEntries {
				break
			}
			delete(l.blocked, k)
		}
	}
	l.blocked[key] = start.Add(l.window)
}
