package limit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

func TestMemoryIsBounded(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	l := NewFailures(2, time.Minute, 100, clock)
	for i := 0; i < 10_000; i++ {
		l.Fail(context.Background(), fmt.Sprintf("attacker-%d", i))
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("tracking %d keys, bound is 100", n)
	}
	// A recently failing key survives the flood.
	l.Fail(context.Background(), "attacker-9999")
	if blocked, _ := l.Blocked("attacker-9999"); !blocked {
		t.Fatal("most recent key was evicted")
	}
}
