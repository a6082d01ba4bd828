package tokenissuer

import (
	"context"
	"time"
)

// Clock tells the time; tests inject a fake one to walk through key rotation
// and token expiry without sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// sleeper is a Clock that can also wait: a fake clock in tests moves its
// time on instead of blocking.
type sleeper interface {
	Sleep(ctx context.Context, d time.Duration) error
}

// sleep waits d on clock, or until ctx ends.
func sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if s, ok := clock.(sleeper); ok {
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

// maxHeldAnswers bounds how many answers a heldBack holds at once (each is
// a goroutine and a connection).
const maxHeldAnswers = 1024

// heldBack holds answers back for a while (failures being slowed down),
// boundedly: past maxHeldAnswers an answer goes at once rather than
// holding the issuer's memory.
type heldBack chan struct{}

func newHeldBack() heldBack { return make(heldBack, maxHeldAnswers) }

// wait holds the caller for d, or returns at once when d is not positive,
// ctx ends, or maxHeldAnswers are held already.
func (h heldBack) wait(ctx context.Context, clock Clock, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case h <- struct{}{}:
		defer func() { <-h }()
	default:
		return
	}
	_ = sleep(ctx, clock, d)
}
