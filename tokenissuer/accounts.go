package tokenissuer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/portcullis/portcullis/tokenissuer/keys"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/trustelem/zxcvbn"
)

// Accounts is the service layer of portal accounts: people, their
// passwords and second factors, sessions and invitations. The portal and
// the CLI are adapters over it. Changes are audited like client changes.
type Accounts struct {
	admin     *Admin
	store     AccountStore
	tenants   TenantStore
	encrypter *keys.Encrypter
	guard     *signInGuard
	clock     Clock
	cfg       AccountsConfig
	log       *slog.Logger
	// decoyHash is verified against when the email is unknown, so a
	// sign-in takes as long whether or not the account exists.
	decoyHash string
	// passwords bounds the Argon2id work running at once.
	passwords *passwordPool
}

// AccountsConfig sets the lifetimes and the password rules.
type AccountsConfig struct {
	SessionIdleTimeout time.Duration
	SessionLifetime    time.Duration
	InviteLifetime     time.Duration
	MinPasswordLength  int
	// PasswordParams are the Argon2id costs of new password hashes;
	// verification reads the costs from each stored hash.
	PasswordParams *argon2id.Params
	// TOTPIssuer names the service in authenticator apps.
	TOTPIssuer string
	// Sign-in limits (signInGuard): failures per address and per account
	// in a window, and the first delay of an account past them.
	SignInMaxFailures int
	SignInWindow      time.Duration
	SignInDelay       time.Duration
	MaxLimiterEntries int
}

// DefaultPasswordParams follow OWASP's Argon2id minimum (19 MiB, two
// passes, one lane): a guess costs an attacker as much, and a sign-in costs
// the issuer tens of milliseconds.
var DefaultPasswordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// sessionTouchInterval is how stale a session's last-seen time may get
// before a request writes it: the idle timeout is exact to this much, and a
// page view costs no write.
const sessionTouchInterval = time.Minute

// NewAccounts returns the account service. encrypter protects TOTP secrets
// at rest; the store counts sign-in attempts, shared by replicas.
func NewAccounts(admin *Admin, store interface {
	AccountStore
	TenantStore
	FailureStore
}, encrypter *keys.Encrypter, clock Clock, cfg AccountsConfig, log *slog.Logger) (*Accounts, error) {
	if encrypter == nil {
		return nil, errors.New("portal accounts need a key-encryption key for their second factors (keys.encryption_key_file)")
	}
	if cfg.PasswordParams == nil {
		cfg.PasswordParams = DefaultPasswordParams
	}
	if cfg.TOTPIssuer == "" {
		cfg.TOTPIssuer = "Portcullis"
	}
	if cfg.SignInMaxFailures <= 0 || cfg.SignInWindow <= 0 {
		return nil, errors.New("portal sign-ins must be limited: set portal.sign_in_max_failures and portal.sign_in_window")
	}
	if cfg.MaxLimiterEntries <= 0 {
		cfg.MaxLimiterEntries = 100_000
	}
	decoy, err := argon2id.CreateHash(RandomID(16), cfg.PasswordParams)
	if err != nil {
		return nil, err
	}
	return &Accounts{admin: admin, store: store, tenants: store, encrypter: encrypter, clock: clock, cfg: cfg, log: log, decoyHash: decoy,
		passwords: newPasswordPool(),
		guard:     newSignInGuard(store, cfg.SignInMaxFailures, cfg.SignInWindow, cfg.SignInDelay, cfg.MaxLimiterEntries, clock, log)}, nil
}

// Errors of account management and sign-in. ErrSignInFailed never says
// whether the email exists, the password was wrong or the account is
// disabled.
var (
	ErrSignInFailed       = errors.New("the email or password is not right")
	ErrSecondFactorFailed = errors.New("the code is not right, or was used already")
	ErrNotPermitted       = errors.New("your role does not allow this")
)

// RateLimitedError is a sign-in refused because of earlier failures.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again in %s", e.RetryAfter.Round(time.Second))
}

// NewAccount describes an account an operator creates.
type NewAccount struct {
	Email    string
	Name     string
	Role     Role
	TenantID string
	// Password may be empty: the person then signs in only after an
	// invitation sets one.
	Password string
}

// NewInvite describes a person invited to create their account.
type NewInvite struct {
	Email    string
	Name     string
	Role     Role
	TenantID string
}

// NormalizeEmail returns the email as accounts key it: trimmed, lower case.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func validateEmail(email string) error {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return invalid("%q is not an email address such as name@example.com", email)
	}
	return nil
}

