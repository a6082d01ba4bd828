// Package feed serves the revocation feed (revocation.FeedPath) to the
// authz instances that follow it, from memory: one goroutine reads the
// store once per change and publishes an immutable log that every long
// poll and stream reads, so the store's work does not grow with the
// number of followers.
package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer/keys"
)

// Store is the revocation log the feed reads.
type Store interface {
	// Revocations returns the entries after afterSeq not expired at now,
	// in Seq order.
	Revocations(ctx context.Context, afterSeq int64, now time.Time) ([]revocation.Entry, error)
	// LatestRevocation returns the highest Seq (0: none yet).
	LatestRevocation(ctx context.Context) (int64, error)
}

// Clock tells the time; tests drive a fake one.
type Clock interface{ Now() time.Time }

const (
	// PollInterval is how often the feed looks at the store for entries
	// nobody announced (another process on SQLite, a lost NOTIFY).
	PollInterval = time.Second
	// feedPageEntries bounds one answer of the feed (about 1.5 MB of JSON),
	// far below what a follower accepts: a set of any size arrives in pages.
	feedPageEntries = 10_000
	// feedCompactEvery is how often expired entries leave the feed's
	// memory. Serving them a little longer is harmless: every token they
	// cover has expired.
	feedCompactEvery = 30 * time.Second
	// firstReadWait is how long a follower that asks before the feed's
	// first read of the store is held for it.
	firstReadWait = 5 * time.Second
	// feedTokenCacheSize bounds how many followers' access tokens are kept
	// verified; past it, a token is verified on each poll.
	feedTokenCacheSize = 100_000
)

// Feed serves the revocation feed (revocation.FeedPath) to the
// authz instances that follow it, and keeps the issuer's own copy of the
// live set, which the admin API's token checks read.
//
// Followers are served from memory: one goroutine (Run) reads the store
// once per change and publishes an immutable feedLog; every long poll reads
// that, so the store's work does not grow with the number of followers.
type Feed struct {
	store  Store
	keys   *keys.Manager
	issuer string
	clock  Clock
	log    *slog.Logger

	// changed is closed, and replaced, when the log moves. It is an atomic
	// pointer, not a field behind a mutex: ten thousand polls woken at once
	// all read it again, and a mutex would park most of them.
	changed atomic.Pointer[chan struct{}]

	state atomic.Pointer[feedLog]
	// poke asks Run to read the store now (an announced change).
	poke chan struct{}
	// closing is closed when the issuer shuts down.
	closing   chan struct{}
	closeOnce sync.Once
	// waiting counts the long polls and streams being held.
	waiting atomic.Int32

	tokens verifiedTokens
	// PageEntries bounds one answer (feedPageEntries; tests make it small).
	PageEntries int
	// clientTokens counts each client's live token entries
	// (rate_limit.revoked_tokens_per_client); written by Run only.
	countMu      sync.Mutex
	clientTokens map[string]int
	// OnEntries hears of every entry the feed reads from the store after
	// its first read, before followers do.
	OnEntries func([]revocation.Entry)
}

// feedLog is one published state of the feed: the live set and the same
// entries in Seq order, from which any follower's difference is a slice.
type feedLog struct {
	version int64
	set     *revocation.Set
	// entries is in Seq order. Later logs may append to the same backing
	// array past this log's length, which this log never reads.
	entries []revocation.Entry
	// loaded is false until the store has been read once.
	loaded bool
	// compacted is when expired entries were last dropped.
	compacted time.Time
	// answers holds this log's encoded answers by answerKey, each a
	// *encodedAnswer: followers at one version share one encoding.
	answers sync.Map
}

type answerKey struct {
	since int64
	full  bool
}

// encodedAnswer is encoded once, by whichever follower asks first.
type encodedAnswer struct {
	once sync.Once
	body []byte
	// version and more are the page's: where a stream goes on from.
	version int64
	more    bool
}

// New returns the feed of store; callers authenticate with
// this issuer's access tokens holding revocation.ReadScope. It serves
// nothing until Run has read the store.
func New(store Store, km *keys.Manager, issuer string, clock Clock, log *slog.Logger) *Feed {
	f := &Feed{store: store, keys: km, issuer: issuer, clock: clock, log: log,
		poke: make(chan struct{}, 1), closing: make(chan struct{}), PageEntries: feedPageEntries}
	f.state.Store(&feedLog{set: revocation.Empty()})
	ch := make(chan struct{})
	f.changed.Store(&ch)
	return f
}

// Changed tells the feed that the store has new entries: Run reads them
// and wakes the long polls. Any number of calls before Run gets to it cost
// one read.
func (f *Feed) Changed() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// wait is closed when the log next moves. Read it before the log: a poll
// that reads the new log has what it waits for, and one that reads the old
// log holds the channel the change closes.
func (f *Feed) wait() <-chan struct{} { return *f.changed.Load() }

