package tokenissuer

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/revocation"
)

// feedPollInterval is how often the feed looks at the store for entries
// nobody announced (another process on SQLite, a lost NOTIFY).
const feedPollInterval = time.Second

// RevocationFeed serves the revocation feed (revocation.FeedPath) to the
// authz instances that follow it, holding each long poll until something
// changes, and keeps the issuer's own copy of the live set, which the admin
// API's token checks read.
type RevocationFeed struct {
	store  RevocationStore
	keys   *KeyManager
	issuer string
	clock  Clock
	log    *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, on every change

	set atomic.Pointer[revocation.Set]
	// waiting counts the long polls being held.
	waiting atomic.Int32
}

// NewRevocationFeed returns the feed of store; callers authenticate with
// this issuer's access tokens holding revocation.ReadScope.
func NewRevocationFeed(store RevocationStore, keys *KeyManager, issuer string, clock Clock, log *slog.Logger) *RevocationFeed {
	f := &RevocationFeed{store: store, keys: keys, issuer: issuer, clock: clock, log: log, changed: make(chan struct{})}
	f.set.Store(revocation.Empty())
	return f
}

// FollowChanges wakes the feed's long polls, and makes endpoints forget
// cached clients and tenants, as the store announces changes made by any
// process sharing it; it returns when ctx ends.
func FollowChanges(ctx context.Context, bus ChangeBus, e *Endpoints) {
	_ = bus.ListenChanges(ctx, func(topic, subject string) {
		switch topic {
		case TopicRevocation:
			e.Feed.Changed()
		case TopicClient:
			e.InvalidateClient(subject)
		case TopicTenant:
			e.InvalidateTenant(subject)
		}
	})
}

// Changed wakes every waiting long poll and refreshes the live set.
func (f *RevocationFeed) Changed() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *RevocationFeed) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Run keeps the live set current until ctx ends: at each change, and at
// least every second.
func (f *RevocationFeed) Run(ctx context.Context) {
	t := time.NewTicker(feedPollInterval)
	defer t.Stop()
	for {
		ch := f.wait()
		if err := f.refresh(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("reading revocations failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
	}
}

// refresh brings the live set up to the store, waking the long polls when
// the store moved without an announcement.
func (f *RevocationFeed) refresh(ctx context.Context) error {
	cur := f.set.Load()
	latest, err := f.store.LatestRevocation(ctx)
	if err != nil {
		return err
	}
	now := f.clock.Now()
	if latest == cur.Version() {
		f.set.Store(cur.Expire(now))
		return nil
	}
	feed, err := f.read(ctx, cur.Version(), latest)
	if err != nil {
		return err
	}
	f.set.Store(cur.Apply(feed, now))
	if latest > cur.Version() {
		f.Changed()
	}
	return nil
}

// Revoked reports whether the issuer's copy of the live set revokes tok.
func (f *RevocationFeed) Revoked(tok AccessToken) (revocation.Entry, bool) {
	return f.set.Load().Revoked(revocation.KeyOf(tok.ID), tok.ClientID, tok.TenantID, tok.IssuedAt.Unix())
}

// read answers a follower at since, given the store's latest Seq: the
// difference, or everything when since is 0 or ahead of the store (a store
// restored from a backup).
func (f *RevocationFeed) read(ctx context.Context, since, latest int64) (revocation.Feed, error) {
	full := since == 0 || since > latest
	after := since
	if full {
		after = 0
	}
	entries, err := f.store.Revocations(ctx, after, f.clock.Now())
	if err != nil {
		return revocation.Feed{}, err
	}
	version := latest
	if n := len(entries); n > 0 && entries[n-1].Seq > version {
		version = entries[n-1].Seq
	}
	return revocation.Feed{Version: version, Full: full, Entries: entries}, nil
}

// ServeHTTP serves GET revocation.FeedPath?since=N&wait=S: the entries
// after version N (all of them for N=0), held up to S seconds (at most
// revocation.MaxWait) until there is something to say.
func (f *RevocationFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status, challenge := f.authorize(r); status != 0 {
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, http.StatusText(status), status)
		return
	}
	q := r.URL.Query()
	since, err := strconv.ParseInt(q.Get("since"), 10, 64)
	if q.Get("since") == "" {
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
	// A long poll outlives the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(hold + 10*time.Second))
	deadline := time.NewTimer(hold)
	defer deadline.Stop()
	for {
		ch := f.wait()
		latest, err := f.store.LatestRevocation(r.Context())
		if err != nil {
			f.log.Error("revocation feed: reading the store failed", "err", err)
			http.Error(w, "the revocation store is unavailable", http.StatusServiceUnavailable)
			return
		}
		if latest != since || since == 0 {
			feed, err := f.read(r.Context(), since, latest)
			if err != nil {
				f.log.Error("revocation feed: reading the store failed", "err", err)
				http.Error(w, "the revocation store is unavailable", http.StatusServiceUnavailable)
				return
			}
			writeFeed(w, feed)
			return
		}
		f.waiting.Add(1)
		select {
		case <-ch:
			f.waiting.Add(-1)
		case <-deadline.C:
			f.waiting.Add(-1)
			writeFeed(w, revocation.Feed{Version: since, Entries: []revocation.Entry{}})
			return
		case <-r.Context().Done():
			f.waiting.Add(-1)
			return
		}
	}
}

func writeFeed(w http.ResponseWriter, feed revocation.Feed) {
	if feed.Entries == nil {
		feed.Entries = []revocation.Entry{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(feed)
}

// authorize checks the follower's access token (RFC 6750): 0 when it may
// read the feed, else the status and the WWW-Authenticate challenge.
func (f *RevocationFeed) authorize(r *http.Request) (int, string) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return http.StatusUnauthorized, `Bearer realm="portcullis revocations"`
	}
	at, err := f.keys.VerifyAccessToken(token, f.issuer, f.clock.Now())
	if err != nil {
		return http.StatusUnauthorized, `Bearer realm="portcullis revocations", error="invalid_token"`
	}
	// The follower's own token may be what was just revoked: look at the
	// store first (one query per long poll).
	if err := f.refresh(r.Context()); err != nil {
		f.log.Warn("reading revocations failed", "err", err)
	}
	if _, revoked := f.Revoked(at); revoked {
		return http.StatusUnauthorized, `Bearer realm="portcullis revocations", error="invalid_token", error_description="revoked"`
	}
	if !at.HasScope(revocation.ReadScope) {
		return http.StatusForbidden, `Bearer realm="portcullis revocations", error="insufficient_scope", scope="` + revocation.ReadScope + `"`
	}
	return 0, ""
}