// checkGrant checks that by may give role in tenantID: a platform admin (or
// the operator, by == nil) anything, a tenant admin tenant roles of their
// own tenant.
func (s *Accounts) checkGrant(ctx context.Context, by *Account, role Role, tenantID string) error {
	if !role.Valid() {
		return invalid("role %q: use one of platform-admin, tenant-admin, tenant-viewer", role)
	}
	if role.TenantBound() != (tenantID != "") {
		if role.TenantBound() {
			return invalid("role %s needs a tenant", role)
		}
		return invalid("role %s is for every tenant; do not name one", role)
	}
	if by != nil && by.Role != RolePlatformAdmin && (by.Role != RoleTenantAdmin || !role.TenantBound() || tenantID != by.TenantID) {
		return ErrNotPermitted
	}
	if tenantID != "" {
		if _, err := s.tenants.Tenant(ctx, tenantID); err != nil {
			return err
		}
	}
	return nil
}

// minPasswordGuesses is the fewest guesses zxcvbn must estimate a new
// password takes (its score 3): 10⁸, out of reach online and costly
// offline against Argon2id.
const minPasswordGuesses = 1e8

// strengthCheckedRunes bounds the part of a password zxcvbn reads: its
// matching grows faster than the length, and a password that long is not
// weak for what follows.
const strengthCheckedRunes = 128

// checkPassword applies NIST SP 800-63B §5.1.1.2: a minimum length, no
// composition rules, and no password an attacker would try early. Common
// and leaked passwords, dictionary words, keyboard walks, repetition and
// sequences, and words from the account's own email and name, are found by
// zxcvbn (Dropbox's estimator: its lists hold the most common passwords of
// public leaks, English words and names); one estimated to fall in fewer
// than 10⁸ guesses is refused.
func (s *Accounts) checkPassword(password string, personal ...string) error {
	runes := []rune(password)
	if n := len(runes); n < s.cfg.MinPasswordLength {
		return invalid("the password has %d characters; use at least %d (a passphrase of several words is easy to remember)", n, s.cfg.MinPasswordLength)
	}
	if len(password) > 1024 {
		return invalid("the password is longer than 1024 bytes")
	}
	var inputs []string
	for _, p := range personal {
		inputs = append(inputs, strings.FieldsFunc(strings.ToLower(p), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })...)
		inputs = append(inputs, strings.ToLower(p))
	}
	if len(runes) > strengthCheckedRunes {
		runes = runes[:strengthCheckedRunes]
	}
	if zxcvbn.PasswordStrength(string(runes), inputs).Guesses < minPasswordGuesses {
		return invalid("the password is too easy to guess: it is common, repetitive or a sequence, or built from your email or name; a passphrase of several unrelated words is better")
	}
	return nil
}

// accountAuditView is what the audit trail keeps of an account: never a
// password hash, second factor or recovery code.
type accountAuditView struct {
	Email        string        `json:"email"`
	Name         string        `json:"name"`
	Role         Role          `json:"role"`
	TenantID     string        `json:"tenant_id,omitempty"`
	Status       AccountStatus `json:"status"`
	SecondFactor bool          `json:"second_factor"`
}

// signInAudit is what the trail keeps of a sign-in: whose account, so
// that the record reads without looking the account up (it may be gone).
type signInAudit struct {
	Email string `json:"email"`
}

func accountAudit(a *Account) *accountAuditView {
	if a == nil {
		return nil
	}
	return &accountAuditView{Email: a.Email, Name: a.Name, Role: a.Role, TenantID: a.TenantID, Status: a.Status, SecondFactor: a.SecondFactor()}
}

// CreateAccount creates an active account (the operator's way: issuer
// accounts create).
func (s *Accounts) CreateAccount(ctx context.Context, na NewAccount) (*Account, error) {
	na.Email = NormalizeEmail(na.Email)
	if err := validateEmail(na.Email); err != nil {
		return nil, err
	}
	name, err := cleanName("name", na.Name, na.Email)
	if err != nil {
		return nil, err
	}
	na.Name = name
	if err := s.checkGrant(ctx, nil, na.Role, na.TenantID); err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	a := &Account{ID: "acct-" + RandomID(9), Email: na.Email, Name: na.Name, Role: na.Role, TenantID: na.TenantID,
		Status: AccountActive, CreatedAt: now, UpdatedAt: now}
	if na.Password != "" {
		if err := s.checkPassword(na.Password, na.Email, na.Name); err != nil {
			return nil, err
		}
		hash, err := s.passwords.hash(ctx, na.Password, s.cfg.PasswordParams)
		if err != nil {
			return nil, err
		}
		a.PasswordHash = hash
	}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return nil, err
	}
	return a, s.admin.audit(ctx, "account.create", a.TenantID, "account", a.ID, nil, accountAudit(a))
}

