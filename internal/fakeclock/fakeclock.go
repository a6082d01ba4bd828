// Package fakeclock is a clock for tests that moves only when told, so that
// a test walks through expiry, rotation and waiting without sleeping.
package fakeclock

import (
	"context"
	"sync"
	"time"
)

// Start is where a new Clock stands: a fixed instant, so that runs agree.
var Start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a fake clock; its zero value is not usable, use New.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock standing at Start.
func New() *Clock { return &Clock{now: Start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep moves the clock on by d: a fake clock never blocks.
func (c *Clock) Sleep(_ context.Context, d time.Duration) error {
	c.Advance(d)
	return nil
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// At returns a Clock standing at t.
func At(t time.Time) *Clock { return &Clock{now: t} }
