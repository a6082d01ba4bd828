package oauth2_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/feed"
	"github.com/portcullis/portcullis/tokenissuer/server"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore/storetest"
)

func postRevoke(t *testing.T, base, body, authorization string) (int, string, http.Header) {
	t.Helper()
	status, raw, header := postForm(t, base+"/oauth2/revoke", formType, body, authorization)
	return status, string(raw), header
}

// TestRevocationEndpoint covers RFC 7009: a client revokes its own token;
// another client's token is refused; a token that is not valid is answered
// 200 with nothing to do.
func TestRevocationEndpoint(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	ctx := operatorContext()
	_, secretA := ti.createClient(tokenissuer.NewClient{ID: "app-a", Scopes: []string{"a"}})
	_, secretB := ti.createClient(tokenissuer.NewClient{ID: "app-b", Scopes: []string{"a"}})
	tok := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("app-a", secretA)).body["access_token"].(string)
	revoked := func() int {
		entries, err := ti.store.Revocations(ctx, 0, ti.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}

	for name, tc := range map[string]struct {
		body, auth string
		status     int
		code       string
	}{
		"no token":              {"", basic("app-a", secretA), http.StatusBadRequest, "invalid_request"},
		"wrong secret":          {"token=" + tok, basic("app-a", "wrong"), http.StatusUnauthorized, "invalid_client"},
		"no client":             {"token=" + tok, "", http.StatusUnauthorized, "invalid_client"},
		"another client's":      {"token=" + tok, basic("app-b", secretB), http.StatusBadRequest, "unauthorized_client"},
		"garbage token":         {"token=not.a.token", basic("app-a", secretA), http.StatusOK, ""},
		"a token of nobody's":   {"token=" + tok[:len(tok)-4] + "AAAA", basic("app-a", secretA), http.StatusOK, ""},
		"duplicated parameters": {"token=" + tok + "&token=" + tok, basic("app-a", secretA), http.StatusBadRequest, "invalid_request"},
	} {
		status, body, _ := postRevoke(t, ti.http.URL, tc.body, tc.auth)
		if status != tc.status || (tc.code != "" && !strings.Contains(body, `"`+tc.code+`"`)) {
			t.Errorf("%s: %d %s, want %d %s", name, status, body, tc.status, tc.code)
		}
	}
	if n := revoked(); n != 0 {
		t.Fatalf("%d revocations after refused requests", n)
	}

	status, body, header := postRevoke(t, ti.http.URL, url.Values{"token": {tok}, "token_type_hint": {"access_token"}, "client_id": {"app-a"}, "client_secret": {secretA}}.Encode(), "")
	if status != http.StatusOK || body != "" || header.Get("Cache-Control") != "no-store" {
		t.Fatalf("revoke: %d %q %v", status, body, header)
	}
	entries, _ := ti.store.Revocations(ctx, 0, ti.clock.Now())
	if len(entries) != 1 || entries[0].Kind != revocation.KindToken || entries[0].Subject == "" || entries[0].Expires <= ti.clock.Now().Unix() {
		t.Fatalf("entries: %+v", entries)
	}
	if entries[0].Client != "app-a" {
		t.Fatalf("the entry does not name the token's client: %+v", entries[0])
	}
	// A client revoking its own token is routine: it does not bury the
	// tenant's audit trail.
	if records, _ := ti.store.AuditRecords(ctx, tokenissuer.AuditQuery{Actor: "client:app-a"}); len(records) != 0 {
		t.Fatalf("audit: %+v", records)
	}

	resp, err := http.Get(ti.http.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["revocation_endpoint"] != ti.cfg.Issuer+"/oauth2/revoke" {
		t.Fatalf("metadata: %v", md)
	}
}

func getFeed(t *testing.T, base, token, query string) (int, revocation.Feed, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+revocation.FeedPath+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var feed revocation.Feed
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&feed); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, feed, resp.Header
}