// Invite records an invitation and returns its token, shown once: the
// invitation link carries it, the store keeps only its hash.
func (s *Accounts) Invite(ctx context.Context, by *Account, ni NewInvite) (string, *Invite, error) {
	ni.Email = NormalizeEmail(ni.Email)
	if err := validateEmail(ni.Email); err != nil {
		return "", nil, err
	}
	if err := s.checkGrant(ctx, by, ni.Role, ni.TenantID); err != nil {
		return "", nil, err
	}
	// An account of the inviter's own tenant is one the inviter sees on
	// the People page; one of another tenant must not be told apart from
	// no account at all, so that invitation goes out like any other (and
	// cannot be accepted: AcceptInvite).
	if existing, err := s.store.AccountByEmail(ctx, ni.Email); err == nil {
		if by == nil || by.Role == RolePlatformAdmin || existing.TenantID == by.TenantID {
			return "", nil, ErrAccountExists
		}
	} else if !errors.Is(err, ErrAccountNotFound) {
		return "", nil, err
	}
	token, err := GenerateSecret()
	if err != nil {
		return "", nil, err
	}
	name, err := cleanName("name", ni.Name, "")
	if err != nil {
		return "", nil, err
	}
	now := s.clock.Now().UTC()
	inv := &Invite{IDHash: tokenHash(token), Email: ni.Email, Name: name, Role: ni.Role, TenantID: ni.TenantID,
		CreatedBy: actorFrom(ctx).ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.InviteLifetime)}
	if err := s.store.CreateInvite(ctx, inv); err != nil {
		return "", nil, err
	}
	view := struct {
		Email     string    `json:"email"`
		Role      Role      `json:"role"`
		TenantID  string    `json:"tenant_id,omitempty"`
		ExpiresAt time.Time `json:"expires_at"`
	}{inv.Email, inv.Role, inv.TenantID, inv.ExpiresAt}
	return token, inv, s.admin.audit(ctx, "account.invite", inv.TenantID, "invitation", inv.Email, nil, view)
}

// PendingInvite returns the invitation of token if it is still good.
func (s *Accounts) PendingInvite(ctx context.Context, token string) (*Invite, error) {
	return s.store.Invite(ctx, tokenHash(token), s.clock.Now())
}

// AcceptInvite creates the invited account with the person's name and
// password; the invitation is used up.
func (s *Accounts) AcceptInvite(ctx context.Context, token, name, password string) (*Account, error) {
	inv, err := s.PendingInvite(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := s.checkPassword(password, inv.Email, name, inv.Name); err != nil {
		return nil, err
	}
	hash, err := s.passwords.hash(ctx, password, s.cfg.PasswordParams)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" {
		name = inv.Name
	}
	if name, err = cleanName("name", name, inv.Email); err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	a := &Account{ID: "acct-" + RandomID(9), Email: inv.Email, Name: name, Role: inv.Role, TenantID: inv.TenantID,
		Status: AccountActive, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.AcceptInvite(ctx, inv.IDHash, now, a); errors.Is(err, ErrAccountExists) {
		// The email has an account in another tenant: the link answers
		// as a spent one does, whoever holds it (possibly the inviter).
		return nil, ErrInviteNotFound
	} else if err != nil {
		return nil, err
	}
	ctx = WithActor(ctx, Actor{ID: "account:" + a.Email, Address: actorFrom(ctx).Address})
	return a, s.admin.audit(ctx, "account.accept_invitation", a.TenantID, "account", a.ID, nil, accountAudit(a))
}

// SignIn is a started session: complete when the account has no second
// factor, pending until CompleteSignIn otherwise.
type SignIn struct {
	// Token is the session cookie's value, known only to the browser.
	Token   string
	Session *Session
	Account *Account
}

// SignIn checks a password. Failures are answered alike (ErrSignInFailed),
// whether or not the email exists; an address past its limit gets
// *RateLimitedError, an account past its limit is slowed (signInGuard).
func (s *Accounts) SignIn(ctx context.Context, email, password, address string) (*SignIn, error) {
	email = NormalizeEmail(email)
	if len(email) > 254 || len(password) > 1024 {
		// No account has such an email: only the address pays, so huge
		// made-up emails cannot fill the store with huge keys.
		if err := s.guard.admit(ctx, "", address); err != nil {
			return nil, err
		}
		return nil, ErrSignInFailed
	}
	if err := s.guard.admit(ctx, email, address); err != nil {
		return nil, err
	}
	a, err := s.store.AccountByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrAccountNotFound) {
		return nil, err
	}
	hash := s.decoyHash
	if a != nil && a.PasswordHash != "" {
		hash = a.PasswordHash
	}
	match, err := s.passwords.compare(ctx, password, hash)
	if errors.Is(err, ErrBusy) || ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("password hash of %s: %w", email, err)
	}
	active := false
	if match && a != nil && a.Status == AccountActive {
		if active, err = s.tenantActive(ctx, a); err != nil {
			return nil, err
		}
	}
	if !match || a == nil || a.PasswordHash == "" || !active {
		s.signInFailed(ctx, a, address)
		return nil, ErrSignInFailed
	}
	s.guard.passed(ctx, email, address, !a.SecondFactor())
	return s.startSession(ctx, a, a.SecondFactor(), address)
}

