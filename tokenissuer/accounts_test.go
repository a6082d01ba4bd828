package tokenissuer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp/totp"
)

// testPasswordParams keep Argon2id cheap in tests (for tests only).
var testPasswordParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

type accountsFixture struct {
	accounts *tokenissuer.Accounts
	admin    *tokenissuer.Admin
	store    tokenissuer.Store
	clock    *fakeclock.Clock
	ctx      context.Context
}

func newAccountsFixture(t *testing.T) *accountsFixture {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/store.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hasher, err := tokenissuer.NewSecretHasher([]byte("0123456789abcdef0123456789abcdef")) // for tests only
	if err != nil {
		t.Fatal(err)
	}
	enc, err := keys.NewEncrypter([]byte("fedcba9876543210fedcba9876543210")) // for tests only
	if err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New()
	cfg := server.DefaultConfig()
	admin := tokenissuer.NewAdmin(store, hasher, clock, tokenissuer.AdminLimits{MaxTokenLifetime: time.Hour})
	accounts, err := tokenissuer.NewAccounts(admin, store, enc,
		clock, tokenissuer.AccountsConfig{SessionIdleTimeout: 30 * time.Minute, SessionLifetime: 12 * time.Hour, InviteLifetime: 72 * time.Hour,
			MinPasswordLength: cfg.Portal.MinPasswordLength, PasswordParams: testPasswordParams,
			SignInMaxFailures: 3, SignInWindow: 15 * time.Minute, SignInDelay: time.Second}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	for _, tn := range []tokenissuer.NewTenant{{ID: "acme", ScopeCeiling: []string{"a"}}, {ID: "globex", ScopeCeiling: []string{"a"}}} {
		if _, err := admin.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	return &accountsFixture{accounts: accounts, admin: admin, store: store, clock: clock, ctx: ctx}
}

func (f *accountsFixture) create(t *testing.T, email string, role tokenissuer.Role, tenant string) *tokenissuer.Account {
	t.Helper()
	a, err := f.accounts.CreateAccount(f.ctx, tokenissuer.NewAccount{Email: email, Role: role, TenantID: tenant, Password: "correct horse battery staple"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSignInNeverTellsWhetherTheEmailExists(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	disabled := f.create(t, "gone@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	if _, err := f.accounts.SetAccountStatus(f.ctx, nil, disabled.ID, tokenissuer.AccountDisabled); err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string][2]string{
		"wrong password":   {"ada@acme.example", "wrong password entirely"},
		"unknown email":    {"nobody@acme.example", "correct horse battery staple"},
		"disabled account": {"gone@acme.example", "correct horse battery staple"},
	} {
		if _, err := f.accounts.SignIn(f.ctx, try[0], try[1], "192.0.2.1"); err != tokenissuer.ErrSignInFailed {
			t.Errorf("%s: %v, want exactly ErrSignInFailed", name, err)
		}
	}
	// A made-up email of 10 KB is refused alike, before any limiter key is
	// made of it.
	if _, err := f.accounts.SignIn(f.ctx, strings.Repeat("a", 10<<10)+"@acme.example", "x", "192.0.2.3"); err != tokenissuer.ErrSignInFailed {
		t.Errorf("huge email: %v", err)
	}
	in, err := f.accounts.SignIn(f.ctx, "  ADA@acme.example ", "correct horse battery staple", "192.0.2.2")
	if err != nil || in.Session.Pending {
		t.Fatalf("right password (email in another case): %v", err)
	}
}

// TestSignInLimitsSlowGuessersAndNeverLockOutTheOwner: failures past the
// limit slow an account's attempts, progressively, but the owner with the
// right password still gets in; the sender's own address is refused.
func TestSignInLimitsSlowGuessersAndNeverLockOutTheOwner(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	ada := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	const password = "correct horse battery staple"
	guess := func(address string) {
		t.Helper()
		if _, err := f.accounts.SignIn(f.ctx, "ada@acme.example", "guess", address); err != tokenissuer.ErrSignInFailed {
			t.Fatalf("a wrong guess from %s: %v", address, err)
		}
	}
	waited := func(sign func()) time.Duration {
		before := f.clock.Now()
		sign()
		return f.clock.Now().Sub(before)
	}
	for i := range 3 {
		if d := waited(func() { guess(fmt.Sprintf("192.0.2.%d", i+1)) }); d != 0 {
			t.Fatalf("guess %d within the limit waited %s", i+1, d)
		}
	}
	// Past the limit each attempt for the account waits, longer each time.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if d := waited(func() { guess(fmt.Sprintf("198.51.100.%d", i+1)) }); d != want {
			t.Fatalf("guess %d past the limit waited %s, want %s", i+1, d, want)
		}
	}
	// The owner, from an address of their own, is slowed but let in; that
	// clears the account's count.
	var in *tokenissuer.SignIn
	d := waited(func() {
		var err error
		if in, err = f.accounts.SignIn(f.ctx, "ada@acme.example", password, "203.0.113.50"); err != nil {
			t.Fatalf("the owner after others' failures: %v", err)
		}
	})
	if d != 8*time.Second || in.Account.ID != ada.ID {
		t.Fatalf("the owner waited %s", d)
	}
	if d := waited(func() { guess("192.0.2.77") }); d != 0 {
		t.Fatalf("after the owner signed in, a guess waited %s", d)
	}

	// An operator clears the count (an unlock), and it is audited.
	for i := range 4 {
		guess(fmt.Sprintf("192.0.2.%d", 100+i))
	}
	if err := f.accounts.ClearSignInFailures(f.ctx, nil, ada.ID); err != nil {
		t.Fatal(err)
	}
	if d := waited(func() { guess("192.0.2.200") }); d != 0 {
		t.Fatalf("after an operator cleared the count, a guess waited %s", d)
	}
	if records, err := f.store.AuditRecords(context.Background(), tokenissuer.AuditQuery{TargetID: ada.ID}); err != nil || !slices.ContainsFunc(records, func(r tokenissuer.AuditRecord) bool {
		return r.Action == "account.clear_sign_in_failures" && r.Actor == "cli:test"
	}) {
		t.Fatalf("the clearing is not audited: %v %+v", err, records)
	}

	// An address is the sender's own: past the limit it is refused, for
	// unknown emails as for known ones.
	var limited *tokenissuer.RateLimitedError
	for _, email := range []string{"x@example.com", "y@example.com", "z@example.com"} {
		f.accounts.SignIn(f.ctx, email, "guess", "203.0.113.7")
	}
	if _, err := f.accounts.SignIn(f.ctx, "other@example.com", "guess", "203.0.113.7"); !errors.As(err, &limited) {
		t.Fatalf("an address after 3 failures: %v", err)
	}
	// Each refusal is in the tenant's audit trail, from where it came, with
	// no password; an unknown email writes nothing there.
	records, err := f.store.AuditRecords(context.Background(), tokenissuer.AuditQuery{Actor: "anonymous"})
	if err != nil || len(records) != 12 || records[0].Action != "account.sign_in_failed" || records[0].TenantID != "acme" || records[0].Address != "192.0.2.1" {
		t.Fatalf("audit of refused sign-ins: %v %d %+v", err, len(records), records)
	}
}

// TestSignInAttemptsAreCountedBeforeThePasswordIsChecked: attempts racing
// from one address cannot all pass a limit each checked alone.
func TestSignInAttemptsAreCountedBeforeThePasswordIsChecked(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed, limited := 0, 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.accounts.SignIn(f.ctx, fmt.Sprintf("guess-%d@acme.example", i), "guess", "203.0.113.7")
			mu.Lock()
			defer mu.Unlock()
			var rl *tokenissuer.RateLimitedError
			switch {
			case err == tokenissuer.ErrSignInFailed:
				failed++
			case errors.As(err, &rl):
				limited++
			default:
				t.Errorf("attempt %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if failed != 3 || limited != 17 {
		t.Fatalf("20 racing attempts with a limit of 3: %d checked, %d refused", failed, limited)
	}
}

func TestSessionsEndOnIdleAbsoluteTimeoutSignOutAndDisable(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	a := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	signIn := func() string {
		t.Helper()
		in, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		return in.Token
	}
	alive := func(token string) bool {
		_, _, err := f.accounts.Session(f.ctx, token)
		return err == nil
	}

	idle := signIn()
	f.clock.Advance(29 * time.Minute)
	if !alive(idle) {
		t.Fatal("a session used within the idle timeout ended")
	}
	f.clock.Advance(29 * time.Minute) // used at 29 min: idle again only 29 min
	if !alive(idle) {
		t.Fatal("activity did not extend the session")
	}
	f.clock.Advance(31 * time.Minute)
	if alive(idle) {
		t.Fatal("an idle session lived on")
	}

	busy := signIn()
	for range 12 * 60 / 20 {
		f.clock.Advance(20 * time.Minute)
		alive(busy)
	}
	if alive(busy) {
		t.Fatal("a session outlived its absolute lifetime")
	}

	out := signIn()
	if err := f.accounts.SignOut(f.ctx, out); err != nil || alive(out) {
		t.Fatalf("sign-out: %v", err)
	}

	other := signIn()
	admin := f.create(t, "boss@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	if _, err := f.accounts.SetAccountStatus(f.ctx, admin, a.ID, tokenissuer.AccountDisabled); err != nil {
		t.Fatal(err)
	}
	if alive(other) {
		t.Fatal("a disabled account's session lived on")
	}
	if alive("") || alive(strings.Repeat("x", 4096)) {
		t.Fatal("a made-up session token was accepted")
	}
}

func TestSecondFactorCodesAreGoodOnce(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	a := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	const password = "correct horse battery staple"
	// Enrollment asks for the password again, and its form expires.
	if _, err := f.accounts.BeginTOTP(f.ctx, a, "wrong"); !errors.Is(err, tokenissuer.ErrPasswordWrong) {
		t.Fatalf("enrollment without the password: %v", err)
	}
	stale, err := f.accounts.BeginTOTP(f.ctx, a, password)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(11 * time.Minute)
	staleCode, _ := totp.GenerateCode(stale.Key.Secret(), f.clock.Now())
	var inv *tokenissuer.InvalidError
	if _, err := f.accounts.ConfirmTOTP(f.ctx, a, stale.Sealed, staleCode); !errors.As(err, &inv) || !strings.Contains(inv.Msg, "expired") {
		t.Fatalf("an expired enrollment form: %v", err)
	}
	// Its expiry is sealed with it: a later one written in does not open.
	if _, after, ok := strings.Cut(stale.Sealed, "."); !ok {
		t.Fatal("no expiry in the form")
	} else if _, err := f.accounts.ConfirmTOTP(f.ctx, a, fmt.Sprint(f.clock.Now().Add(time.Hour).Unix())+"."+after, staleCode); !errors.As(err, &inv) || !strings.Contains(inv.Msg, "altered") {
		t.Fatalf("an enrollment form with its expiry moved: %v", err)
	}
	enrollment, err := f.accounts.BeginTOTP(f.ctx, a, password)
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := f.accounts.BeginTOTP(f.ctx, a, password) // another tab
	if err != nil {
		t.Fatal(err)
	}
	secret := enrollment.Key.Secret()
	if _, err := f.accounts.ConfirmTOTP(f.ctx, a, enrollment.Sealed, "123456"); !errors.Is(err, tokenissuer.ErrSecondFactorFailed) && err == nil {
		t.Fatal("a wrong enrollment code was accepted")
	}
	if _, err := f.accounts.ConfirmTOTP(f.ctx, a, enrollment.Sealed[:len(enrollment.Sealed)-8]+"AAAAAAAA", "123456"); err == nil {
		t.Fatal("an altered enrollment form was accepted")
	}
	code, _ := totp.GenerateCode(secret, f.clock.Now())
	codes, err := f.accounts.ConfirmTOTP(f.ctx, a, enrollment.Sealed, code)
	if err != nil || len(codes) != 10 {
		t.Fatalf("enroll: %v %d", err, len(codes))
	}
	stored, _ := f.store.Account(f.ctx, a.ID)
	if strings.Contains(string(stored.TOTPSecret), secret) {
		t.Fatal("the TOTP secret is stored in clear")
	}
	// A form rendered earlier, confirmed now, replaces nothing.
	earlierCode, _ := totp.GenerateCode(earlier.Key.Secret(), f.clock.Now())
	if _, err := f.accounts.ConfirmTOTP(f.ctx, a, earlier.Sealed, earlierCode); !errors.Is(err, tokenissuer.ErrSecondFactorOn) {
		t.Fatalf("an earlier enrollment form replaced the factor: %v", err)
	}
	if _, err := f.accounts.BeginTOTP(f.ctx, stored, password); !errors.Is(err, tokenissuer.ErrSecondFactorOn) {
		t.Fatalf("a second enrollment over an active factor: %v", err)
	}

	pending := func() string {
		t.Helper()
		in, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.1")
		if err != nil || !in.Session.Pending {
			t.Fatalf("password step: %v", err)
		}
		if _, _, err := f.accounts.Session(f.ctx, in.Token); err == nil {
			t.Fatal("a session pending its second factor is signed in")
		}
		return in.Token
	}
	// The enrollment's code cannot be replayed at sign-in.
	if _, err := f.accounts.CompleteSignIn(f.ctx, pending(), code, "192.0.2.1"); !errors.Is(err, tokenissuer.ErrSecondFactorFailed) {
		t.Fatalf("replayed code: %v", err)
	}
	f.clock.Advance(30 * time.Second)
	next, _ := totp.GenerateCode(secret, f.clock.Now())
	token := pending()
	in, err := f.accounts.CompleteSignIn(f.ctx, token, next, "192.0.2.1")
	if err != nil {
		t.Fatalf("next code: %v", err)
	}
	if in.Token == token {
		t.Fatal("the session ID did not change at the second factor")
	}
	if _, _, err := f.accounts.PendingSignIn(f.ctx, token); err == nil {
		t.Fatal("the pending session lived on")
	}
	// A recovery code works once.
	if _, err := f.accounts.CompleteSignIn(f.ctx, pending(), strings.ToUpper(codes[3]), "192.0.2.1"); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if _, err := f.accounts.CompleteSignIn(f.ctx, pending(), codes[3], "192.0.2.1"); !errors.Is(err, tokenissuer.ErrSecondFactorFailed) {
		t.Fatalf("a used recovery code: %v", err)
	}
	// Removing it needs the password and the factor itself.
	if _, err := f.accounts.RemoveSecondFactor(f.ctx, a, a.ID, "wrong", codes[5]); err == nil {
		t.Fatal("removed the second factor without the password")
	}
	if _, err := f.accounts.RemoveSecondFactor(f.ctx, a, a.ID, password, "000000"); !errors.Is(err, tokenissuer.ErrSecondFactorFailed) {
		t.Fatalf("removed the second factor without a code of it: %v", err)
	}
	if got, err := f.accounts.RemoveSecondFactor(f.ctx, a, a.ID, password, codes[5]); err != nil || got.SecondFactor() {
		t.Fatalf("remove: %v", err)
	}
}

func TestWhoMayInviteAndManageWhom(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	acmeAdmin := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	viewer := f.create(t, "vic@acme.example", tokenissuer.RoleTenantViewer, "acme")
	globex := f.create(t, "gus@globex.example", tokenissuer.RoleTenantViewer, "globex")
	ops := f.create(t, "ops@example.com", tokenissuer.RolePlatformAdmin, "")

	for name, tc := range map[string]struct {
		by   *tokenissuer.Account
		inv  tokenissuer.NewInvite
		want error
	}{
		"a tenant admin invites a viewer of their tenant": {acmeAdmin, tokenissuer.NewInvite{Email: "new@acme.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"}, nil},
		"a tenant admin invites into another tenant":      {acmeAdmin, tokenissuer.NewInvite{Email: "x@globex.example", Role: tokenissuer.RoleTenantViewer, TenantID: "globex"}, tokenissuer.ErrNotPermitted},
		"a tenant admin invites a platform admin":         {acmeAdmin, tokenissuer.NewInvite{Email: "x@acme.example", Role: tokenissuer.RolePlatformAdmin}, tokenissuer.ErrNotPermitted},
		"a viewer invites":                                {viewer, tokenissuer.NewInvite{Email: "y@acme.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"}, tokenissuer.ErrNotPermitted},
		"a platform admin invites anyone":                 {ops, tokenissuer.NewInvite{Email: "z@globex.example", Role: tokenissuer.RoleTenantAdmin, TenantID: "globex"}, nil},
		"an invitation for an existing account":           {ops, tokenissuer.NewInvite{Email: "ada@acme.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"}, tokenissuer.ErrAccountExists},
		"a tenant admin invites a colleague twice":        {acmeAdmin, tokenissuer.NewInvite{Email: "vic@acme.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"}, tokenissuer.ErrAccountExists},
		// Another tenant's account is not told apart from no account.
		"a tenant admin invites another tenant's person": {acmeAdmin, tokenissuer.NewInvite{Email: "gus@globex.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"}, nil},
	} {
		_, _, err := f.accounts.Invite(f.ctx, tc.by, tc.inv)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// ...and the link, whoever holds it, answers as a spent one: it makes
	// no account and tells nothing.
	token, _, err := f.accounts.Invite(f.ctx, acmeAdmin, tokenissuer.NewInvite{Email: "gus@globex.example", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.accounts.AcceptInvite(f.ctx, token, "Gus", "a long enough passphrase"); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("accepting an invitation for another tenant's person: %v", err)
	}
	if a, err := f.accounts.FindAccount(f.ctx, "gus@globex.example"); err != nil || a.TenantID != "globex" || a.Role != tokenissuer.RoleTenantViewer {
		t.Fatalf("the other tenant's account changed: %v %+v", err, a)
	}
	if _, err := f.accounts.SetAccountStatus(f.ctx, acmeAdmin, globex.ID, tokenissuer.AccountDisabled); !errors.Is(err, tokenissuer.ErrAccountNotFound) {
		t.Errorf("a tenant admin disabled another tenant's account: %v", err)
	}
	if err := f.accounts.DeleteAccount(f.ctx, viewer, acmeAdmin.ID); !errors.Is(err, tokenissuer.ErrNotPermitted) {
		t.Errorf("a viewer deleted an admin: %v", err)
	}
	list, err := f.accounts.Accounts(f.ctx, acmeAdmin)
	if err != nil || len(list) != 2 {
		t.Errorf("a tenant admin sees %d accounts, want acme's 2: %v", len(list), err)
	}

	// An invitation works once, and not after it expires.
	token, _, err = f.accounts.Invite(f.ctx, acmeAdmin, tokenissuer.NewInvite{Email: "nina@acme.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var inv *tokenissuer.InvalidError
	if _, err := f.accounts.AcceptInvite(f.ctx, token, "Nina", "short"); !errors.As(err, &inv) {
		t.Fatalf("a short password: %v", err)
	}
	if a, err := f.accounts.AcceptInvite(f.ctx, token, "Nina", "a long enough passphrase"); err != nil || a.Role != tokenissuer.RoleTenantViewer || a.TenantID != "acme" {
		t.Fatalf("accept: %v %+v", err, a)
	}
	if _, err := f.accounts.AcceptInvite(f.ctx, token, "Nina", "a long enough passphrase"); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("accepting twice: %v", err)
	}
	late, _, err := f.accounts.Invite(f.ctx, acmeAdmin, tokenissuer.NewInvite{Email: "late@acme.example", Role: tokenissuer.RoleTenantViewer, TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(73 * time.Hour)
	if _, err := f.accounts.AcceptInvite(f.ctx, late, "", "a long enough passphrase"); !errors.Is(err, tokenissuer.ErrInviteNotFound) {
		t.Fatalf("an expired invitation: %v", err)
	}

	// Every change is audited, never with a password or hash.
	records, err := f.store.AuditRecords(f.ctx, tokenissuer.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range records {
		seen[r.Action] = true
		if strings.Contains(string(r.Before)+string(r.After), "argon2id") || strings.Contains(string(r.Before)+string(r.After), "passphrase") {
			t.Errorf("audit record %s holds a password or hash", r.Action)
		}
	}
	for _, action := range []string{"account.create", "account.invite", "account.accept_invitation"} {
		if !seen[action] {
			t.Errorf("no %s in the audit trail", action)
		}
	}
}

func TestChangingThePasswordEndsTheOtherSessions(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	a := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	here, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.accounts.ChangePassword(f.ctx, a, here.Session.IDHash, "wrong current", "a brand new passphrase"); !errors.Is(err, tokenissuer.ErrSignInFailed) {
		t.Fatalf("without the current password: %v", err)
	}
	var inv *tokenissuer.InvalidError
	if err := f.accounts.ChangePassword(f.ctx, a, here.Session.IDHash, "correct horse battery staple", "short"); !errors.As(err, &inv) {
		t.Fatalf("a short new password: %v", err)
	}
	if err := f.accounts.ChangePassword(f.ctx, a, here.Session.IDHash, "correct horse battery staple", "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.accounts.Session(f.ctx, here.Token); err != nil {
		t.Fatalf("the session that changed the password ended: %v", err)
	}
	if _, _, err := f.accounts.Session(f.ctx, elsewhere.Token); err == nil {
		t.Fatal("another session outlived the password change")
	}
	if _, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.1"); err != tokenissuer.ErrSignInFailed {
		t.Fatalf("the old password: %v", err)
	}
	if _, err := f.accounts.SignIn(f.ctx, a.Email, "a brand new passphrase", "192.0.2.1"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

// TestPasswordWorkIsBounded: past the running and waiting password checks
// the pool admits, a sign-in is refused at once (ErrBusy, a 503 in the
// portal) instead of holding another Argon2id's memory; a free pool signs
// in as before.
func TestPasswordWorkIsBounded(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	release, running, admitted := f.accounts.OccupyPasswordWork()
	if _, err := f.accounts.SignIn(f.ctx, "ada@acme.example", "correct horse battery staple", "192.0.2.1"); !errors.Is(err, tokenissuer.ErrBusy) {
		t.Fatalf("a sign-in past the pool: %v", err)
	}
	release()
	if _, err := f.accounts.SignIn(f.ctx, "ada@acme.example", "correct horse battery staple", "192.0.2.1"); err != nil {
		t.Fatalf("a sign-in with the pool free: %v", err)
	}
	if running < 2 || admitted <= running {
		t.Fatalf("pool of %d running, %d admitted", running, admitted)
	}
}

// TestADisabledTenantsPeopleAreSignedOut: disabling a tenant ends its
// people's sessions at their next page and refuses their sign-ins; enabling
// it lets them sign in again.
func TestADisabledTenantsPeopleAreSignedOut(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	a := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	in, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.SetTenantStatus(f.ctx, "acme", tokenissuer.TenantDisabled); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.accounts.Session(f.ctx, in.Token); !errors.Is(err, tokenissuer.ErrSessionNotFound) {
		t.Fatalf("a session of a disabled tenant: %v", err)
	}
	if _, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.1"); !errors.Is(err, tokenissuer.ErrSignInFailed) {
		t.Fatalf("signing in to a disabled tenant: %v", err)
	}
	if _, err := f.admin.SetTenantStatus(f.ctx, "acme", tokenissuer.TenantActive); err != nil {
		t.Fatal(err)
	}
	if _, err := f.accounts.SignIn(f.ctx, a.Email, "correct horse battery staple", "192.0.2.2"); err != nil {
		t.Fatalf("signing in once the tenant is enabled: %v", err)
	}
}

// TestPasswordsAnAttackerWouldTryEarlyAreRefused: NIST SP 800-63B
// §5.1.1.2: long enough is not enough.
func TestPasswordsAnAttackerWouldTryEarlyAreRefused(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	for _, weak := range []string{
		"aaaaaaaaaaaa",     // repetitive
		"abcdefghijklmn",   // a sequence
		"password1234",     // common
		"qwertyuiop12",     // a keyboard walk
		"ada@acme.example", // the account's own email
		"lovelace1234",     // the account's name and digits
		"iloveyouiloveyou", // common, repeated
	} {
		_, err := f.accounts.CreateAccount(f.ctx, tokenissuer.NewAccount{Email: "ada@acme.example", Name: "Ada Lovelace", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Password: weak})
		var inv *tokenissuer.InvalidError
		if !errors.As(err, &inv) || !strings.Contains(inv.Msg, "too easy to guess") {
			t.Errorf("%q: %v", weak, err)
		}
	}
	if _, err := f.accounts.CreateAccount(f.ctx, tokenissuer.NewAccount{Email: "ada@acme.example", Name: "Ada Lovelace", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Password: "lantern orbit velvet cactus"}); err != nil {
		t.Fatalf("a passphrase of unrelated words: %v", err)
	}
}

// TestPeoplesNamesFollowTheNameRule: a person's name is held to the same
// rule as clients' and tenants'.
func TestPeoplesNamesFollowTheNameRule(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	var invalid *tokenissuer.InvalidError
	_, err := f.accounts.CreateAccount(f.ctx, tokenissuer.NewAccount{Email: "ada@acme.example", Name: "Ada\r\nBcc: x", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Password: "correct horse battery staple"})
	if !errors.As(err, &invalid) {
		t.Fatalf("a name with a line break: %v", err)
	}
	a, err := f.accounts.CreateAccount(f.ctx, tokenissuer.NewAccount{Email: "ada@acme.example", Name: "  ", Role: tokenissuer.RoleTenantAdmin, TenantID: "acme", Password: "correct horse battery staple"})
	if err != nil || a.Name != "ada@acme.example" {
		t.Fatalf("no name: %v %+v", err, a)
	}
}

// TestRolesChangeWithinTheRules: a tenant admin moves a colleague between
// the tenant's roles, never to an operator's, never their own, never
// another tenant's person; the person's sessions end so the new role holds
// at once; and the change is audited.
func TestRolesChangeWithinTheRules(t *testing.T) {
	t.Parallel()
	f := newAccountsFixture(t)
	ada := f.create(t, "ada@acme.example", tokenissuer.RoleTenantAdmin, "acme")
	vic := f.create(t, "vic@acme.example", tokenissuer.RoleTenantViewer, "acme")
	gus := f.create(t, "gus@globex.example", tokenissuer.RoleTenantViewer, "globex")
	session, err := f.accounts.SignIn(f.ctx, "vic@acme.example", "correct horse battery staple", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.accounts.SetRole(f.ctx, ada, vic.ID, tokenissuer.RoleTenantAdmin)
	if err != nil || got.Role != tokenissuer.RoleTenantAdmin {
		t.Fatalf("promote a colleague: %v %+v", err, got)
	}
	if _, _, err := f.accounts.Session(f.ctx, session.Token); err == nil {
		t.Error("the promoted person's old session still works")
	}
	if _, err := f.accounts.SetRole(f.ctx, ada, vic.ID, tokenissuer.RolePlatformAdmin); err == nil {
		t.Error("a tenant admin made someone an operator")
	}
	if _, err := f.accounts.SetRole(f.ctx, ada, ada.ID, tokenissuer.RoleTenantViewer); err == nil {
		t.Error("a person changed their own role")
	}
	if _, err := f.accounts.SetRole(f.ctx, ada, gus.ID, tokenissuer.RoleTenantAdmin); !errors.Is(err, tokenissuer.ErrAccountNotFound) {
		t.Errorf("another tenant's person: %v", err)
	}
	records, err := f.admin.Audit(f.ctx, tokenissuer.AuditQuery{TargetID: vic.ID})
	if err != nil || !strings.Contains(fmt.Sprint(records), "account.set_role") {
		t.Errorf("not audited: %v %v", err, records)
	}
}
