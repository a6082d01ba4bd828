package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// pagedFeed is the feed's wire protocol over a fixed set, served in pages
// of pageEntries: what an issuer with a large set answers. It records the
// queries it was asked.
type pagedFeed struct {
	entries     []revocation.Entry
	pageEntries int

	mu      sync.Mutex
	queries []string
	held    chan struct{}
}

func (p *pagedFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth2/token" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"feed-token","token_type":"Bearer","expires_in":3600}`)
		return
	}
	p.mu.Lock()
	p.queries = append(p.queries, r.URL.RawQuery)
	p.mu.Unlock()
	q := r.URL.Query()
	version := int64(len(p.entries))
	full := !q.Has("since")
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	if !full && since == version {
		// Nothing new: held, like the issuer's long poll.
		select {
		case p.held <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		return
	}
	page := revocation.Feed{Version: version, Full: full}
	for _, e := range p.entries {
		if e.Seq <= since {
			continue
		}
		if len(page.Entries) == p.pageEntries {
			page.More, page.Version = true, page.Entries[len(page.Entries)-1].Seq
			break
		}
		page.Entries = append(page.Entries, e)
	}
	json.NewEncoder(w).Encode(page)
}

// followPagedFeed runs a follower of feed, with max_bytes of 1 MiB and a
// wait of 5 s, until the test ends.
func followPagedFeed(t *testing.T, feed *pagedFeed) *RevocationFollower {
	t.Helper()
	srv := httptest.NewServer(feed)
	t.Cleanup(srv.Close)
	cfg := RevocationConfig{Enabled: true, FeedURL: srv.URL + revocation.FeedPath, TokenURL: srv.URL + "/oauth2/token", ClientID: "authz", ClientSecret: "s",
		Wait: 5 * time.Second, MaxStaleness: time.Minute, OnStale: "serve", MaxBytes: 1 << 20}
	f, err := NewRevocationFollower(cfg, SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go f.Run(ctx)
	return f
}

// TestAFreshAuthzGetsASetLargerThanOneAnswer: a set whose one document
// would exceed revocation.max_bytes arrives in pages; authz becomes ready
// only with the whole set, and then waits at its version (a set at version
// 0 too: no since=0 loop).
func TestAFreshAuthzGetsASetLargerThanOneAnswer(t *testing.T) {
	t.Parallel()
	const size = 30_000
	exp := time.Now().Add(time.Hour).Unix()
	feed := &pagedFeed{pageEntries: 5_000, held: make(chan struct{}, 1)}
	for i := range size {
		feed.entries = append(feed.entries, revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindToken, Subject: fmt.Sprint("jti-", i), Expires: exp, Cause: "test"})
	}
	f := followPagedFeed(t, feed)
	select {
	case <-feed.held:
	case <-time.After(time.Minute):
		t.Fatal("the follower never reached a held poll")
	}
	if !f.Ready() || f.Current().Len() != size || f.Current().Version() != size {
		t.Fatalf("ready %v, %d entries at version %d", f.Ready(), f.Current().Len(), f.Current().Version())
	}
	if _, revoked := f.Current().Revoked(revocation.KeyOf("jti-29999"), "", "", 0); !revoked {
		t.Fatal("the last page's entry is missing")
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	// It asks for a stream; this feed answers as an older issuer would,
	// with one document each, and is long-polled.
	want := []string{"stream=1&wait=5", "since=5000&stream=1&wait=5", "since=10000&stream=1&wait=5", "since=15000&stream=1&wait=5",
		"since=20000&stream=1&wait=5", "since=25000&stream=1&wait=5", "since=30000&stream=1&wait=5"}
	if fmt.Sprint(feed.queries) != fmt.Sprint(want) {
		t.Fatalf("queries %q, want %q", feed.queries, want)
	}
}

// TestAFollowerOfAnEmptyStoreWaits: at version 0, the follower asks
// since=0 and is held like any other, instead of asking for the whole
// (empty) set in a loop.
func TestAFollowerOfAnEmptyStoreWaits(t *testing.T) {
	t.Parallel()
	feed := &pagedFeed{pageEntries: 10, held: make(chan struct{}, 1)}
	f := followPagedFeed(t, feed)
	select {
	case <-feed.held:
	case <-time.After(time.Minute):
		t.Fatal("the follower never waited")
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if want := []string{"stream=1&wait=5", "since=0&stream=1&wait=5"}; fmt.Sprint(feed.queries) != fmt.Sprint(want) || !f.Ready() {
		t.Fatalf("queries %q, want %q (ready %v)", feed.queries, want, f.Ready())
	}
}

// TestGuessingAtTheFeedClientLeavesAuthzCurrent: the feed client's ID is
// in every sample configuration. A hundred wrong secrets for it from a
// hundred addresses must not keep a new authz from becoming ready, nor from
// following revocations.
func TestGuessingAtTheFeedClientLeavesAuthzCurrent(t *testing.T) {
	t.Parallel()
	iss := startRealIssuer(t, "EdDSA", func(c *server.Config) {
		c.RateLimit.MaxFailures, c.RateLimit.FailureDelay = 3, time.Millisecond
		c.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	})
	id, secret := followerCredentials(t, iss.Server)
	for i := range 100 {
		req, _ := http.NewRequest(http.MethodPost, iss.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		req.SetBasicAuth(id, fmt.Sprint("guess-", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %s", i, resp.Status)
		}
	}
	az := followingAuthz(t, iss, id, secret, "")
	az.waitReady(t)
	leaked := iss.Token(t, "")
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(leaked)); !r.allowed {
		t.Fatalf("before the revocation: %s", r.reason)
	}
	revokeToken(t, iss.URL, iss.ClientID, iss.ClientSecret, leaked)
	untilAllDeny(t, time.Now(), leaked, az)
}

// TestRetriesAfterAFailureAreSpread: a fleet that lost its issuer together
// does not come back in the same millisecond.
func TestRetriesAfterAFailureAreSpread(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{500 * time.Millisecond, 10 * time.Second} {
		seen := map[time.Duration]bool{}
		lo, hi := d, time.Duration(0)
		for range 1000 {
			j := jitter(d)
			if j < d/2 || j > d {
				t.Fatalf("jitter(%s) = %s, outside [%s, %s]", d, j, d/2, d)
			}
			seen[j] = true
			lo, hi = min(lo, j), max(hi, j)
		}
		if len(seen) < 900 || hi-lo < d/3 {
			t.Fatalf("jitter(%s): %d distinct values over [%s, %s]", d, len(seen), lo, hi)
		}
	}
}

// TestManyUnderscoredNamesAreKeptOnceEach: past the names compared one by
// one, the map finds repeats in any case, and every distinct name is kept
// (each may imitate a trusted header and must be removed).
func TestManyUnderscoredNamesAreKeptOnceEach(t *testing.T) {
	t.Parallel()
	var r Request
	for i := range 1000 {
		noteUnderscored(&r, fmt.Sprintf("x_h_%d", i))
		noteUnderscored(&r, fmt.Sprintf("X_H_%d", i))
	}
	noteUnderscored(&r, "x_auth_user_id")
	noteUnderscored(&r, "X_Auth_User_Id")
	if len(r.Underscored) != 1001 || r.Underscored[1000] != "x_auth_user_id" {
		t.Fatalf("%d names kept, last %q", len(r.Underscored), r.Underscored[len(r.Underscored)-1])
	}
}

// BenchmarkNoteUnderscored: the cost of a request's underscored names
// grows with their number, not its square.
func BenchmarkNoteUnderscored(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("x_h_%d", i)
		}
		b.Run(fmt.Sprint("names=", n), func(b *testing.B) {
			for b.Loop() {
				var r Request
				for _, name := range names {
					noteUnderscored(&r, name)
				}
			}
		})
	}
}