// tenantActive reports whether a's tenant (if any) is active: a disabled
// or vanished tenant's people may not sign in or stay signed in.
func (s *Accounts) tenantActive(ctx context.Context, a *Account) (bool, error) {
	if a.TenantID == "" {
		return true, nil
	}
	t, err := s.tenants.Tenant(ctx, a.TenantID)
	if errors.Is(err, ErrTenantNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return t.Status == TenantActive, nil
}

// signInFailed logs a refused sign-in and, when it named an account,
// records it in that account's tenant's audit trail: a person guessing at
// an account shows there. An email with no account writes nothing (anyone
// could fill the trail with made-up ones); the limits bound the rest.
func (s *Accounts) signInFailed(ctx context.Context, a *Account, address string) {
	if a == nil {
		s.log.Info("portal sign-in refused", "reason", "unknown-email", "remote", address)
		return
	}
	s.log.Info("portal sign-in refused", "reason", "wrong-password-or-disabled", "account", a.ID, "remote", address)
	ctx = WithActor(ctx, Actor{ID: "anonymous", Address: address})
	if err := s.admin.audit(ctx, "account.sign_in_failed", a.TenantID, "account", a.ID, nil, signInAudit{a.Email}); err != nil {
		s.log.Warn("auditing a refused sign-in failed", "account", a.ID, "err", err)
	}
}

// ClearSignInFailures forgets the failed sign-ins counted against an
// account, so that its attempts are no longer slowed: an operator's or the
// account's admin's answer to someone guessing at it.
func (s *Accounts) ClearSignInFailures(ctx context.Context, by *Account, id string) error {
	target, err := s.managed(ctx, by, id)
	if err != nil {
		return err
	}
	if err := s.guard.clear(ctx, target.Email); err != nil {
		return err
	}
	return s.admin.audit(ctx, "account.clear_sign_in_failures", target.TenantID, "account", target.ID, nil, nil)
}

func (s *Accounts) startSession(ctx context.Context, a *Account, pending bool, address string) (*SignIn, error) {
	token, err := GenerateSecret()
	if err != nil {
		return nil, err
	}
	csrf, err := GenerateSecret()
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	lifetime := s.cfg.SessionLifetime
	if pending {
		lifetime = min(lifetime, 10*time.Minute) // time enough to find the phone
	}
	sess := &Session{IDHash: tokenHash(token), AccountID: a.ID, CSRFToken: csrf, Pending: pending, Address: address,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(lifetime)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	if !pending {
		// Who signed in, when and from where is in the tenant's trail,
		// beside the failures.
		ctx = WithActor(ctx, Actor{ID: "account:" + a.Email, Address: address})
		if err := s.admin.audit(ctx, "account.sign_in", a.TenantID, "account", a.ID, nil, signInAudit{a.Email}); err != nil {
			return nil, err
		}
	}
	return &SignIn{Token: token, Session: sess, Account: a}, nil
}

// CompleteSignIn checks the second factor of a pending session: a TOTP
// code, or one of the recovery codes (used up). The pending session ends
// and a new one starts, so a session ID seen before the second factor is
// worth nothing after it.
func (s *Accounts) CompleteSignIn(ctx context.Context, pendingToken, code, address string) (*SignIn, error) {
	sess, a, err := s.session(ctx, pendingToken, true)
	if err != nil {
		return nil, err
	}
	if err := s.guard.admit(ctx, a.Email, address); err != nil {
		return nil, err
	}
	if _, err := s.useSecondFactor(ctx, a, code); err != nil {
		if errors.Is(err, ErrSecondFactorFailed) {
			// The password was right: whoever holds it shows in the trail.
			actx := WithActor(ctx, Actor{ID: "account:" + a.Email, Address: address})
			if aerr := s.admin.audit(actx, "account.second_factor_failed", a.TenantID, "account", a.ID, nil, signInAudit{a.Email}); aerr != nil {
				s.log.Warn("auditing a refused second factor failed", "account", a.ID, "err", aerr)
			}
		}
		return nil, err
	}
	s.guard.passed(ctx, a.Email, address, true)
	if err := s.store.DeleteSession(ctx, sess.IDHash); err != nil {
		return nil, err
	}
	return s.startSession(ctx, a, false, address)
}

// totpPeriod is the TOTP time step (RFC 6238 §4.1's default, what every
// authenticator app uses).
const totpPeriod = 30

// useSecondFactor accepts a current TOTP code (one step of clock drift
// either way) not used before, or an unused recovery code, which it
// removes.
func (s *Accounts) useSecondFactor(ctx context.Context, a *Account, code string) (usedRecovery bool, err error) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if !a.SecondFactor() {
		return false, ErrSecondFactorFailed
	}
	if len(code) == 6 {
		secret, err := s.openTOTPSecret(a)
		if err != nil {
			return false, err
		}
		step, ok := matchTOTP(secret, code, s.clock.Now())
		if !ok {
			return false, ErrSecondFactorFailed
		}
		_, err = s.store.UpdateAccount(ctx, a.ID, func(cur *Account) error {
			if step <= cur.TOTPLastStep {
				return ErrSecondFactorFailed // replayed
			}
			cur.TOTPLastStep = step
			return nil
		})
		return false, err
	}
	hash := s.admin.hasher.Hash("recovery:"+a.ID, strings.ToLower(code))
	_, err = s.store.UpdateAccount(ctx, a.ID, func(cur *Account) error {
		for i, h := range cur.RecoveryCodes {
			if subtle.ConstantTimeCompare(h, hash) == 1 {
				cur.RecoveryCodes = append(cur.RecoveryCodes[:i:i], cur.RecoveryCodes[i+1:]...)
				return nil
			}
		}
		return ErrSecondFactorFailed
	})
	if err != nil {
		return false, err
	}
	return true, s.admin.audit(ctx, "account.use_recovery_code", a.TenantID, "account", a.ID, nil, nil)
}

// matchTOTP returns the time step whose code is code, trying the current
// step and one either side.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	step := now.Unix() / totpPeriod
	for _, d := range []int64{0, -1, 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((step+d)*totpPeriod, 0), opts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step + d, true
		}
	}
	return 0, false
}