// TestRevocationFeed covers who may read the feed, full and incremental
// answers, long polls woken by a change, and entries dropped once every
// token they cover has expired.
func TestRevocationFeed(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	ti := startIssuer(t, testConfig(t.TempDir()), clock)
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	_, followerSecret := ti.createClient(tokenissuer.NewClient{ID: "authz", Scopes: []string{revocation.ReadScope}})
	_, otherSecret := ti.createClient(tokenissuer.NewClient{ID: "app", Scopes: []string{"a"}})
	ti.createClient(tokenissuer.NewClient{ID: "app-2", Scopes: []string{"a"}})
	follower := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("authz", followerSecret)).body["access_token"].(string)
	other := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("app", otherSecret)).body["access_token"].(string)

	if status, _, h := getFeed(t, ti.http.URL, "", ""); status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("anonymous: %d %v", status, h)
	}
	if status, _, h := getFeed(t, ti.http.URL, other, ""); status != http.StatusForbidden || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("without the scope: %d %v", status, h)
	}
	if status, _, _ := getFeed(t, ti.http.URL, follower, "?since=x"); status != http.StatusBadRequest {
		t.Fatalf("bad since: %d", status)
	}
	status, feed, _ := getFeed(t, ti.http.URL, follower, "")
	if status != http.StatusOK || !feed.Full || feed.Version != 0 || len(feed.Entries) != 0 || feed.More {
		t.Fatalf("empty feed: %d %+v", status, feed)
	}
	// A follower of a store that never revoked anything waits like any
	// other: since=0 is a version, not a request for everything.
	if _, feed, _ = getFeed(t, ti.http.URL, follower, "?since=0&wait=0"); feed.Full || feed.Version != 0 || len(feed.Entries) != 0 {
		t.Fatalf("since=0 at version 0: %+v", feed)
	}
	held := longPoll(t, ti, follower, "?since=0&wait=30")

	if err := ti.admin.RevokeClientTokens(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if f := receive(t, held); f.Full || f.Version != 1 || len(f.Entries) != 1 || f.Entries[0].Subject != "app" {
		t.Fatalf("the poll held at version 0: %+v", f)
	}
	waitFor(t, "the feed to read the change", func() bool { return ti.server.Feed.Set().Version() == 1 })
	_, feed, _ = getFeed(t, ti.http.URL, follower, "")
	if !feed.Full || feed.Version != 1 || len(feed.Entries) != 1 || feed.Entries[0].Kind != revocation.KindClient || feed.Entries[0].Subject != "app" ||
		feed.Entries[0].Before != revocation.Watermark(clock.Now())+int64(tokenissuer.WatermarkMargin/time.Second) {
		t.Fatalf("after revoking the client: %+v", feed)
	}
	// Nothing new: a short poll answers at once with the same version.
	if _, feed, _ = getFeed(t, ti.http.URL, follower, "?since=1"); feed.Full || feed.Version != 1 || len(feed.Entries) != 0 {
		t.Fatalf("nothing new: %+v", feed)
	}
	// A follower ahead of the store (restored from a backup) gets it all.
	if _, feed, _ = getFeed(t, ti.http.URL, follower, "?since=99"); !feed.Full || feed.Version != 1 || len(feed.Entries) != 1 {
		t.Fatalf("ahead: %+v", feed)
	}

	// A long poll is held until something changes.
	got := longPoll(t, ti, follower, "?since=1&wait=30")
	if err := ti.admin.RevokeClientTokens(ctx, "app-2"); err != nil {
		t.Fatal(err)
	}
	if f := receive(t, got); f.Full || f.Version != 2 || len(f.Entries) != 1 || f.Entries[0].Subject != "app-2" {
		t.Fatalf("long poll: %+v", f)
	}
	// A revocation of the follower's own client covers its token.
	if err := ti.admin.RevokeClientTokens(ctx, "authz"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the feed to read the change", func() bool { return ti.server.Feed.Set().Version() == 3 })
	if status, _, _ := getFeed(t, ti.http.URL, follower, ""); status != http.StatusUnauthorized {
		t.Fatalf("a revoked follower token: %d", status)
	}

	// Once every token it covers has expired, an entry is no longer served.
	clock.Advance(ti.cfg.Tokens.MaxLifetime + tokenissuer.WatermarkMargin + 2*time.Second)
	fresh := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("authz", followerSecret)).body["access_token"].(string)
	if _, feed, _ = getFeed(t, ti.http.URL, fresh, ""); feed.Version != 3 || len(feed.Entries) != 0 {
		t.Fatalf("expired entries: %+v", feed)
	}
}

