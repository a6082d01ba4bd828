// Package storetest is the conformance suite every issuer store runs: the
// behaviour the service layer, the endpoints and the feed rely on, written
// once and run against SQLite and PostgreSQL alike.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
)

// Run runs the conformance suite against the stores open returns: each
// subtest opens a fresh, empty one. Every engine's tests call it, so a
// behaviour one engine has and another lacks fails here.
func Run(t *testing.T, open func(t *testing.T) tokenissuer.Store) {
	t.Run("clients", func(t *testing.T) { testStoreClients(t, open(t)) })
	t.Run("signing keys", func(t *testing.T) { testStoreKeys(t, open(t)) })
	t.Run("concurrent rotation adds one key", func(t *testing.T) { testStoreRotationRace(t, open(t)) })
	t.Run("failure counts", func(t *testing.T) { testStoreFailures(t, open(t)) })
	t.Run("client quota", func(t *testing.T) { testStoreClientQuota(t, open(t)) })
	t.Run("tenants", func(t *testing.T) { testStoreTenants(t, open(t)) })
	t.Run("audit", func(t *testing.T) { testStoreAudit(t, open(t)) })
	t.Run("idempotency keys", func(t *testing.T) { testStoreIdempotency(t, open(t)) })
	t.Run("accounts", func(t *testing.T) { testStoreAccounts(t, open(t)) })
	t.Run("sessions", func(t *testing.T) { testStoreSessions(t, open(t)) })
	t.Run("invitations", func(t *testing.T) { testStoreInvites(t, open(t)) })
	t.Run("revocations", func(t *testing.T) { testStoreRevocations(t, open(t)) })
	t.Run("last use", func(t *testing.T) { testStoreUsage(t, open(t)) })
	t.Run("assertion IDs", func(t *testing.T) { testStoreAssertionIDs(t, open(t)) })
}

func testStoreAssertionIDs(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	if err := s.UseAssertionID(ctx, "app", "j1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.UseAssertionID(ctx, "app", "j1", t0.Add(time.Minute)); !errors.Is(err, tokenissuer.ErrAssertionReplayed) {
		t.Fatalf("the same ID again: %v", err)
	}
	if err := s.UseAssertionID(ctx, "other", "j1", t0.Add(time.Minute)); err != nil {
		t.Fatalf("another client's ID of the same value: %v", err)
	}
	// Racing uses of one ID: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if s.UseAssertionID(ctx, "app", "raced", t0.Add(time.Minute)) == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d racing uses of one ID succeeded", wins.Load())
	}
	if err := s.PruneAssertionIDs(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.UseAssertionID(ctx, "app", "j1", t0.Add(3*time.Minute)); err != nil {
		t.Fatalf("an ID whose assertion expired and was pruned: %v", err)
	}
}

