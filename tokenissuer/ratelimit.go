package tokenissuer

import (
	"container/list"
	"sync"
	"time"
)

// FailureLimiter counts failed client authentications per key (a client ID or
// a remote address) in a fixed window and refuses a key that has failed too
// often until its window ends. Memory is bounded: at most maxEntries keys are
// tracked and the least recently failed key is forgotten first, so a flood of
// distinct keys cannot exhaust memory; each of those keys is itself limited.
type FailureLimiter struct {
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

// NewFailureLimiter returns a limiter allowing maxFailures failures per window
// for each key, tracking at most maxEntries keys.
func NewFailureLimiter(maxFailures int, window time.Duration, maxEntries int, clock Clock) *FailureLimiter {
	return &FailureLimiter{maxFailures: maxFailures, window: window, maxEntries: maxEntries, clock: clock,
		entries: make(map[string]*list.Element), lru: list.New()}
}

// Blocked reports whether key has used up its failures, and if so how long
// until it may try again.
func (l *FailureLimiter) Blocked(key string) (bool, time.Duration) {
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
func (l *FailureLimiter) Fail(key string) {
	if l == nil || l.maxFailures <= 0 {
		return
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.entries[key]; ok {
		e := el.Value.(*failureEntry)
		if !now.Before(e.windowStart.Add(l.window)) {
			e.windowStart, e.failures = now, 0
		}
		e.failures++
		l.lru.MoveToFront(el)
		return
	}
	for len(l.entries) >= l.maxEntries {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.entries, oldest.Value.(*failureEntry).key)
	}
	l.entries[key] = l.lru.PushFront(&failureEntry{key: key, windowStart: now, failures: 1})
}

// Len returns how many keys are tracked.
func (l *FailureLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