// longPoll starts a poll of the feed and waits until the issuer holds it.
func longPoll(t *testing.T, ti *testIssuer, token, query string) <-chan revocation.Feed {
	t.Helper()
	before := ti.server.Feed.Waiting()
	got := make(chan revocation.Feed, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, ti.http.URL+revocation.FeedPath+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var f revocation.Feed
		if resp, err := http.DefaultClient.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&f)
			resp.Body.Close()
		}
		got <- f
	}()
	waitFor(t, "the long poll to be held", func() bool { return ti.server.Feed.Waiting() > before })
	return got
}

func receive(t *testing.T, got <-chan revocation.Feed) revocation.Feed {
	t.Helper()
	select {
	case f := <-got:
		return f
	case <-time.After(time.Minute):
		t.Fatal("the long poll was not woken")
		return revocation.Feed{}
	}
}

// waitFor polls cond until it holds; the deadline only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRevocationsPerClientAreBounded: one client cannot flood the feed. Its
// RFC 7009 revocations are rate limited, and past the cap of live token
// entries a revocation becomes a watermark over all its tokens.
func TestRevocationsPerClientAreBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.RateLimit.RevocationsPerMinute = 4
	cfg.RateLimit.RevokedTokensPerClient = 2
	cfg.RateLimit.TokensPerMinute = 6
	clock := fakeclock.New()
	ti := startIssuer(t, cfg, clock)
	_, secret := ti.createClient(tokenissuer.NewClient{ID: "app", Scopes: []string{"a"}})
	mint := func() string {
		t.Helper()
		r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("app", secret))
		if r.status != http.StatusOK {
			t.Fatalf("token: %d %v", r.status, r.body)
		}
		return r.body["access_token"].(string)
	}
	tokens := []string{mint(), mint(), mint(), mint(), mint()}
	for i, tok := range tokens[:2] {
		if status, body, _ := postRevoke(t, ti.http.URL, "token="+tok, basic("app", secret)); status != http.StatusOK {
			t.Fatalf("revoke %d: %d %s", i, status, body)
		}
		waitFor(t, "the feed to read the revocation", func() bool { return ti.server.Feed.TokenEntries("app") == i+1 })
	}
	// The third goes over the cap: a watermark instead of a third entry.
	if status, body, _ := postRevoke(t, ti.http.URL, "token="+tokens[2], basic("app", secret)); status != http.StatusOK {
		t.Fatalf("revoke over the cap: %d %s", status, body)
	}
	waitFor(t, "the feed to read the watermark", func() bool { return ti.server.Feed.Set().Len() == 3 })
	entries, _ := ti.store.Revocations(context.Background(), 0, clock.Now())
	if last := entries[len(entries)-1]; last.Kind != revocation.KindClient || last.Subject != "app" || last.Cause != "oauth2.revoke.overflow" {
		t.Fatalf("over the cap: %+v", last)
	}
	if records, _ := ti.store.AuditRecords(context.Background(), tokenissuer.AuditQuery{Actor: "client:app"}); len(records) != 1 || records[0].Action != "revocation.client" {
		t.Fatalf("the fallback is audited once: %+v", records)
	}
	// A fourth revocation in the minute is allowed, a fifth is not.
	if status, body, _ := postRevoke(t, ti.http.URL, "token="+tokens[3], basic("app", secret)); status != http.StatusOK {
		t.Fatalf("fourth revocation: %d %s", status, body)
	}
	status, body, header := postRevoke(t, ti.http.URL, "token="+tokens[4], basic("app", secret))
	if status != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
		t.Fatalf("fifth revocation in a minute: %d %s %v", status, body, header)
	}
	// Issuance is bounded too: five tokens so far, one more, then 429.
	clock.Advance(tokenissuer.WatermarkMargin + time.Second)
	mint()
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("app", secret)); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("seventh token in a minute: %d %v", r.status, r.body)
	}
	clock.Advance(time.Minute)
	mint()
}

