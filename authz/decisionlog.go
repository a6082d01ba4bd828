package authz

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// denialLogLimiter keeps a flood of denials (a 401 storm, a scanner) from
// flooding the logs: per reason, the first limit denials of each interval
// are logged, the rest are counted and reported in one summary line when
// the interval is over. Metrics still count every decision.
type denialLogLimiter struct {
	limit    int
	interval time.Duration
	clock    Clock
	log      *slog.Logger
	// budgets is built once for every reason and never written after, so
	// it is read without a lock; each budget has its own.
	budgets map[Reason]*reasonLogBudget
}

type reasonLogBudget struct {
	mu          sync.Mutex
	windowStart time.Time
	logged      int
	dropped     int
}

// newDenialLogLimiter returns a limiter, or nil (log everything) when
// limit is 0.
func newDenialLogLimiter(limit int, interval time.Duration, clock Clock, log *slog.Logger) *denialLogLimiter {
	if limit <= 0 || interval <= 0 {
		return nil
	}
	l := &denialLogLimiter{limit: limit, interval: interval, clock: clock, log: log, budgets: map[Reason]*reasonLogBudget{}}
	for _, r := range append([]Reason{ReasonAllowed, ReasonPublic}, reasonsWithDenials()...) {
		l.budgets[r] = &reasonLogBudget{}
	}
	return l
}

// allow reports whether a denial for reason may be logged now. When a new
// interval begins it first writes the summary of the one that ended.
func (l *denialLogLimiter) allow(reason Reason) bool {
	if l == nil {
		return true
	}
	b := l.budgets[reason]
	if b == nil {
		return true
	}
	now := l.clock.Now()
	b.mu.Lock()
	dropped := b.roll(now, l.interval)
	ok := b.logged < l.limit
	if ok {
		b.logged++
	} else {
		b.dropped++
	}
	b.mu.Unlock()
	l.summarize(reason, dropped)
	return ok
}

// flush writes the summaries of intervals that have ended, so the count of
// a flood that stopped is still reported.
func (l *denialLogLimiter) flush() {
	if l == nil {
		return
	}
	now := l.clock.Now()
	for reason, b := range l.budgets {
		b.mu.Lock()
		dropped := b.roll(now, l.interval)
		b.mu.Unlock()
		l.summarize(reason, dropped)
	}
}

// run flushes every interval until ctx ends.
func (l *denialLogLimiter) run(ctx context.Context) {
	if l == nil {
		return
	}
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.flush()
			return
		case <-t.C:
			l.flush()
		}
	}
}

// roll starts a new window when the current one has ended and returns how
// many log lines the ended window dropped. Called with mu held.
func (b *reasonLogBudget) roll(now time.Time, interval time.Duration) int {
	if now.Sub(b.windowStart) < interval {
		return 0
	}
	dropped := b.dropped
	b.windowStart, b.logged, b.dropped = now, 0, 0
	return dropped
}

func (l *denialLogLimiter) summarize(reason Reason, dropped int) {
	if dropped == 0 {
		return
	}
	level := slog.LevelInfo
	if reason == ReasonUnavailable {
		level = slog.LevelError
	}
	l.log.LogAttrs(context.Background(), level, "check log lines suppressed",
		slog.String("reason", string(reason)),
		slog.Int("suppressed", dropped),
		slog.Int("logged_per_interval", l.limit),
		slog.Duration("interval", l.interval))
}
