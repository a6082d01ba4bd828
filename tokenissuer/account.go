package tokenissuer

import (
	"context"
	"errors"
	"time"
)

// Role is what a portal account may do.
type Role string

// Portal roles.
const (
	// RolePlatformAdmin manages every tenant, client and signing key.
	RolePlatformAdmin Role = "platform-admin"
	// RoleTenantAdmin manages the clients and accounts of one tenant.
	RoleTenantAdmin Role = "tenant-admin"
	// RoleTenantViewer reads one tenant's clients and audit trail.
	RoleTenantViewer Role = "tenant-viewer"
)

// Roles lists the roles, most powerful first.
var Roles = []Role{RolePlatformAdmin, RoleTenantAdmin, RoleTenantViewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == RolePlatformAdmin || r == RoleTenantAdmin || r == RoleTenantViewer
}

// TenantBound reports whether accounts of role r belong to one tenant.
func (r Role) TenantBound() bool { return r == RoleTenantAdmin || r == RoleTenantViewer }

// CanWrite reports whether role r may change anything.
func (r Role) CanWrite() bool { return r == RolePlatformAdmin || r == RoleTenantAdmin }

// AccountStatus says whether an account may sign in.
type AccountStatus string

// Account statuses.
const (
	AccountActive   AccountStatus = "active"
	AccountDisabled AccountStatus = "disabled"
)

// Account is a person who signs in to the portal.
type Account struct {
	ID    string
	Email string
	Name  string
	Role  Role
	// TenantID is the tenant of a tenant-bound role; empty for platform admins.
	TenantID string
	Status   AccountStatus
	// PasswordHash is an Argon2id hash in the PHC string format; empty until
	// the person sets a password through their invitation.
	PasswordHash string
	// TOTPSecret is the second factor's shared secret, encrypted with the
	// key-encryption key; empty when no second factor is enrolled.
	TOTPSecret []byte
	// TOTPLastStep is the last time step whose code was accepted: a code is
	// good once.
	TOTPLastStep int64
	// RecoveryCodes are keyed hashes of the unused recovery codes.
	RecoveryCodes [][]byte
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// SecondFactor reports whether the account has enrolled a TOTP second factor.
func (a *Account) SecondFactor() bool { return len(a.TOTPSecret) > 0 }

// Session is a signed-in browser, kept in the store so any replica serves
// it. The store holds only a hash of the session's cookie value.
type Session struct {
	// IDHash is the SHA-256 of the cookie value.
	IDHash    []byte
	AccountID string
	// CSRFToken is the token every form of the session carries.
	CSRFToken string
	// Pending is true between a correct password and the second factor: the
	// session may only complete the sign-in.
	Pending    bool
	Address    string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute timeout, whatever the activity.
	ExpiresAt time.Time
}

// Invite lets a person create their account by setting a password: single
// use, expiring. The store holds only a hash of the invitation's token.
type Invite struct {
	IDHash    []byte
	Email     string
	Name      string
	Role      Role
	TenantID  string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Account store errors.
var (
	ErrAccountNotFound = errors.New("account not found")
	ErrAccountExists   = errors.New("an account with this email already exists")
	ErrSessionNotFound = errors.New("session not found")
	ErrInviteNotFound  = errors.New("invitation not found, used or expired")
)

// AccountStore keeps portal accounts, their sessions and invitations.
type AccountStore interface {
	// CreateAccount stores a new account; ErrAccountExists if the ID or
	// email is taken.
	CreateAccount(ctx context.Context, a *Account) error
	// Account returns the account with the ID, or ErrAccountNotFound.
	Account(ctx context.Context, id string) (*Account, error)
	// AccountByEmail returns the account with the (lower-case) email, or
	// ErrAccountNotFound.
	AccountByEmail(ctx context.Context, email string) (*Account, error)
	// Accounts returns every account ordered by email.
	Accounts(ctx context.Context) ([]*Account, error)
	// UpdateAccount applies update to the account atomically and returns
	// the result.
	UpdateAccount(ctx context.Context, id string, update func(*Account) error) (*Account, error)
	// DeleteAccount removes the account and its sessions, or
	// ErrAccountNotFound.
	DeleteAccount(ctx context.Context, id string) error

	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with the ID hash, or ErrSessionNotFound.
	Session(ctx context.Context, idHash []byte) (*Session, error)
	// TouchSession records activity on the session.
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	// DeleteSession ends the session (no error when it is gone already).
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteAccountSessions ends every session of the account.
	DeleteAccountSessions(ctx context.Context, accountID string) error
	// PruneSessions forgets sessions past their absolute timeout at now, or
	// idle since before idleBefore.
	PruneSessions(ctx context.Context, now, idleBefore time.Time) error

	// CreateInvite stores a new invitation, replacing any other for the
	// same email and tenant: one live link per person and tenant, the
	// latest. Another tenant's invitation is left alone.
	CreateInvite(ctx context.Context, inv *Invite) error
	// Invite returns the invitation with the token hash if it has not
	// expired at now, or ErrInviteNotFound.
	Invite(ctx context.Context, idHash []byte, now time.Time) (*Invite, error)
	// AcceptInvite removes the invitation and creates the account in one
	// transaction, so an invitation is used once: ErrInviteNotFound when it
	// is gone or expired at now, ErrAccountExists when the email is taken.
	AcceptInvite(ctx context.Context, idHash []byte, now time.Time, a *Account) error
	// PruneInvites forgets invitations that expired before now.
	PruneInvites(ctx context.Context, now time.Time) error
	// Invites lists the invitations live at now, of one tenant or, with
	// tenantID "", of all, newest first.
	Invites(ctx context.Context, tenantID string, all bool, now time.Time) ([]*Invite, error)
	// DeleteInvite removes the invitation of email into tenantID, or
	// answers ErrInviteNotFound.
	DeleteInvite(ctx context.Context, email, tenantID string) error
}