func (f *Feed) wake() {
	next := make(chan struct{})
	close(*f.changed.Swap(&next))
}

// Run keeps the feed current until ctx ends: at each announced change, and
// at least every second for changes nobody announced. It is the only
// writer of the feed's state, so two reads can never publish out of order.
func (f *Feed) Run(ctx context.Context) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	announced := true // the first read is a full one
	for {
		if err := f.refresh(ctx, announced); err != nil && ctx.Err() == nil {
			f.log.Warn("reading revocations failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-f.poke:
			announced = true
		case <-t.C:
			announced = false
		}
	}
}

// refresh brings the feed up to the store. After an announcement it reads
// the new entries at once (one query); on the ticker it first asks the
// store's version, so an idle feed costs one small query a second.
func (f *Feed) refresh(ctx context.Context, announced bool) error {
	cur := f.state.Load()
	now := f.clock.Now()
	if !cur.loaded {
		return f.reload(ctx, now)
	}
	if !announced {
		latest, err := f.store.LatestRevocation(ctx)
		if err != nil {
			return err
		}
		switch {
		case latest < cur.version:
			// The store went back (restored from a backup): start again, and
			// every follower ahead of it gets the whole set.
			f.log.Warn("the revocation store is behind the feed; reloading it", "store_version", latest, "feed_version", cur.version)
			return f.reload(ctx, now)
		case latest == cur.version:
			f.compact(cur, now)
			return nil
		}
	}
	fresh, err := f.store.Revocations(ctx, cur.version, now)
	if err != nil {
		return err
	}
	if len(fresh) == 0 {
		f.compact(cur, now)
		return nil
	}
	if f.OnEntries != nil {
		f.OnEntries(fresh)
	}
	f.countTokens(fresh, false)
	next := &feedLog{loaded: true, compacted: cur.compacted, version: max(cur.version, fresh[len(fresh)-1].Seq),
		entries: append(cur.entries, fresh...)}
	next.set = cur.set.Apply(revocation.Feed{Version: next.version, Entries: fresh})
	f.publish(next)
	f.compact(next, now)
	return nil
}

// reload reads the whole live set from the store.
func (f *Feed) reload(ctx context.Context, now time.Time) error {
	latest, err := f.store.LatestRevocation(ctx)
	if err != nil {
		return err
	}
	entries, err := f.store.Revocations(ctx, 0, now)
	if err != nil {
		return err
	}
	version := latest
	if n := len(entries); n > 0 {
		version = max(version, entries[n-1].Seq)
	}
	f.countTokens(entries, true)
	f.publish(&feedLog{loaded: true, compacted: now, version: version, entries: entries,
		set: revocation.Empty().Apply(revocation.Feed{Version: version, Full: true, Entries: entries})})
	return nil
}

// countTokens adds entries' token entries to the per-client counts, or
// makes them the counts.
func (f *Feed) countTokens(entries []revocation.Entry, replace bool) {
	f.countMu.Lock()
	defer f.countMu.Unlock()
	if replace || f.clientTokens == nil {
		f.clientTokens = map[string]int{}
	}
	for _, e := range entries {
		if e.Kind == revocation.KindToken && e.Client != "" {
			f.clientTokens[e.Client]++
		}
	}
}

// TokenEntries is how many live single-token revocations the client has.
func (f *Feed) TokenEntries(clientID string) int {
	f.countMu.Lock()
	defer f.countMu.Unlock()
	return f.clientTokens[clientID]
}

func (f *Feed) publish(next *feedLog) {
	f.state.Store(next)
	f.wake()
}

// compact drops expired entries from memory, at most every
// feedCompactEvery: a walk of the whole set, not something to do per change.
func (f *Feed) compact(cur *feedLog, now time.Time) {
	if now.Sub(cur.compacted) < feedCompactEvery {
		return
	}
	n := now.Unix()
	live := make([]revocation.Entry, 0, len(cur.entries))
	for _, e := range cur.entries {
		if e.Expires > n {
			live = append(live, e)
		}
	}
	f.countTokens(live, true)
	next := &feedLog{loaded: true, compacted: now, version: cur.version, entries: live, set: cur.set.Expire(now)}
	// Followers hold the same version: nothing to wake them for.
	f.state.Store(next)
}

// Revoked reports whether the issuer's copy of the live set revokes tok.
func (f *Feed) Revoked(tok keys.AccessToken) (revocation.Entry, bool) {
	return f.state.Load().set.Revoked(revocation.KeyOf(tok.ID), tok.ClientID, tok.TenantID, tok.IssuedAt.Unix())
}

