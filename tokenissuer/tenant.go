package tokenissuer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// TenantStatus says whether a tenant's clients may obtain tokens.
type TenantStatus string

// Tenant statuses.
const (
	TenantActive   TenantStatus = "active"
	TenantDisabled TenantStatus = "disabled"
)

// Tenant is a business whose clients call the API. Its scope ceiling bounds
// the scopes its clients may ever hold.
type Tenant struct {
	ID           string       `json:"tenant_id"`
	Name         string       `json:"name"`
	Status       TenantStatus `json:"status"`
	ScopeCeiling []string     `json:"scope_ceiling"`
	// SecondFactorRequired makes every person of the tenant set up a
	// second factor: one without is walked through it before anything else.
	SecondFactorRequired bool `json:"second_factor_required"`
	// MaxSecretAgeDays, when positive, is for how many days its clients'
	// secrets work: an older one is refused, and the portal warns ahead.
	MaxSecretAgeDays int       `json:"max_secret_age_days,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Tenant store errors.
var (
	ErrTenantNotFound = errors.New("tenant not found")
	ErrTenantExists   = errors.New("a tenant with this ID already exists")
)

// TenantStore keeps tenants.
type TenantStore interface {
	// CreateTenant stores a new tenant; ErrTenantExists if the ID is taken.
	CreateTenant(ctx context.Context, t *Tenant) error
	// Tenant returns the tenant with the ID, or ErrTenantNotFound.
	Tenant(ctx context.Context, id string) (*Tenant, error)
	// Tenants returns every tenant ordered by ID.
	Tenants(ctx context.Context) ([]*Tenant, error)
	// UpdateTenant applies update to the tenant atomically and returns the
	// result.
	UpdateTenant(ctx context.Context, id string, update func(*Tenant) error) (*Tenant, error)
	// DeleteTenant removes the tenant and its pending invitations if check,
	// run on it in the same transaction, allows it and it has no client
	// and no person left (a *TenantInUseError otherwise), and returns what
	// it removed.
	DeleteTenant(ctx context.Context, id string, check func(*Tenant) error) (*Tenant, error)
}

// SecretExpiry is when a secret made at created stops working under the
// tenant's maximum secret age; zero when it never does.
func (t *Tenant) SecretExpiry(created time.Time) time.Time {
	if t == nil || t.MaxSecretAgeDays <= 0 {
		return time.Time{}
	}
	return created.AddDate(0, 0, t.MaxSecretAgeDays)
}

// TenantInUseError refuses to delete a tenant that still has clients or
// people: deleting them is a decision of its own, made one by one.
type TenantInUseError struct {
	TenantID        string
	Clients, People int
}

func (e *TenantInUseError) Error() string {
	return fmt.Sprintf("tenant %q is not empty (clients: %d, people: %d); delete them first", e.TenantID, e.Clients, e.People)
}