// feedReadCounter counts the feed's reads of the store: of entries, and of
// the latest version (the probe the feed's ticker makes).
type feedReadCounter struct {
	tokenissuer.Store
	entries, probes atomic.Int64
}

func (s *feedReadCounter) Revocations(ctx context.Context, after int64, now time.Time) ([]revocation.Entry, error) {
	s.entries.Add(1)
	return s.Store.Revocations(ctx, after, now)
}

func (s *feedReadCounter) LatestRevocation(ctx context.Context) (int64, error) {
	s.probes.Add(1)
	return s.Store.LatestRevocation(ctx)
}

// TestFeedReadsTheStoreOncePerChangeWhateverTheFollowers: followers are
// served from memory. With 1 and with 64 long polls held, a revocation
// costs the same few store reads, and every follower gets it: on SQLite,
// and on PostgreSQL with the revocation made through another replica than
// the one the followers poll (woken by NOTIFY).
func TestFeedReadsTheStoreOncePerChangeWhateverTheFollowers(t *testing.T) {
	t.Parallel()
	engines := map[string]func(t *testing.T) (revoker, served *testIssuer, store *feedReadCounter){
		"sqlite": func(t *testing.T) (*testIssuer, *testIssuer, *feedReadCounter) {
			cfg := testConfig(t.TempDir())
			sqlite, err := sqlstore.OpenSQLite(context.Background(), cfg.Store.SQLitePath)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sqlite.Close() })
			store := &feedReadCounter{Store: sqlite}
			ti := startIssuerOn(t, cfg, fakeclock.New(), store)
			return ti, ti, store
		},
		"postgres replicas": func(t *testing.T) (*testIssuer, *testIssuer, *feedReadCounter) {
			dsn := pgtest.FreshDatabase(t)
			clock := fakeclock.New()
			store := &feedReadCounter{Store: storetest.OpenPostgres(t, dsn)}
			return startReplica(t, dsn, clock, nil), startIssuerOn(t, replicaConfig(t, dsn), clock, store), store
		},
	}
	for name, start := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			entries := map[int]int64{}
			for _, followers := range []int{1, 64} {
				revoker, served, store := start(t)
				_, secret := served.createClient(tokenissuer.NewClient{ID: fmt.Sprint("authz-", followers), Scopes: []string{revocation.ReadScope}})
				revoker.createClient(tokenissuer.NewClient{ID: fmt.Sprint("app-", followers), Scopes: []string{"a"}})
				token := postToken(t, served.http.URL, formType, "grant_type=client_credentials", basic(fmt.Sprint("authz-", followers), secret)).body["access_token"].(string)
				waitFor(t, "the first read", func() bool { return served.server.Feed.Loaded() })
				since := served.server.Feed.Set().Version()
				polls := make([]<-chan revocation.Feed, followers)
				for i := range polls {
					polls[i] = longPoll(t, served, token, fmt.Sprintf("?since=%d&wait=30", since))
				}
				entriesBefore, probesBefore, start := store.entries.Load(), store.probes.Load(), time.Now()
				if err := revoker.admin.RevokeClientTokens(operatorContext(), fmt.Sprint("app-", followers)); err != nil {
					t.Fatal(err)
				}
				for _, p := range polls {
					if f := receive(t, p); f.Version <= since || len(f.Entries) != 1 {
						t.Fatalf("follower got %+v", f)
					}
				}
				entries[followers] = store.entries.Load() - entriesBefore
				// The ticker probes the version once a PollInterval, however
				// long a busy machine takes to answer the followers; they
				// add no probe.
				probes, ticks := store.probes.Load()-probesBefore, int64(time.Since(start)/feed.PollInterval)
				if probes > ticks+2 {
					t.Fatalf("%d followers: %d version probes in %d poll intervals", followers, probes, ticks)
				}
			}
			// Entries are read on the change's announcement and on each
			// commit seen by the store's change watch: a handful, however
			// they fall on a loaded machine. A follower that read the store
			// would add 64.
			if entries[64] > 8 {
				t.Fatalf("entry reads for one change: %d with 1 follower, %d with 64", entries[1], entries[64])
			}
			t.Logf("entry reads for one change: %d with 1 follower, %d with 64", entries[1], entries[64])
		})
	}
}

