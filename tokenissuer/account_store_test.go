package tokenissuer_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

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
		sess := &tokenissuer.Session{IDHash: tokenissuer.TokenHash(id), AccountID: account, CSRFToken: "csrf-" + id, Address: "127.0.0.1", CreatedAt: created, LastSeenAt: created, ExpiresAt: created.Add(lifetime)}
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

	got, err := s.Session(ctx, tokenissuer.TokenHash("a"))
	if err != nil || got.AccountID != "acct-1" || got.CSRFToken != "csrf-a" || got.Pending || !got.ExpiresAt.Equal(now.Add(time.Hour)) || !bytes.Equal(got.IDHash, tokenissuer.TokenHash("a")) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if err := s.TouchSession(ctx, tokenissuer.TokenHash("a"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, tokenissuer.TokenHash("a")); !got.LastSeenAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("touch: %+v", got)
	}
	if err := s.PruneSessions(ctx, now, now.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"a": true, "b": true, "c": true, "old": false, "idle": false} {
		if _, err := s.Session(ctx, tokenissuer.TokenHash(id)); (err == nil) != want {
			t.Errorf("after pruning, session %s: %v (want kept: %v)", id, err, want)
		}
	}
	if err := s.DeleteAccountSessions(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, tokenissuer.TokenHash("b")); !errors.Is(err, tokenissuer.ErrSessionNotFound) {
		t.Fatalf("sessions of the account outlived it: %v", err)
	}
	if err := s.DeleteAccount(ctx, "acct-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, tokenissuer.TokenHash("c")); !errors.Is(err, tokenissuer.ErrSessionNotFound) {
		t.Fatalf("a deleted account's session: %v", err)
	}
	if err := s.DeleteSession(ctx, tokenissuer.TokenHash("c")); err != nil {
		t.Fatalf("deleting a session that is gone: %v", err)
	}
}

func testStoreInvites(t *testing.T, s tokenissuer.Store) {
	ctx := operatorContext()
	now := time.Unix(1_800_000_000, 0).UTC()
	inv := &tokenissuer.Invite{IDHash: tokenissuer.TokenHash("tok"), Email: "bob@example.com", Name: "Bob", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "account:ada@example.com", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateInvite(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: tokenissuer.TokenHash("stale"), Email: "x@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Invite(ctx, tokenissuer.TokenHash("tok"), now)
	if err != nil || got.Email != "bob@example.com" || got.Role != tokenissuer.RoleTenantViewer || got.TenantID != "acme" || got.Name != "Bob" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if _, err := s.Invite(ctx, tokenissuer.TokenHash("tok"), now.Add(time.Hour)); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("expired invitation: %v", err)
	}
	if err := s.AcceptInvite(ctx, tokenissuer.TokenHash("stale"), now.Add(2*time.Minute), &tokenissuer.Account{ID: "acct-x", Email: "x@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("accepting an expired invitation: %v", err)
	}

	// Two browsers accept at once: one account, one winner.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.AcceptInvite(ctx, tokenissuer.TokenHash("tok"), now, &tokenissuer.Account{ID: "acct-bob-" + string(rune('a'+i)), Email: "bob@example.com",
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
	if err := s.CreateInvite(ctx, &tokenissuer.Invite{IDHash: tokenissuer.TokenHash("again"), Email: "bob@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", CreatedBy: "cli:root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AcceptInvite(ctx, tokenissuer.TokenHash("again"), now, &tokenissuer.Account{ID: "acct-bob-2", Email: "bob@example.com", Role: tokenissuer.RoleTenantViewer, TenantID: "acme", Status: tokenissuer.AccountActive, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, tokenissuer.ErrAccountExists) {
		t.Fatalf("accept for a taken email: %v", err)
	}
	if _, err := s.Invite(ctx, tokenissuer.TokenHash("again"), now); err != nil {
		t.Fatalf("a refused accept used the invitation up: %v", err)
	}
	if err := s.PruneInvites(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invite(ctx, tokenissuer.TokenHash("again"), now); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("pruned invitation: %v", err)
	}
}