// Set is the issuer's copy of the live set.
func (f *Feed) Set() *revocation.Set { return f.state.Load().set }

// Waiting is how many long polls and streams are held now.
func (f *Feed) Waiting() int { return int(f.waiting.Load()) }

// Loaded reports whether the feed has read the store once: until then it
// holds followers rather than serve them an empty set.
func (f *Feed) Loaded() bool { return f.state.Load().loaded }

// page answers a follower: the live entries after since (all of them for a
// full answer), at most limit of them.
func (l *feedLog) page(since int64, full bool, now time.Time, limit int) revocation.Feed {
	after := since
	if full {
		after = 0
	}
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].Seq > after })
	out := revocation.Feed{Version: l.version, Full: full, Entries: make([]revocation.Entry, 0, min(len(l.entries)-i, limit))}
	n := now.Unix()
	for _, e := range l.entries[i:] {
		if len(out.Entries) == limit {
			out.More = true
			out.Version = out.Entries[len(out.Entries)-1].Seq
			break
		}
		if e.Expires > n {
			out.Entries = append(out.Entries, e)
		}
	}
	return out
}

// ServeHTTP serves GET revocation.FeedPath?since=N&wait=S: the entries
// after version N, held up to S seconds (at most revocation.MaxWait) until
// there is something to say. Without since, the follower has nothing yet
// and gets the whole set at once (in pages when it is large); since=0 is a
// follower of a store that has revoked nothing, and it waits like any other.
func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at, status, challenge := f.authorize(r)
	if status != 0 {
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, http.StatusText(status), status)
		return
	}
	q := r.URL.Query()
	full := !q.Has("since")
	since, err := strconv.ParseInt(q.Get("since"), 10, 64)
	if full {
		since, err = 0, nil
	}
	wait, werr := strconv.Atoi(q.Get("wait"))
	if q.Get("wait") == "" {
		wait, werr = 0, nil
	}
	if err != nil || since < 0 || werr != nil || wait < 0 {
		http.Error(w, "since must be a version (0 or more) and wait a number of seconds", http.StatusBadRequest)
		return
	}
	hold := min(time.Duration(wait)*time.Second, revocation.MaxWait)
	if q.Get("stream") == "1" {
		// A silent stream beats every 1.5 waits: often enough for proxies'
		// idle timeouts (Envoy's stream idle timeout is 5 minutes) and for
		// the follower to notice a dead connection.
		f.stream(w, r, at, since, full, 3*max(hold, time.Second)/2)
		return
	}
	if !f.state.Load().loaded {
		// The first read of the store is a moment away: a follower that
		// asks before it waits for it, whatever its wait.
		hold = max(hold, firstReadWait)
	}
	// A long poll outlives the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(hold + 10*time.Second))
	deadline := time.NewTimer(hold)
	defer deadline.Stop()
	for {
		ch := f.wait()
		cur := f.state.Load()
		if cur.loaded {
			switch {
			case full || since > cur.version:
				// A fresh follower, or one ahead of the store (restored from a
				// backup): the whole set.
				f.writeFeed(w, cur, since, true)
				return
			case since < cur.version:
				f.writeFeed(w, cur, since, false)
				return
			}
		}
		f.waiting.Add(1)
		select {
		case <-ch:
			f.waiting.Add(-1)
		case <-deadline.C:
			f.waiting.Add(-1)
			if !cur.loaded {
				http.Error(w, "the revocation store has not been read yet", http.StatusServiceUnavailable)
				return
			}
			f.writeFeed(w, cur, since, false)
			return
		case <-r.Context().Done():
			f.waiting.Add(-1)
			return
		case <-f.closing:
			// The issuer is shutting down: answer now rather than hold
			// the shutdown for the rest of the wait.
			f.waiting.Add(-1)
			if cur.loaded {
				f.writeFeed(w, cur, since, false)
			}
			return
		}
	}
}