func testStoreUsage(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	created := time.Unix(1_800_000_000, 0).UTC()
	c := &tokenissuer.Client{ID: "used-app", Status: tokenissuer.ClientActive, Scopes: []string{}, CreatedAt: created, UpdatedAt: created,
		Secrets: []tokenissuer.Secret{
			{ID: "s1", Hash: []byte("0123456789abcdef0123456789abcdef"), Hint: "wxyz", CreatedAt: created},
			{ID: "s2", Hash: []byte("fedcba9876543210fedcba9876543210"), Hint: "abcd", CreatedAt: created},
		}}
	if err := s.CreateClient(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Client(ctx, c.ID); !got.LastUsedAt.IsZero() || got.Secrets[0].Hint != "wxyz" || !got.Secrets[0].LastUsedAt.IsZero() {
		t.Fatalf("a client never used: %+v", got)
	}
	// A secret is found from its lookup alone; one made without a lookup
	// (before them) is never found, not even by an empty one.
	if _, err := s.UpdateClient(ctx, c.ID, func(c *tokenissuer.Client) error {
		c.Secrets[1].Lookup = []byte("lookup-of-s2-0123456789abcdef012")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if client, secret, err := s.SecretByLookup(ctx, []byte("lookup-of-s2-0123456789abcdef012")); err != nil || client != c.ID || secret != "s2" {
		t.Fatalf("by lookup: %q %q %v", client, secret, err)
	}
	for _, none := range [][]byte{nil, {}, []byte("unknown")} {
		if _, _, err := s.SecretByLookup(ctx, none); !errors.Is(err, tokenissuer.ErrSecretNotFound) {
			t.Fatalf("lookup %q: %v", none, err)
		}
	}
	t1, t2 := created.Add(time.Hour), created.Add(2*time.Hour)
	err := s.RecordUsage(ctx, []tokenissuer.Usage{
		{ClientID: c.ID, SecretID: "s2", At: t2},
		{ClientID: c.ID, SecretID: "s1", At: t1},
		{ClientID: "deleted-meanwhile", SecretID: "s1", At: t2},
		{ClientID: c.ID, SecretID: "gone", At: t2},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Client(ctx, c.ID)
	if !got.LastUsedAt.Equal(t2) || !got.Secrets[0].LastUsedAt.Equal(t1) || !got.Secrets[1].LastUsedAt.Equal(t2) {
		t.Fatalf("after a batch: client %v, secrets %v %v", got.LastUsedAt, got.Secrets[0].LastUsedAt, got.Secrets[1].LastUsedAt)
	}
	if !got.UpdatedAt.Equal(created) {
		t.Fatalf("recording a use changed the client's version: %v", got.UpdatedAt)
	}
	// A key's use is kept by its kid; an older one moves nothing back.
	if err := s.RecordUsage(ctx, []tokenissuer.Usage{{ClientID: c.ID, SecretID: tokenissuer.KeyUsePrefix + "k1", At: t2}, {ClientID: "deleted-meanwhile", SecretID: tokenissuer.KeyUsePrefix + "k1", At: t2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, []tokenissuer.Usage{{ClientID: c.ID, SecretID: tokenissuer.KeyUsePrefix + "k1", At: t1}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Client(ctx, c.ID); !got.KeysLastUsedAt["k1"].Equal(t2) || len(got.KeysLastUsedAt) != 1 {
		t.Fatalf("a key's last use: %v", got.KeysLastUsedAt)
	}
	// Another replica's older batch, flushed late, moves nothing back.
	if err := s.RecordUsage(ctx, []tokenissuer.Usage{{ClientID: c.ID, SecretID: "s2", At: t1}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Client(ctx, c.ID); !got.LastUsedAt.Equal(t2) || !got.Secrets[1].LastUsedAt.Equal(t2) {
		t.Fatalf("an older use moved the times back: %v %v", got.LastUsedAt, got.Secrets[1].LastUsedAt)
	}
	// A change to the client keeps what was recorded.
	if _, err := s.UpdateClient(ctx, c.ID, func(c *tokenissuer.Client) error { c.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Client(ctx, c.ID); !got.LastUsedAt.Equal(t2) || !got.Secrets[0].LastUsedAt.Equal(t1) || got.Secrets[1].Hint != "abcd" {
		t.Fatalf("an update lost the last use or the hint: %+v", got)
	}
	// Concurrent batches and updates finish (no deadlock between replicas).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			at := t2.Add(time.Duration(i) * time.Minute)
			if i%2 == 0 {
				if err := s.RecordUsage(ctx, []tokenissuer.Usage{{ClientID: c.ID, SecretID: "s1", At: at}, {ClientID: c.ID, SecretID: "s2", At: at}}); err != nil {
					t.Error(err)
				}
				return
			}
			if _, err := s.UpdateClient(ctx, c.ID, func(c *tokenissuer.Client) error { c.Name = fmt.Sprint("n", i); return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := s.Client(ctx, c.ID); !got.LastUsedAt.Equal(t2.Add(6 * time.Minute)) {
		t.Fatalf("after concurrent batches: %v", got.LastUsedAt)
	}
}

func testStoreClients(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	now := time.Unix(1_800_000_000, 0).UTC()
	c := &tokenissuer.Client{ID: "acme-app", Name: "Acme", TenantID: "acme", Scopes: []string{"a", "b"}, Status: tokenissuer.ClientActive,
		TokenLifetime: 5 * time.Minute, CreatedAt: now, UpdatedAt: now,
		Secrets: []tokenissuer.Secret{{ID: "s1", Hash: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: now}}}
	if err := s.CreateClient(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, c, 0); !errors.Is(err, tokenissuer.ErrClientExists) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := s.Client(ctx, "acme-app")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Acme" || got.TenantID != "acme" || len(got.Scopes) != 2 || got.TokenLifetime != 5*time.Minute || !got.CreatedAt.Equal(now) || len(got.Secrets) != 1 || string(got.Secrets[0].Hash) != string(c.Secrets[0].Hash) {
		t.Fatalf("round trip: %+v", got)
	}
	later := now.Add(time.Hour)
	upd, err := s.UpdateClient(ctx, "acme-app", func(c *tokenissuer.Client) error {
		c.Status = tokenissuer.ClientDisabled
		c.Scopes = []string{"x"}
		c.Secrets = append(c.Secrets, tokenissuer.Secret{ID: "s2", Hash: []byte("fedcba9876543210fedcba9876543210"), CreatedAt: later})
		c.UpdatedAt = later
		return nil
	})
	if err != nil || upd.Status != tokenissuer.ClientDisabled {
		t.Fatalf("update: %v %+v", err, upd)
	}
	got, _ = s.Client(ctx, "acme-app")
	if got.Status != tokenissuer.ClientDisabled || len(got.Scopes) != 1 || len(got.Secrets) != 2 || got.Secrets[0].ID != "s1" || got.Secrets[1].ID != "s2" {
		t.Fatalf("after update: %+v", got)
	}
	boom := errors.New("refused")
	if _, err := s.UpdateClient(ctx, "acme-app", func(c *tokenissuer.Client) error { c.Name = "changed"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update error: %v", err)
	}
	if got, _ := s.Client(ctx, "acme-app"); got.Name != "Acme" {
		t.Fatal("a failed update was written")
	}
	if _, err := s.UpdateClient(ctx, "nobody", func(*tokenissuer.Client) error { return nil }); !errors.Is(err, tokenissuer.ErrClientNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	s.CreateClient(ctx, &tokenissuer.Client{ID: "b-app", Status: tokenissuer.ClientActive, Scopes: []string{}, Secrets: []tokenissuer.Secret{}}, 0)
	all, err := s.Clients(ctx, tokenissuer.ClientQuery{})
	if err != nil || len(all) != 2 || all[0].ID != "acme-app" || all[1].ID != "b-app" {
		t.Fatalf("list: %v %d", err, len(all))
	}
	if page, err := s.Clients(ctx, tokenissuer.ClientQuery{After: "acme-app", Limit: 1}); err != nil || len(page) != 1 || page[0].ID != "b-app" {
		t.Fatalf("a page after acme-app: %v %v", err, page)
	}
	if page, err := s.Clients(ctx, tokenissuer.ClientQuery{TenantID: c.TenantID}); err != nil || len(page) != 1 || page[0].ID != "acme-app" {
		t.Fatalf("one tenant's clients: %v %v", err, page)
	}
	refused := errors.New("refused")
	if _, err := s.DeleteClient(ctx, "acme-app", func(*tokenissuer.Client) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("a delete its check refused: %v", err)
	}
	if _, err := s.Client(ctx, "acme-app"); err != nil {
		t.Fatalf("a refused delete removed the client: %v", err)
	}
	if c, err := s.DeleteClient(ctx, "acme-app", func(*tokenissuer.Client) error { return nil }); err != nil || c.ID != "acme-app" {
		t.Fatal(c, err)
	}
	if _, err := s.Client(ctx, "acme-app"); !errors.Is(err, tokenissuer.ErrClientNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.DeleteClient(ctx, "acme-app", func(*tokenissuer.Client) error { return nil }); !errors.Is(err, tokenissuer.ErrClientNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testStoreKeys(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0)
	key := func(kid string, at time.Time) keys.SigningKey {
		return keys.SigningKey{KID: kid, Algorithm: "ES256", PrivateJWK: []byte(`{"kid":"` + kid + `"}`), CreatedAt: at, ActiveAt: at}
	}
	if added, err := s.AddSigningKey(ctx, key("k1", t0), time.Time{}, time.Time{}); err != nil || !added {
		t.Fatalf("first key: %v %v", added, err)
	}
	if added, _ := s.AddSigningKey(ctx, key("k1b", t0), time.Time{}, time.Time{}); added {
		t.Fatal("a second first key was added")
	}
	// Conditional rotation: only if the newest key is older than the bound.
	if added, _ := s.AddSigningKey(ctx, key("k2", t0.Add(time.Hour)), t0.Add(2*time.Hour), t0); added {
		t.Fatal("rotation added although the newest key is not older than the bound")
	}
	if added, err := s.AddSigningKey(ctx, key("k2", t0.Add(time.Hour)), t0.Add(2*time.Hour), t0.Add(time.Minute)); err != nil || !added {
		t.Fatalf("rotation: %v %v", added, err)
	}
	stored, err := s.SigningKeys(ctx)
	if err != nil || len(stored) != 2 || stored[0].KID != "k1" || stored[1].KID != "k2" {
		t.Fatalf("keys: %v %+v", err, stored)
	}
	if !stored[0].RetireAt.Equal(t0.Add(2*time.Hour)) || !stored[1].RetireAt.IsZero() || string(stored[1].PrivateJWK) != `{"kid":"k2"}` {
		t.Fatalf("retirement: %+v", stored)
	}
	if err := s.DeleteSigningKeysRetiredBefore(ctx, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if stored, _ := s.SigningKeys(ctx); len(stored) != 1 || stored[0].KID != "k2" {
		t.Fatalf("after prune: %+v", stored)
	}
	// Replacing key material is compare-and-swap: only from what was read.
	if err := s.ReplaceSigningKeyPrivate(ctx, "k2", []byte(`{"kid":"k2"}`), []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceSigningKeyPrivate(ctx, "k2", []byte(`{"kid":"k2"}`), []byte("again")); !errors.Is(err, keys.ErrKeyChanged) {
		t.Fatalf("replace from stale material: %v", err)
	}
	if err := s.ReplaceSigningKeyPrivate(ctx, "gone", []byte("x"), []byte("y")); !errors.Is(err, keys.ErrKeyChanged) {
		t.Fatalf("replace a missing key: %v", err)
	}
	if stored, _ := s.SigningKeys(ctx); string(stored[0].PrivateJWK) != "sealed" {
		t.Fatalf("after replace: %q", stored[0].PrivateJWK)
	}
}

func testStoreRotationRace(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0)
	s.AddSigningKey(ctx, keys.SigningKey{KID: "old", Algorithm: "ES256", PrivateJWK: []byte("{}"), CreatedAt: t0, ActiveAt: t0}, time.Time{}, time.Time{})
	var added atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			at := t0.Add(time.Hour)
			k := keys.SigningKey{KID: "new-" + string(rune('a'+i)), Algorithm: "ES256", PrivateJWK: []byte("{}"), CreatedAt: at, ActiveAt: at}
			ok, err := s.AddSigningKey(ctx, k, at.Add(time.Hour), t0.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				added.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if n := added.Load(); n != 1 {
		t.Fatalf("%d replicas rotated at once, want exactly 1", n)
	}
}

func testStoreClientQuota(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	// Racing creations cannot pass the quota together: it is counted in
	// the creation's transaction.
	var wg sync.WaitGroup
	var created, refused atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &tokenissuer.Client{ID: fmt.Sprintf("quota-%d", i), TenantID: "quota", Status: tokenissuer.ClientActive, Scopes: []string{}, Secrets: []tokenissuer.Secret{}}
			switch err := s.CreateClient(ctx, c, 3); {
			case err == nil:
				created.Add(1)
			case errors.Is(err, tokenissuer.ErrClientQuota):
				refused.Add(1)
			default:
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 3 || refused.Load() != 5 {
		t.Fatalf("8 racing creations with a quota of 3: %d created, %d refused", created.Load(), refused.Load())
	}
	// Another tenant, and a client of no tenant, have their own room.
	if err := s.CreateClient(ctx, &tokenissuer.Client{ID: "quota-other", TenantID: "other", Status: tokenissuer.ClientActive, Scopes: []string{}, Secrets: []tokenissuer.Secret{}}, 3); err != nil {
		t.Fatal(err)
	}
}

func testStoreFailures(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0)
	for i := 1; i <= 3; i++ {
		n, start, err := s.RecordFailure(ctx, "client:x", t0.Add(time.Duration(i)*time.Second), time.Minute)
		if err != nil || n != i || !start.Equal(t0.Add(time.Second)) {
			t.Fatalf("failure %d: %d %v %v", i, n, start, err)
		}
	}
	n, start, _ := s.RecordFailure(ctx, "client:x", t0.Add(2*time.Minute), time.Minute)
	if n != 1 || !start.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("new window: %d %v", n, start)
	}
	if n, _, _ := s.RecordFailure(ctx, "client:y", t0, time.Minute); n != 1 {
		t.Fatalf("other key: %d", n)
	}
	if err := s.PruneFailures(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.RecordFailure(ctx, "client:y", t0.Add(time.Second), time.Minute); n != 1 {
		t.Fatalf("pruned key counted from %d", n)
	}
	// A rightful attempt is given back; an operator's clear forgets all.
	if err := s.ForgiveFailure(ctx, "client:y"); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgiveFailure(ctx, "client:y"); err != nil { // never below zero
		t.Fatal(err)
	}
	if n, _, _ := s.RecordFailure(ctx, "client:y", t0.Add(2*time.Second), time.Minute); n != 1 {
		t.Fatalf("after forgiving: %d", n)
	}
	s.RecordFailure(ctx, "client:y", t0.Add(3*time.Second), time.Minute)
	if err := s.ClearFailures(ctx, "client:y"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.RecordFailure(ctx, "client:y", t0.Add(4*time.Second), time.Minute); n != 1 {
		t.Fatalf("after clearing: %d", n)
	}
}

func testStoreTenants(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	acme := &tokenissuer.Tenant{ID: "acme", Name: "Acme", Status: tokenissuer.TenantActive, ScopeCeiling: []string{"a", "b"}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateTenant(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, &tokenissuer.Tenant{ID: "acme", Name: "again", Status: tokenissuer.TenantActive, CreatedAt: t0, UpdatedAt: t0}); !errors.Is(err, tokenissuer.ErrTenantExists) {
		t.Fatalf("duplicate tenant: %v", err)
	}
	if err := s.CreateTenant(ctx, &tokenissuer.Tenant{ID: "globex", Name: "Globex", Status: tokenissuer.TenantActive, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Tenant(ctx, "acme")
	if err != nil || got.Name != "Acme" || strings.Join(got.ScopeCeiling, " ") != "a b" || !got.CreatedAt.Equal(t0) || got.Status != tokenissuer.TenantActive {
		t.Fatalf("read: %+v %v", got, err)
	}
	if _, err := s.Tenant(ctx, "nobody"); !errors.Is(err, tokenissuer.ErrTenantNotFound) {
		t.Fatalf("missing tenant: %v", err)
	}
	updated, err := s.UpdateTenant(ctx, "acme", func(t *tokenissuer.Tenant) error {
		t.Status, t.ScopeCeiling, t.UpdatedAt = tokenissuer.TenantDisabled, []string{"a"}, t0.Add(time.Hour)
		return nil
	})
	if err != nil || updated.Status != tokenissuer.TenantDisabled {
		t.Fatalf("update: %+v %v", updated, err)
	}
	refused := errors.New("refused")
	if _, err := s.UpdateTenant(ctx, "acme", func(*tokenissuer.Tenant) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("an update that fails changes nothing: %v", err)
	}
	all, err := s.Tenants(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "acme" || all[0].Status != tokenissuer.TenantDisabled || strings.Join(all[0].ScopeCeiling, " ") != "a" || all[1].ID != "globex" || len(all[1].ScopeCeiling) != 0 {
		t.Fatalf("list: %+v %v", all, err)
	}
	if _, err := s.UpdateTenant(ctx, "nobody", func(*tokenissuer.Tenant) error { return nil }); !errors.Is(err, tokenissuer.ErrTenantNotFound) {
		t.Fatalf("update a missing tenant: %v", err)
	}

	// A tenant with a client or a person is not deleted; an empty one is,
	// with its pending invitations.
	allow := func(*tokenissuer.Tenant) error { return nil }
	if err := s.CreateClient(ctx, &tokenissuer.Client{ID: "globex-app", TenantID: "globex", Status: tokenissuer.ClientActive, Scopes: []string{}, CreatedAt: t0, UpdatedAt: t0}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &tokenissuer.Account{ID: "acct-g", Email: "g@globex.example", Role: tokenissuer.RoleTenantAdmin, TenantID: "globex", Status: tokenissuer.AccountActive, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var inUse *tokenissuer.TenantInUseError
	if _, err := s.DeleteTenant(ctx, "globex", allow); !errors.As(err, &inUse) || inUse.Clients != 1 || inUse.People != 1 {
		t.Fatalf("deleting a tenant in use: %v", err)
	}
	if _, err := s.DeleteTenant(ctx, "globex", func(*tokenissuer.Tenant) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("a delete its check refused: %v", err)
	}
	s.DeleteClient(ctx, "globex-app", func(*tokenissuer.Client) error { return nil })
	if err := s.DeleteAccount(ctx, "acct-g"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: hashOf("globex-invite"), Email: "new@globex.example", Role: tokenissuer.RoleTenantViewer, TenantID: "globex", CreatedBy: "cli:root", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.DeleteTenant(ctx, "globex", allow); err != nil || gone.ID != "globex" {
		t.Fatalf("deleting an empty tenant: %v", err)
	}
	if _, err := s.Tenant(ctx, "globex"); !errors.Is(err, tokenissuer.ErrTenantNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if left, _ := s.Invites(ctx, "globex", false, t0); len(left) != 0 {
		t.Fatalf("a deleted tenant's invitations are left: %d", len(left))
	}
	if _, err := s.DeleteTenant(ctx, "globex", allow); !errors.Is(err, tokenissuer.ErrTenantNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
}

func testStoreAudit(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	var seqs []int64
	for i, r := range []tokenissuer.AuditRecord{
		{At: t0, Actor: "cli:ops", Action: "tenant.create", TargetType: "tenant", TargetID: "acme", TenantID: "acme", After: json.RawMessage(`{"name":"Acme"}`)},
		{At: t0.Add(time.Minute), Actor: "client:acme-bot", Address: "192.0.2.7", Action: "client.create", TargetType: "client", TargetID: "c1", TenantID: "acme"},
		{At: t0.Add(2 * time.Minute), Actor: "cli:ops", Action: "client.update", TargetType: "client", TargetID: "c2", TenantID: "globex", Before: json.RawMessage(`{"scopes":["a"]}`), After: json.RawMessage(`{"scopes":["a","b"]}`)},
		{At: t0.Add(3 * time.Minute), Actor: "cli:ops", Action: "client.delete", TargetType: "client", TargetID: "c1", TenantID: "acme"},
	} {
		rec := r
		if err := s.AppendAudit(ctx, &rec); err != nil {
			t.Fatal(err)
		}
		if i > 0 && rec.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("seq %d after %d", rec.Seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, rec.Seq)
	}
	count := func(q tokenissuer.AuditQuery) []tokenissuer.AuditRecord {
		t.Helper()
		got, err := s.AuditRecords(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := count(tokenissuer.AuditQuery{}); len(got) != 4 || got[0].Action != "tenant.create" || string(got[0].After) != `{"name":"Acme"}` || got[1].Address != "192.0.2.7" || !got[2].At.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("all: %+v", got)
	}
	if got := count(tokenissuer.AuditQuery{TenantID: "acme"}); len(got) != 3 {
		t.Fatalf("by tenant: %d", len(got))
	}
	if got := count(tokenissuer.AuditQuery{TargetID: "c1"}); len(got) != 2 {
		t.Fatalf("by target: %d", len(got))
	}
	if got := count(tokenissuer.AuditQuery{Actor: "client:acme-bot"}); len(got) != 1 {
		t.Fatalf("by actor: %d", len(got))
	}
	if got := count(tokenissuer.AuditQuery{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}); len(got) != 2 {
		t.Fatalf("by time: %d", len(got))
	}
	page := count(tokenissuer.AuditQuery{Limit: 3})
	next := count(tokenissuer.AuditQuery{Limit: 3, AfterSeq: page[len(page)-1].Seq})
	if len(page) != 3 || len(next) != 1 || next[0].Action != "client.delete" {
		t.Fatalf("pages: %d then %d", len(page), len(next))
	}
	newest := count(tokenissuer.AuditQuery{Newest: true, Limit: 3})
	older := count(tokenissuer.AuditQuery{Newest: true, Limit: 3, BeforeSeq: newest[len(newest)-1].Seq})
	if len(newest) != 3 || newest[0].Action != "client.delete" || newest[2].Action != "client.create" || len(older) != 1 || older[0].Action != "tenant.create" {
		t.Fatalf("newest first: %+v then %+v", newest, older)
	}
	if got := count(tokenissuer.AuditQuery{Action: "client.update"}); len(got) != 1 || got[0].TargetID != "c2" {
		t.Fatalf("by action: %+v", got)
	}
	if got := count(tokenissuer.AuditQuery{Action: "client."}); len(got) != 3 {
		t.Fatalf("by kind of action: %d", len(got))
	}
	// '_' and '%' are no wildcards: a kind matches its own actions only.
	if got := count(tokenissuer.AuditQuery{Action: "client_."}); len(got) != 0 {
		t.Fatalf("a kind with a wildcard character: %d", len(got))
	}
	if got := count(tokenissuer.AuditQuery{Action: "client.", TargetID: "c1", Newest: true}); len(got) != 2 || got[0].Action != "client.delete" {
		t.Fatalf("filters together: %+v", got)
	}
	if err := s.PruneAudit(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := count(tokenissuer.AuditQuery{}); len(got) != 2 || got[0].Seq != seqs[2] {
		t.Fatalf("after prune: %+v", got)
	}
}

func testStoreIdempotency(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	rec := tokenissuer.IdempotencyRecord{Scope: "acme-bot", Key: "k1", Fingerprint: "POST /clients abc", CreatedAt: t0}
	if existing, err := s.ClaimIdempotencyKey(ctx, rec); err != nil || existing != nil {
		t.Fatalf("first claim: %v %v", existing, err)
	}
	existing, err := s.ClaimIdempotencyKey(ctx, rec)
	if !errors.Is(err, tokenissuer.ErrIdempotencyKeyTaken) || existing == nil || existing.Done || existing.Fingerprint != rec.Fingerprint {
		t.Fatalf("second claim while pending: %+v %v", existing, err)
	}
	if existing, err := s.ClaimIdempotencyKey(ctx, tokenissuer.IdempotencyRecord{Scope: "globex-bot", Key: "k1", Fingerprint: "x", CreatedAt: t0}); err != nil || existing != nil {
		t.Fatalf("the same key of another caller: %v %v", existing, err)
	}
	if err := s.CompleteIdempotencyKey(ctx, "acme-bot", "k1", 201, "acme-app"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseIdempotencyKey(ctx, "acme-bot", "k1"); err != nil {
		t.Fatal(err)
	}
	existing, err = s.ClaimIdempotencyKey(ctx, rec)
	if !errors.Is(err, tokenissuer.ErrIdempotencyKeyTaken) || !existing.Done || existing.Status != 201 || existing.ResourceID != "acme-app" || !existing.CreatedAt.Equal(t0) {
		t.Fatalf("a completed key is kept, release or not: %+v %v", existing, err)
	}
	if err := s.ReleaseIdempotencyKey(ctx, "globex-bot", "k1"); err != nil {
		t.Fatal(err)
	}
	if existing, err := s.ClaimIdempotencyKey(ctx, tokenissuer.IdempotencyRecord{Scope: "globex-bot", Key: "k1", Fingerprint: "y", CreatedAt: t0.Add(time.Hour)}); err != nil || existing != nil {
		t.Fatalf("a released claim may be made again: %v %v", existing, err)
	}
	if err := s.PruneIdempotency(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if existing, err := s.ClaimIdempotencyKey(ctx, rec); err != nil || existing != nil {
		t.Fatalf("a pruned key is free again: %v %v", existing, err)
	}
}

func testStoreRevocations(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
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

	// Changes reach every listener. A listener first hears that anything
	// may have changed (what was announced before it listened went
	// unheard), then each change.
	lctx, cancel := context.WithCancel(ctx)
	heard := make(chan string, 1024)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		_ = s.ListenChanges(lctx, func(topic, subject string) { heard <- topic + "/" + subject })
	}()
	// The listener lets go of its connection before the store closes.
	defer func() { cancel(); <-listening }()
	deadline := time.After(time.Minute)
	started := false
	for {
		// LISTEN takes effect asynchronously: announce until heard.
		if err := s.NotifyChange(ctx, tokenissuer.TopicClient, "app-1"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-heard:
			if got == tokenissuer.TopicAny+"/" {
				started = true
				continue
			}
			if got != "client/app-1" {
				t.Fatalf("heard %q", got)
			}
			// This process's own announcement may come first (on SQLite it
			// needs no connection); the watch's start still comes.
			for !started {
				select {
				case got := <-heard:
					started = got == tokenissuer.TopicAny+"/"
				case <-deadline:
					t.Fatal("the listener never said that anything may have changed before it listened")
				}
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("a change was never heard")
		}
	}
}

func testStoreAccounts(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	now := time.Unix(1_800_000_000, 0).UTC()
	a := &tokenissuer.Account{ID: "acct-1", Email: "ada@example.com", Name: "Ada", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Status: tokenissuer.AccountActive,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &tokenissuer.Account{ID: "acct-2", Email: "ada@example.com", Role: tokenissuer.RolePlatformAdmin, Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, tokenissuer.ErrAccountExists) {
		t.Fatalf("same email: %v", err)
	}
	if err := s.CreateAccount(ctx, &tokenissuer.Account{ID: "acct-1", Email: "other@example.com", Role: tokenissuer.RolePlatformAdmin, Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, tokenissuer.ErrAccountExists) {
		t.Fatalf("same ID: %v", err)
	}
	got, err := s.AccountByEmail(ctx, "ada@example.com")
	if err != nil || got.ID != "acct-1" || got.Role != tokenissuer.RoleTenantAdmin || got.TenantID != "acme" || got.PasswordHash != a.PasswordHash || got.SecondFactor() || !got.CreatedAt.Equal(now) {
		t.Fatalf("by email: %v %+v", err, got)
	}
	upd, err := s.UpdateAccount(ctx, "acct-1", func(a *tokenissuer.Account) error {
		a.TOTPSecret = []byte("sealed")
		a.TOTPLastStep = 42
		a.RecoveryCodes = [][]byte{[]byte("0123456789abcdef"), []byte("fedcba9876543210")}
		a.Status = tokenissuer.AccountDisabled
		return nil
	})
	if err != nil || upd.TOTPLastStep != 42 {
		t.Fatal(err)
	}
	got, err = s.Account(ctx, "acct-1")
	if err != nil || string(got.TOTPSecret) != "sealed" || got.TOTPLastStep != 42 || len(got.RecoveryCodes) != 2 || string(got.RecoveryCodes[1]) != "fedcba9876543210" || got.Status != tokenissuer.AccountDisabled {
		t.Fatalf("after update: %v %+v", err, got)
	}
	failed := errors.New("no")
	if _, err := s.UpdateAccount(ctx, "acct-1", func(a *tokenissuer.Account) error { a.Name = "changed"; return failed }); !errors.Is(err, failed) {
		t.Fatalf("failed update: %v", err)
	}
	if got, _ := s.Account(ctx, "acct-1"); got.Name != "Ada" {
		t.Fatalf("a failed update was written: %+v", got)
	}
	if _, err := s.Account(ctx, "nobody"); !errors.Is(err, tokenissuer.ErrAccountNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := s.UpdateAccount(ctx, "nobody", func(*tokenissuer.Account) error { return nil }); !errors.Is(err, tokenissuer.ErrAccountNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	list, err := s.Accounts(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %d", err, len(list))
	}
	if err := s.DeleteAccount(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "acct-1"); !errors.Is(err, tokenissuer.ErrAccountNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testStoreSessions(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	now := time.Unix(1_800_000_000, 0).UTC()
	for _, id := range []string{"acct-1", "acct-2"} {
		if err := s.CreateAccount(ctx, &tokenissuer.Account{ID: id, Email: id + "@example.com", Role: tokenissuer.RolePlatformAdmin, Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(id, account string, created time.Time, lifetime time.Duration) *tokenissuer.Session {
		sess := &tokenissuer.Session{IDHash: hashOf(id), AccountID: account, CSRFToken: "csrf-" + id, Address: "127.0.0.1", CreatedAt: created, LastSeenAt: created, ExpiresAt: created.Add(lifetime)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		return sess
	}
	a := mk("a", "acct-1", now, time.Hour)
	a.Pending = true
	mk("b", "acct-1", now, time.Hour)
	mk("c", "acct-2", now, time.Hour)
	mk("old", "acct-2", now.Add(-2*time.Hour), time.Hour)
	mk("idle", "acct-2", now.Add(-40*time.Minute), time.Hour)

	got, err := s.Session(ctx, hashOf("a"))
	if err != nil || got.AccountID != "acct-1" || got.CSRFToken != "csrf-a" || got.Pending || !got.ExpiresAt.Equal(now.Add(time.Hour)) || !bytes.Equal(got.IDHash, hashOf("a")) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if err := s.TouchSession(ctx, hashOf("a"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, hashOf("a")); !got.LastSeenAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("touch: %+v", got)
	}
	if err := s.PruneSessions(ctx, now, now.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"a": true, "b": true, "c": true, "old": false, "idle": false} {
		if _, err := s.Session(ctx, hashOf(id)); (err == nil) != want {
			t.Errorf("after pruning, session %s: %v (want kept: %v)", id, err, want)
		}
	}
	if err := s.DeleteAccountSessions(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hashOf("b")); !errors.Is(err, tokenissuer.ErrSessionNotFound) {
		t.Fatalf("sessions of the account outlived it: %v", err)
	}
	if err := s.DeleteAccount(ctx, "acct-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, hashOf("c")); !errors.Is(err, tokenissuer.ErrSessionNotFound) {
		t.Fatalf("a deleted account's session: %v", err)
	}
	if err := s.DeleteSession(ctx, hashOf("c")); err != nil {
		t.Fatalf("deleting a session that is gone: %v", err)
	}
}

func testStoreInvites(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	now := time.Unix(1_800_000_000, 0).UTC()
	inv := &tokenissuer.Invite{IDHash: hashOf("tok"), Email: "bob@example.com", Name: "Bob", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "account:ada@example.com", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateInvite(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: hashOf("stale"), Email: "x@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Invite(ctx, hashOf("tok"), now)
	if err != nil || got.Email != "bob@example.com" || got.Role != tokenissuer.RoleTenantViewer || got.TenantID != "acme" || got.Name != "Bob" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if _, err := s.Invite(ctx, hashOf("tok"), now.Add(time.Hour)); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("expired invitation: %v", err)
	}
	// Inviting the same person again replaces the earlier link: one live
	// invitation per email.
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: hashOf("first"), Email: "carol@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: hashOf("carol-again"), Email: "carol@example.com", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invite(ctx, hashOf("first"), now); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("the replaced invitation: %v", err)
	}
	if got, err := s.Invite(ctx, hashOf("carol-again"), now); err != nil || got.Role != tokenissuer.RoleTenantAdmin {
		t.Fatalf("the latest invitation: %v %+v", err, got)
	}
	// Another tenant inviting the same email does not cancel this one.
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: hashOf("carol-globex"), Email: "carol@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "globex", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invite(ctx, hashOf("carol-again"), now); err != nil {
		t.Fatalf("another tenant's invitation cancelled this one: %v", err)
	}
	// Listing: one tenant's, or all; expired ones are not listed.
	emailsOf := func(tenant string, all bool) string {
		t.Helper()
		list, err := s.Invites(ctx, tenant, all, now)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, inv := range list {
			out = append(out, inv.Email+"@"+inv.TenantID)
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	if got := emailsOf("globex", false); got != "carol@example.com@globex" {
		t.Errorf("globex's invitations: %s", got)
	}
	if got := emailsOf("", true); !strings.Contains(got, "carol@example.com@acme") || !strings.Contains(got, "carol@example.com@globex") {
		t.Errorf("all invitations: %s", got)
	}
	if err := s.DeleteInvite(ctx, "carol@example.com", "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invite(ctx, hashOf("carol-again"), now); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("a revoked invitation: %v", err)
	}
	if _, err := s.Invite(ctx, hashOf("carol-globex"), now); err != nil {
		t.Fatalf("revoking acme's invitation revoked globex's: %v", err)
	}
	if err := s.DeleteInvite(ctx, "carol@example.com", "acme"); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := s.AcceptInvite(ctx, hashOf("stale"), now.Add(2*time.Minute), &tokenissuer.Account{ID: "acct-x", Email: "x@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("accepting an expired invitation: %v", err)
	}

	// Two browsers accept at once: one account, one winner.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.AcceptInvite(ctx, hashOf("tok"), now, &tokenissuer.Account{ID: "acct-bob-" + string(rune('a'+i)), Email: "bob@example.com",
				Role: tokenissuer.RoleTenantViewer, TenantID: "acme", Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, tokenissuer.ErrInviteNotFound):
			t.Errorf("concurrent accept: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d accepts of one invitation succeeded", won)
	}
	if _, err := s.AccountByEmail(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}

	// An invitation for an email that has an account meanwhile stays usable
	// by nobody and is not used up.
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: hashOf("again"), Email: "bob@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AcceptInvite(ctx, hashOf("again"), now, &tokenissuer.Account{ID: "acct-bob-2", Email: "bob@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, tokenissuer.ErrAccountExists) {
		t.Fatalf("accept for a taken email: %v", err)
	}
	if _, err := s.Invite(ctx, hashOf("again"), now); err != nil {
		t.Fatalf("a refused accept used the invitation up: %v", err)
	}
	if err := s.PruneInvites(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invite(ctx, hashOf("again"), now); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("pruned invitation: %v", err)
	}
}

// hashOf stands for how the service keeps session and invitation tokens:
// the store keeps whatever bytes it is given.
func hashOf(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// operatorContext is a context in which a platform operator acts.
func operatorContext() context.Context {
	return tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
}
