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