// stream serves the feed as a stream (revocation.StreamType): what a long
// poll at since would answer, then every change as it happens, on one
// connection. A change then costs a follower one write, not an answer, a
// new request and its authentication. The stream ends when the follower's
// token expires or is revoked, after revocation.MaxStream, or when the
// issuer shuts down; the follower connects again.
func (f *Feed) stream(w http.ResponseWriter, r *http.Request, at keys.AccessToken, since int64, full bool, heartbeat time.Duration) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", revocation.StreamType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in between must not hold the lines back
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	end := time.NewTimer(min(at.Expiry.Sub(f.clock.Now()), revocation.MaxStream))
	defer end.Stop()
	// Streams beat together, at the multiples of their period on the
	// clock: ten thousand beats in one burst cost the issuer like one
	// change (a write each), where beats spread over the period would each
	// wake the idle process on their own, several times the cost.
	beat := time.NewTimer(untilMultiple(time.Now(), heartbeat))
	defer beat.Stop()
	f.waiting.Add(1)
	defer f.waiting.Add(-1)
	for {
		ch := f.wait()
		cur := f.state.Load()
		if cur.loaded && (full || since != cur.version) {
			full = full || since > cur.version
			for {
				_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				a := f.answer(cur, since, full)
				if _, err := w.Write(a.body); err != nil {
					return
				}
				since, full = a.version, false
				if !a.more {
					break
				}
			}
			if rc.Flush() != nil {
				return
			}
			if _, revoked := f.Revoked(at); revoked {
				return // its token: the follower authenticates again
			}
		}
		select {
		case <-ch:
		case <-beat.C:
			beat.Reset(untilMultiple(time.Now(), heartbeat))
			if cur.loaded {
				_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := w.Write(f.answer(cur, since, false).body); err != nil || rc.Flush() != nil {
					return
				}
			}
		case <-end.C:
			return
		case <-r.Context().Done():
			return
		case <-f.closing:
			return
		}
	}
}

// answer is l's answer to a follower at since, encoded once per log.
func (f *Feed) answer(l *feedLog, since int64, full bool) *encodedAnswer {
	v, _ := l.answers.Load(answerKey{since, full})
	if v == nil {
		v, _ = l.answers.LoadOrStore(answerKey{since, full}, &encodedAnswer{})
	}
	a := v.(*encodedAnswer)
	a.once.Do(func() {
		var buf bytes.Buffer
		page := l.page(since, full, f.clock.Now(), f.PageEntries)
		_ = json.NewEncoder(&buf).Encode(page) // one line: Encode ends it with a newline
		a.body, a.version, a.more = buf.Bytes(), page.Version, page.More
	})
	return a
}

// untilMultiple is how long from now until the next multiple of period
// since the Unix epoch.
func untilMultiple(now time.Time, period time.Duration) time.Duration {
	return period - time.Duration(now.UnixNano()%int64(period))
}

// Close ends the held long polls (answered at once) and streams, so that a
// graceful shutdown does not wait for them.
func (f *Feed) Close() {
	f.closeOnce.Do(func() { close(f.closing) })
}

// writeFeed writes l's answer to a follower at since. Followers at the same
// version get the same bytes: the answer is encoded once per change, not
// once per follower.
func (f *Feed) writeFeed(w http.ResponseWriter, l *feedLog, since int64, full bool) {
	a := f.answer(l, since, full)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	_, _ = w.Write(a.body)
}

// authorize checks the follower's access token (RFC 6750): the token and
// 0 when it may read the feed, else the status and the WWW-Authenticate
// challenge.
func (f *Feed) authorize(r *http.Request) (keys.AccessToken, int, string) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return keys.AccessToken{}, http.StatusUnauthorized, `Bearer realm="portcullis revocations"`
	}
	now := f.clock.Now()
	at, ok := f.tokens.get(token, now)
	if !ok {
		var err error
		if at, err = f.keys.VerifyAccessToken(token, f.issuer, now); err != nil {
			return keys.AccessToken{}, http.StatusUnauthorized, `Bearer realm="portcullis revocations", error="invalid_token"`
		}
		f.tokens.put(token, at, now)
	}
	// The follower's own token may have been revoked: the feed's memory
	// has every revocation the store had at the last change or second.
	if _, revoked := f.Revoked(at); revoked {
		return keys.AccessToken{}, http.StatusUnauthorized, `Bearer realm="portcullis revocations", error="invalid_token", error_description="revoked"`
	}
	if !at.HasScope(revocation.ReadScope) {
		return keys.AccessToken{}, http.StatusForbidden, `Bearer realm="portcullis revocations", error="insufficient_scope", scope="` + revocation.ReadScope + `"`
	}
	return at, 0, ""
}

// verifiedTokens remembers followers' verified access tokens until they
// expire, so that a long poll costs a hash, not a signature check: ten
// thousand followers reconnecting after a change would otherwise verify ten
// thousand signatures.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]keys.AccessToken
}

func (c *verifiedTokens) get(token string, now time.Time) (keys.AccessToken, bool) {
	key := sha256.Sum256([]byte(token))
	c.mu.RLock()
	at, ok := c.m[key]
	c.mu.RUnlock()
	return at, ok && now.Before(at.Expiry)
}

func (c *verifiedTokens) put(token string, at keys.AccessToken, now time.Time) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]keys.AccessToken{}
	}
	if len(c.m) >= feedTokenCacheSize {
		for k, v := range c.m {
			if !now.Before(v.Expiry) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= feedTokenCacheSize {
			return
		}
	}
	c.m[key] = at
}