// TestFeedServesALargeSetInPages: a fresh follower gets a set of any size,
// page by page, each page within bounds.
func TestFeedServesALargeSetInPages(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	ti.server.Feed.PageEntries = 3
	_, secret := ti.createClient(tokenissuer.NewClient{ID: "authz", Scopes: []string{revocation.ReadScope}})
	token := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("authz", secret)).body["access_token"].(string)
	for i := range 7 {
		e := &revocation.Entry{Kind: revocation.KindToken, Subject: fmt.Sprint("jti-", i), Expires: ti.clock.Now().Unix() + 600, At: ti.clock.Now()}
		if err := ti.store.AppendRevocation(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	ti.server.Feed.Changed()
	waitFor(t, "the feed to read the entries", func() bool { return ti.server.Feed.Set().Version() == 7 })
	set := revocation.Empty()
	_, page, _ := getFeed(t, ti.http.URL, token, "")
	pages := 1
	for {
		if len(page.Entries) > 3 {
			t.Fatalf("page of %d entries", len(page.Entries))
		}
		set = set.Apply(page)
		if !page.More {
			break
		}
		_, page, _ = getFeed(t, ti.http.URL, token, fmt.Sprintf("?since=%d", page.Version))
		pages++
	}
	if pages != 3 || set.Len() != 7 || set.Version() != 7 {
		t.Fatalf("%d pages, %d entries, version %d", pages, set.Len(), set.Version())
	}
}

// TestChangesFromAnotherProcessLeaveNoWindow: the CLI on SQLite changes the
// store from another process, which the running issuer's client cache does
// not hear. Whatever the running issuer mints after the change, from its
// cached record, must not be valid, and once its feed has read the change
// it refuses to mint at all.
func TestChangesFromAnotherProcessLeaveNoWindow(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		change func(a *tokenissuer.Admin, client, secretID string) error
		// after is the status of a request with the old secret once the
		// change is read; other, with a second secret (0: none).
		after, other int
	}{
		"clients disable": {func(a *tokenissuer.Admin, id, _ string) error {
			_, err := a.SetStatus(operatorContext(), id, tokenissuer.ClientDisabled)
			return err
		}, http.StatusBadRequest, 0},
		"clients delete": {func(a *tokenissuer.Admin, id, _ string) error { return a.DeleteClient(operatorContext(), id) }, http.StatusUnauthorized, 0},
		"clients revoke-secret --revoke-tokens": {func(a *tokenissuer.Admin, id, secretID string) error {
			if _, err := a.RevokeSecret(operatorContext(), id, secretID); err != nil {
				return err
			}
			return a.RevokeClientTokens(operatorContext(), id)
		}, http.StatusUnauthorized, http.StatusOK},
		"tenants disable": {func(a *tokenissuer.Admin, id, _ string) error {
			_, err := a.SetTenantStatus(operatorContext(), "acme", tokenissuer.TenantDisabled)
			return err
		}, http.StatusBadRequest, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t.TempDir())
			cfg.ClientCacheTTL = time.Hour // the window, made as wide as can be
			ti := startIssuer(t, cfg, fakeclock.New())
			c, secret := ti.createClient(tokenissuer.NewClient{ID: "app", TenantID: "acme", Scopes: []string{"a"}})
			_, _, secondSecret, err := ti.admin.RotateSecret(operatorContext(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			mint := func(secret string) tokenReply {
				return postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
			}
			if r := mint(secret); r.status != http.StatusOK { // cached now
				t.Fatalf("before: %d", r.status)
			}

			// The CLI: its own store handle and service, another process's.
			cliStore, err := sqlstore.OpenSQLite(context.Background(), cfg.Store.SQLitePath)
			if err != nil {
				t.Fatal(err)
			}
			defer cliStore.Close()
			hasher, _ := server.LoadHasher(cfg.Store)
			if err := tc.change(tokenissuer.NewAdmin(cliStore, hasher, ti.clock, cfg.AdminLimits()), c.ID, c.Secrets[0].ID); err != nil {
				t.Fatal(err)
			}
			// The running issuer mints a second later, before its feed has
			// read the store.
			ti.clock.(*fakeclock.Clock).Advance(time.Second)
			var minted []string
			for range 5 {
				if r := mint(secret); r.status == http.StatusOK {
					minted = append(minted, r.body["access_token"].(string))
				}
			}
			waitFor(t, "the feed to read the change", func() bool { return ti.server.Feed.Set().Len() > 0 })
			for i, tok := range minted {
				at, err := ti.keys.VerifyAccessToken(tok, ti.cfg.Issuer, ti.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if _, revoked := ti.server.Feed.Revoked(at); !revoked {
					t.Fatalf("token %d minted after the change is valid", i)
				}
			}
			if r := mint(secret); r.status != tc.after {
				t.Fatalf("the old secret once the change is read: %d %v, want %d", r.status, r.body, tc.after)
			}
			if tc.other != 0 {
				r := mint(secondSecret)
				if r.status != tc.other {
					t.Fatalf("the remaining secret: %d %v", r.status, r.body)
				}
				at, err := ti.keys.VerifyAccessToken(r.body["access_token"].(string), ti.cfg.Issuer, ti.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if _, revoked := ti.server.Feed.Revoked(at); revoked {
					t.Fatal("a token minted with the remaining secret after the watermark was born revoked")
				}
			}
		})
	}
}

// TestAnotherProcessesChangesReachTheCache: a secret revoked with the CLI
// (another process, on the same SQLite file) stops working at the running
// issuer within a poll of the file, not after client_cache_ttl.
func TestAnotherProcessesChangesReachTheCache(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.ClientCacheTTL = time.Hour
	ti := startIssuer(t, cfg, fakeclock.New())
	c, old := ti.createClient(tokenissuer.NewClient{ID: "app", Scopes: []string{"a"}})
	if _, _, _, err := ti.admin.RotateSecret(operatorContext(), c.ID); err != nil {
		t.Fatal(err)
	}
	cliStore, err := sqlstore.OpenSQLite(context.Background(), cfg.Store.SQLitePath)
	if err != nil {
		t.Fatal(err)
	}
	defer cliStore.Close()
	// The issuer watches the file from a goroutine that may not have read
	// the file's version yet: a write by the other process before it has
	// would go unseen. Write (a commit that changes a row: one that changes
	// nothing leaves the file as it was) until the issuer is seen to notice.
	gen := ti.server.CacheGeneration()
	waitFor(t, "the running issuer to watch the file", func() bool {
		if err := cliStore.RecordUsage(context.Background(), []tokenissuer.Usage{{ClientID: c.ID, At: time.Unix(1, 0)}}); err != nil {
			t.Fatal(err)
		}
		return ti.server.CacheGeneration() != gen
	})
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, old)); r.status != http.StatusOK {
		t.Fatalf("before: %d", r.status) // cached now
	}
	hasher, _ := server.LoadHasher(cfg.Store)
	if _, err := tokenissuer.NewAdmin(cliStore, hasher, ti.clock, cfg.AdminLimits()).RevokeSecret(operatorContext(), c.ID, c.Secrets[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the running issuer to refuse the revoked secret", func() bool {
		return postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, old)).status == http.StatusUnauthorized
	})
}