func (s *Accounts) openTOTPSecret(a *Account) (string, error) {
	plain, err := keys.OpenStored(s.encrypter, "totp:"+a.ID, a.TOTPSecret)
	if err != nil {
		return "", fmt.Errorf("second factor of %s: %w", a.Email, err)
	}
	return string(plain), nil
}

// Session returns the signed-in session of token and its account:
// ErrSessionNotFound when it is unknown, past its idle or absolute
// timeout, still pending its second factor, or its account is disabled.
func (s *Accounts) Session(ctx context.Context, token string) (*Session, *Account, error) {
	return s.session(ctx, token, false)
}

func (s *Accounts) session(ctx context.Context, token string, pending bool) (*Session, *Account, error) {
	if token == "" || len(token) > 128 {
		return nil, nil, ErrSessionNotFound
	}
	sess, err := s.store.Session(ctx, tokenHash(token))
	if err != nil {
		return nil, nil, err
	}
	now := s.clock.Now()
	if sess.Pending != pending || !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= s.cfg.SessionIdleTimeout {
		return nil, nil, ErrSessionNotFound
	}
	a, err := s.store.Account(ctx, sess.AccountID)
	if errors.Is(err, ErrAccountNotFound) {
		return nil, nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if a.Status != AccountActive {
		return nil, nil, ErrSessionNotFound
	}
	// Authority is read when it is used: the people of a tenant disabled
	// since they signed in are signed out at their next page.
	if active, err := s.tenantActive(ctx, a); err != nil {
		return nil, nil, err
	} else if !active {
		return nil, nil, ErrSessionNotFound
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchInterval {
		if err := s.store.TouchSession(ctx, sess.IDHash, now.UTC()); err != nil {
			return nil, nil, err
		}
		sess.LastSeenAt = now.UTC()
	}
	return sess, a, nil
}

// PendingSignIn returns the session of token that awaits its second
// factor, and its account.
func (s *Accounts) PendingSignIn(ctx context.Context, token string) (*Session, *Account, error) {
	return s.session(ctx, token, true)
}

// MinPasswordLength is the shortest password accepted.
func (s *Accounts) MinPasswordLength() int { return s.cfg.MinPasswordLength }

// SignOut ends the session of token in the store, so no replica serves it
// again.
func (s *Accounts) SignOut(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, tokenHash(token))
}

// TOTPEnrollment is a second factor being set up: the secret is not the
// account's until a code from it is confirmed.
type TOTPEnrollment struct {
	Key *otp.Key
	// Sealed is the secret encrypted for this account, carried by the
	// confirmation form.
	Sealed string
}

// totpEnrollmentLifetime is how long an enrollment form can be confirmed:
// a form left open on a shared screen is worth nothing after it.
const totpEnrollmentLifetime = 10 * time.Minute

// ErrSecondFactorOn is an enrollment for an account that has a second
// factor: replacing it needs the current one (RemoveSecondFactor first).
var ErrSecondFactorOn = errors.New("a second factor is on already; remove it first, with your password and a code from it")

// BeginTOTP generates a TOTP secret for the account to enroll, once the
// person has given their password again: a session left open is not
// enough to bind an attacker's phone to the account.
func (s *Accounts) BeginTOTP(ctx context.Context, a *Account, password string) (*TOTPEnrollment, error) {
	if a.SecondFactor() {
		return nil, ErrSecondFactorOn
	}
	if err := s.reauthenticate(ctx, a, password); err != nil {
		return nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.TOTPIssuer, AccountName: a.Email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	expires := strconv.FormatInt(s.clock.Now().Add(totpEnrollmentLifetime).Unix(), 10)
	// The expiry is bound into the seal: changing it breaks the seal.
	sealed := s.encrypter.Seal("totp-enrollment:"+a.ID+":"+expires, []byte(key.Secret()))
	return &TOTPEnrollment{Key: key, Sealed: expires + "." + base32.StdEncoding.EncodeToString(sealed)}, nil
}

// reauthenticate checks the password of a signed-in person before a
// sensitive change, under the sign-in limits.
func (s *Accounts) reauthenticate(ctx context.Context, a *Account, password string) error {
	address := actorFrom(ctx).Address
	if err := s.guard.admit(ctx, a.Email, address); err != nil {
		return err
	}
	ok, err := s.passwords.compare(ctx, password, a.PasswordHash)
	if errors.Is(err, ErrBusy) || ctx.Err() != nil {
		return err
	}
	if err != nil || !ok {
		s.signInFailed(ctx, a, address)
		return ErrPasswordWrong
	}
	s.guard.passed(ctx, a.Email, address, false)
	return nil
}

// ErrPasswordWrong is a signed-in person's password, asked again, that
// is not right.
var ErrPasswordWrong = errors.New("the password is not right")

// recoveryCodeCount is how many recovery codes an enrollment gives.
const recoveryCodeCount = 10

// ConfirmTOTP enrolls the secret of a BeginTOTP when code comes from it,
// and returns the recovery codes, shown once.
func (s *Accounts) ConfirmTOTP(ctx context.Context, a *Account, sealed, code string) ([]string, error) {
	expires, encoded, _ := strings.Cut(sealed, ".")
	raw, err := base32.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, invalid("the enrollment form was altered; start again")
	}
	secret, err := keys.OpenStored(s.encrypter, "totp-enrollment:"+a.ID+":"+expires, raw)
	if err != nil {
		return nil, invalid("the enrollment form was altered; start again")
	}
	if at, _ := strconv.ParseInt(expires, 10, 64); !s.clock.Now().Before(time.Unix(at, 0)) {
		return nil, invalid("the enrollment form expired; start again")
	}
	step, ok := matchTOTP(string(secret), strings.TrimSpace(code), s.clock.Now())
	if !ok {
		return nil, ErrSecondFactorFailed
	}
	codes := make([]string, recoveryCodeCount)
	hashes := make([][]byte, recoveryCodeCount)
	for i := range codes {
		raw := make([]byte, 7)
		_, _ = rand.Read(raw)
		b := strings.ToLower(base32.StdEncoding.EncodeToString(raw)) // 50 random bits in the first ten
		codes[i] = b[:5] + "-" + b[5:10]
		hashes[i] = s.admin.hasher.Hash("recovery:"+a.ID, codes[i])
	}
	before := accountAudit(a)
	updated, err := s.store.UpdateAccount(ctx, a.ID, func(cur *Account) error {
		if cur.SecondFactor() {
			return ErrSecondFactorOn // a form rendered before never replaces one
		}
		cur.TOTPSecret = s.encrypter.Seal("totp:"+cur.ID, secret)
		cur.TOTPLastStep = step
		cur.RecoveryCodes = hashes
		cur.UpdatedAt = nextVersionTime(s.clock.Now().UTC(), cur.UpdatedAt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return codes, s.admin.audit(ctx, "account.enroll_second_factor", a.TenantID, "account", a.ID, before, accountAudit(updated))
}

// RemoveSecondFactor removes the account's TOTP second factor and recovery
// codes: by the person, who proves it with their password and a code of
// the factor (or a recovery code), or by an admin who manages the account
// (password and code empty: a lost phone).
func (s *Accounts) RemoveSecondFactor(ctx context.Context, by *Account, id, password, code string) (*Account, error) {
	target, err := s.store.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	if by != nil && by.ID == id {
		if must, err := s.secondFactorRequired(ctx, target); err != nil {
			return nil, err
		} else if must {
			return nil, invalid("your organisation requires a second factor, so it cannot be removed; if you lost your authenticator, ask an admin to reset it and set up a new one")
		}
		if err := s.reauthenticate(ctx, target, password); err != nil {
			return nil, err
		}
		if target.SecondFactor() {
			if _, err := s.useSecondFactor(ctx, target, code); err != nil {
				return nil, err
			}
		}
	} else if err := s.checkManage(by, target); err != nil {
		return nil, err
	}
	return s.updateAccount(ctx, "account.remove_second_factor", target, func(cur *Account) {
		cur.TOTPSecret, cur.TOTPLastStep, cur.RecoveryCodes = nil, 0, nil
	})
}

// managed returns the account id if by may manage it (checkManage).
func (s *Accounts) managed(ctx context.Context, by *Account, id string) (*Account, error) {
	target, err := s.store.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	return target, s.checkManage(by, target)
}

// checkManage checks that by may manage target: the operator (nil) and
// platform admins any account, tenant admins those of their tenant.
func (s *Accounts) checkManage(by, target *Account) error {
	if by == nil || by.Role == RolePlatformAdmin {
		return nil
	}
	if target.TenantID != by.TenantID {
		return ErrAccountNotFound // another tenant's people do not exist for them
	}
	if by.Role == RoleTenantAdmin {
		return nil
	}
	return ErrNotPermitted
}

func (s *Accounts) updateAccount(ctx context.Context, action string, target *Account, change func(*Account)) (*Account, error) {
	before := accountAudit(target)
	updated, err := s.store.UpdateAccount(ctx, target.ID, func(cur *Account) error {
		change(cur)
		cur.UpdatedAt = nextVersionTime(s.clock.Now().UTC(), cur.UpdatedAt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, s.admin.audit(ctx, action, updated.TenantID, "account", updated.ID, before, accountAudit(updated))
}

// SetAccountStatus enables or disables an account; disabling ends its
// sessions.
func (s *Accounts) SetAccountStatus(ctx context.Context, by *Account, id string, status AccountStatus) (*Account, error) {
	target, err := s.managed(ctx, by, id)
	if err != nil {
		return nil, err
	}
	if by != nil && by.ID == id {
		return nil, invalid("you cannot disable your own account; ask another admin")
	}
	action := "account.enable"
	if status == AccountDisabled {
		action = "account.disable"
	}
	updated, err := s.updateAccount(ctx, action, target, func(cur *Account) { cur.Status = status })
	if err != nil {
		return nil, err
	}
	if status == AccountDisabled {
		return updated, s.store.DeleteAccountSessions(ctx, id)
	}
	return updated, nil
}

// SetRole changes the role of a person by manages, within the same tenant:
// a tenant admin moves colleagues between tenant-admin and tenant-viewer,
// an operator any person between roles their tenant allows. Nobody changes
// their own role (the last admin cannot demote themselves by mistake). The
// person's sessions end, so the new role holds from their next sign-in.
func (s *Accounts) SetRole(ctx context.Context, by *Account, id string, role Role) (*Account, error) {
	target, err := s.managed(ctx, by, id)
	if err != nil {
		return nil, err
	}
	if by != nil && by.ID == id {
		return nil, invalid("you cannot change your own role; ask another admin")
	}
	if err := s.checkGrant(ctx, by, role, target.TenantID); err != nil {
		return nil, err
	}
	if role == target.Role {
		return target, nil
	}
	updated, err := s.updateAccount(ctx, "account.set_role", target, func(cur *Account) { cur.Role = role })
	if err != nil {
		return nil, err
	}
	return updated, s.store.DeleteAccountSessions(ctx, id)
}

// DeleteAccount removes an account and its sessions.
func (s *Accounts) DeleteAccount(ctx context.Context, by *Account, id string) error {
	target, err := s.managed(ctx, by, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteAccount(ctx, id); err != nil {
		return err
	}
	return s.admin.audit(ctx, "account.delete", target.TenantID, "account", id, accountAudit(target), nil)
}

// ChangePassword replaces the account's password after checking the
// current one, and ends every other session of the account.
func (s *Accounts) ChangePassword(ctx context.Context, a *Account, keepSession []byte, current, next string) error {
	if ok, err := s.passwords.compare(ctx, current, a.PasswordHash); errors.Is(err, ErrBusy) {
		return err
	} else if err != nil || !ok {
		return ErrSignInFailed
	}
	if err := s.checkPassword(next, a.Email, a.Name); err != nil {
		return err
	}
	hash, err := s.passwords.hash(ctx, next, s.cfg.PasswordParams)
	if err != nil {
		return err
	}
	if _, err := s.updateAccount(ctx, "account.change_password", a, func(cur *Account) { cur.PasswordHash = hash }); err != nil {
		return err
	}
	kept, err := s.store.Session(ctx, keepSession)
	if err != nil {
		return s.store.DeleteAccountSessions(ctx, a.ID)
	}
	if err := s.store.DeleteAccountSessions(ctx, a.ID); err != nil {
		return err
	}
	return s.store.CreateSession(ctx, kept)
}

// Accounts lists the accounts by may see: all for platform admins and the
// operator, their tenant's for others.
func (s *Accounts) Accounts(ctx context.Context, by *Account) ([]*Account, error) {
	all, err := s.store.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	if by == nil || by.Role == RolePlatformAdmin {
		return all, nil
	}
	out := all[:0]
	for _, a := range all {
		if a.TenantID == by.TenantID {
			out = append(out, a)
		}
	}
	return out, nil
}

// MustEnrollSecondFactor reports whether a must set up a second factor
// before anything else: they have none and their tenant requires one.
func (s *Accounts) MustEnrollSecondFactor(ctx context.Context, a *Account) (bool, error) {
	if a.SecondFactor() {
		return false, nil
	}
	return s.secondFactorRequired(ctx, a)
}

// secondFactorRequired reports whether a's tenant requires a second factor.
func (s *Accounts) secondFactorRequired(ctx context.Context, a *Account) (bool, error) {
	if a.TenantID == "" {
		return false, nil
	}
	t, err := s.tenants.Tenant(ctx, a.TenantID)
	if err != nil {
		return false, err
	}
	return t.SecondFactorRequired, nil
}

// Person returns the person id as by sees them: an operator or platform
// admin anyone, others the people of their tenant; another tenant's person
// is as absent as none.
func (s *Accounts) Person(ctx context.Context, by *Account, id string) (*Account, error) {
	a, err := s.store.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	if by != nil && by.Role != RolePlatformAdmin && a.TenantID != by.TenantID {
		return nil, ErrAccountNotFound
	}
	return a, nil
}

// Invitations lists the live invitations by may manage: an operator's,
// all; a tenant admin's, their tenant's. Viewers invite nobody and see
// none.
func (s *Accounts) Invitations(ctx context.Context, by *Account) ([]*Invite, error) {
	switch {
	case by == nil || by.Role == RolePlatformAdmin:
		return s.store.Invites(ctx, "", true, s.clock.Now())
	case by.Role == RoleTenantAdmin:
		return s.store.Invites(ctx, by.TenantID, false, s.clock.Now())
	}
	return nil, ErrNotPermitted
}

// RevokeInvitation ends the live invitation of email into tenantID: its
// link stops working. Another tenant's invitation is as absent as none.
func (s *Accounts) RevokeInvitation(ctx context.Context, by *Account, email, tenantID string) error {
	email = NormalizeEmail(email)
	if by != nil && by.Role != RolePlatformAdmin {
		if by.Role != RoleTenantAdmin {
			return ErrNotPermitted
		}
		if tenantID != by.TenantID {
			return ErrInviteNotFound
		}
	}
	if err := s.store.DeleteInvite(ctx, email, tenantID); err != nil {
		return err
	}
	return s.admin.audit(ctx, "invitation.revoke", tenantID, "invitation", email, map[string]any{"email": email, "tenant_id": tenantID}, nil)
}

// FindAccount returns the account with the email (for the CLI).
func (s *Accounts) FindAccount(ctx context.Context, email string) (*Account, error) {
	return s.store.AccountByEmail(ctx, NormalizeEmail(email))
}

// Prune forgets sessions past their timeouts and expired invitations.
func (s *Accounts) Prune(ctx context.Context) error {
	now := s.clock.Now()
	return errors.Join(s.store.PruneSessions(ctx, now, now.Add(-s.cfg.SessionIdleTimeout)), s.store.PruneInvites(ctx, now))
}

// tokenHash is how the store keys sessions and invitations: a copy of the
// database does not let anyone use them.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
