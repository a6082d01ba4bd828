package limit

import (
	"context"
	"time"
)

// Sleeper is a Clock that can also wait: a fake clock in tests moves its
// time on instead of blocking.
type Sleeper interface {
	Sleep(ctx context.Context, d time.Duration) error
}

// Sleep waits d on clock, or until ctx ends.
func Sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if s, ok := clock.(Sleeper); ok {
		return s.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxHeld bounds how many answers a Hold holds at once (each is a
// goroutine and a connection).
const maxHeld = 1024

// Hold holds answers back for a while (failures being slowed down),
// boundedly: past maxHeld an answer goes at once rather than holding the
// issuer's memory.
type Hold chan struct{}

// NewHold returns an empty Hold.
func NewHold() Hold { return make(Hold, maxHeld) }

// Wait holds the caller for d, or returns at once when d is not positive,
// ctx ends, or maxHeld answers are held already.
func (h Hold) Wait(ctx context.Context, clock Clock, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case h <- struct{}{}:
		defer func() { <-h }()
	default:
		return
	}
	_ = Sleep(ctx, clock, d)
}