// TestRevocationFeedStreams: as a stream, the feed answers like a long poll,
// then sends each change on the open connection, a heartbeat when nothing
// changes, and ends when the follower's token is revoked or the issuer
// shuts down.
func TestRevocationFeedStreams(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	ctx := operatorContext()
	_, secret := ti.createClient(tokenissuer.NewClient{ID: "authz", Scopes: []string{revocation.ReadScope}})
	ti.createClient(tokenissuer.NewClient{ID: "app", Scopes: []string{"a"}})
	token := func() string {
		return postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("authz", secret)).body["access_token"].(string)
	}
	open := func(tok, query string) (*json.Decoder, func()) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ti.http.URL+revocation.FeedPath+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != revocation.StreamType {
			t.Fatalf("stream: %s %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		return json.NewDecoder(resp.Body), func() { resp.Body.Close() }
	}
	next := func(dec *json.Decoder) (revocation.Feed, error) {
		var f revocation.Feed
		err := dec.Decode(&f)
		return f, err
	}
	// nextChange skips heartbeats: they come at the multiples of the
	// period on the clock, so one may come at any moment.
	nextChange := func(dec *json.Decoder, version int64) (revocation.Feed, error) {
		for {
			f, err := next(dec)
			if err != nil || f.Version != version || len(f.Entries) != 0 || f.Full {
				return f, err
			}
		}
	}

	// A fresh follower gets the whole set, then each change.
	dec, closeStream := open(token(), "?stream=1&wait=30")
	defer closeStream()
	if f, err := next(dec); err != nil || !f.Full || f.Version != 0 {
		t.Fatalf("first line: %+v %v", f, err)
	}
	waitFor(t, "the stream to be held", func() bool { return ti.server.Feed.Waiting() == 1 })
	if err := ti.admin.RevokeClientTokens(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if f, err := nextChange(dec, 0); err != nil || f.Full || f.Version != 1 || len(f.Entries) != 1 || f.Entries[0].Subject != "app" {
		t.Fatalf("the change: %+v %v", f, err)
	}

	// Nothing changes: a heartbeat at the same version.
	beat, closeBeat := open(token(), "?since=1&stream=1&wait=1")
	defer closeBeat()
	if f, err := next(beat); err != nil || f.Version != 1 || len(f.Entries) != 0 {
		t.Fatalf("heartbeat: %+v %v", f, err)
	}

	// The follower's own client revoked: the stream sends the change, then
	// ends, and the follower must authenticate again.
	if err := ti.admin.RevokeClientTokens(ctx, "authz"); err != nil {
		t.Fatal(err)
	}
	if f, err := nextChange(dec, 1); err != nil || f.Version != 2 {
		t.Fatalf("the follower's own revocation: %+v %v", f, err)
	}
	for {
		f, err := next(dec)
		if err != nil {
			break // the stream ended
		}
		if f.Version != 2 || len(f.Entries) != 0 {
			t.Fatalf("after its token was revoked: %+v", f)
		}
	}

	// Shutting down ends the streams at once.
	ti.clock.(*fakeclock.Clock).Advance(tokenissuer.WatermarkMargin + time.Second)
	live, closeLive := open(token(), "?since=2&stream=1&wait=30")
	defer closeLive()
	waitFor(t, "the stream to be held", func() bool { return ti.server.Feed.Waiting() >= 1 })
	ti.server.Feed.Close()
	if _, err := next(live); err == nil {
		if _, err := next(live); err == nil {
			t.Fatal("the stream outlived the shutdown")
		}
	}
}
