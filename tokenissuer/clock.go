package tokenissuer

import (
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
