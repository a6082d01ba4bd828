package tokenissuer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/revocation"
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
	ti := startIssuer(t, testConfig(t.TempDir()), newFakeClock())
	ctx := context.Background()
	_, secretA := ti.createClient(NewClient{ID: "app-a", Scopes: []string{"a"}})
	_, secretB := ti.createClient(NewClient{ID: "app-b", Scopes: []string{"a"}})
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
	records, _ := ti.store.AuditRecords(ctx, AuditQuery{Actor: "client:app-a"})
	if len(records) != 1 || records[0].Action != "revocation.token" {
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
	clock := newFakeClock()
	ti := startIssuer(t, testConfig(t.TempDir()), clock)
	ctx := WithActor(context.Background(), Actor{ID: "cli:test"})
	_, followerSecret := ti.createClient(NewClient{ID: "authz", Scopes: []string{revocation.ReadScope}})
	_, otherSecret := ti.createClient(NewClient{ID: "app", Scopes: []string{"a"}})
	ti.createClient(NewClient{ID: "app-2", Scopes: []string{"a"}})
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
	status, feed, _ := getFeed(t, ti.http.URL, follower, "?since=0")
	if status != http.StatusOK || !feed.Full || feed.Version != 0 || len(feed.Entries) != 0 {
		t.Fatalf("empty feed: %d %+v", status, feed)
	}

	if err := ti.admin.RevokeClientTokens(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	_, feed, _ = getFeed(t, ti.http.URL, follower, "?since=0")
	if !feed.Full || feed.Version != 1 || len(feed.Entries) != 1 || feed.Entries[0].Kind != revocation.KindClient || feed.Entries[0].Subject != "app" ||
		feed.Entries[0].Before != revocation.Watermark(clock.Now()) {
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
	got := make(chan revocation.Feed, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, ti.http.URL+revocation.FeedPath+"?since=1&wait=30", nil)
		req.Header.Set("Authorization", "Bearer "+follower)
		var f revocation.Feed
		if resp, err := http.DefaultClient.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&f)
			resp.Body.Close()
		}
		got <- f
	}()
	waitFor(t, "the long poll to be held", func() bool { return ti.server.Feed.waiting.Load() == 1 })
	if err := ti.admin.RevokeClientTokens(ctx, "app-2"); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-got:
		if f.Full || f.Version != 2 || len(f.Entries) != 1 || f.Entries[0].Subject != "app-2" {
			t.Fatalf("long poll: %+v", f)
		}
	case <-time.After(time.Minute):
		t.Fatal("the long poll was not woken")
	}
	// A revocation of the follower's own client covers its token.
	if err := ti.admin.RevokeClientTokens(ctx, "authz"); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := getFeed(t, ti.http.URL, follower, "?since=0"); status != http.StatusUnauthorized {
		t.Fatalf("a revoked follower token: %d", status)
	}

	// Once every token it covers has expired, an entry is dropped.
	clock.Advance(ti.cfg.Tokens.MaxLifetime + 2*time.Second)
	fresh := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("authz", followerSecret)).body["access_token"].(string)
	if _, feed, _ = getFeed(t, ti.http.URL, fresh, "?since=0"); feed.Version != 3 || len(feed.Entries) != 0 {
		t.Fatalf("expired entries: %+v", feed)
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

func testStoreRevocations(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0).UTC()
	if v, err := s.LatestRevocation(ctx); err != nil || v != 0 {
		t.Fatalf("empty store: %d %v", v, err)
	}
	add := func(kind revocation.Kind, subject string, expires int64) int64 {
		e := &revocation.Entry{Kind: kind, Subject: subject, Before: now.Unix(), Expires: expires, Cause: "test", At: now}
		if err := s.AppendRevocation(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e.Seq
	}
	a := add(revocation.KindToken, "jti-1", now.Unix()+10)
	b := add(revocation.KindClient, "app", now.Unix()+100)
	c := add(revocation.KindTenant, "acme", now.Unix()+100)
	if !(a < b && b < c) {
		t.Fatalf("sequence %d %d %d", a, b, c)
	}
	all, err := s.Revocations(ctx, 0, now)
	if err != nil || len(all) != 3 || all[1].Subject != "app" || all[1].Kind != revocation.KindClient || all[1].Before != now.Unix() || !all[1].At.Equal(now) || all[1].Cause != "test" {
		t.Fatalf("all: %v %+v", err, all)
	}
	if after, _ := s.Revocations(ctx, b, now); len(after) != 1 || after[0].Seq != c {
		t.Fatalf("after %d: %+v", b, after)
	}
	if live, _ := s.Revocations(ctx, 0, now.Add(10*time.Second)); len(live) != 2 {
		t.Fatalf("expired entries returned: %+v", live)
	}
	if err := s.PruneRevocations(ctx, now.Add(200*time.Second)); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.LatestRevocation(ctx); v != c {
		t.Fatalf("pruning moved the version back: %d, want %d", v, c)
	}
	if d := add(revocation.KindToken, "jti-2", now.Unix()+10); d <= c {
		t.Fatalf("a sequence number was reused after pruning: %d", d)
	}

	// Changes reach every listener.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	heard := make(chan string, 16)
	go s.ListenChanges(lctx, func(topic, subject string) { heard <- topic + "/" + subject })
	deadline := time.After(time.Minute)
	for {
		// LISTEN takes effect asynchronously: announce until heard.
		if err := s.NotifyChange(ctx, TopicClient, "app-1"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-heard:
			if got != "client/app-1" {
				t.Fatalf("heard %q", got)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("a change was never heard")
		}
	}
}
