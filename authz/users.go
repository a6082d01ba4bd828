package authz

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/singleflight"
)

// UserStatus is a user's standing in the company's user service.
type UserStatus string

// User statuses.
const (
	UserActive  UserStatus = "active"
	UserBlocked UserStatus = "blocked"
)

// User is what the decision needs to know about a user.
type User struct {
	ID       string     `json:"id" yaml:"id"`
	Status   UserStatus `json:"status" yaml:"status"`
	TenantID string     `json:"tenant_id,omitempty" yaml:"tenant_id,omitempty"`
}

// ErrUserNotFound means the directory does not know the user.
var ErrUserNotFound = errors.New("user not found")

// UserDirectory looks users up. Implemented by the file and HTTP sources
// and by the caching layer in front of them.
type UserDirectory interface {
	LookupUser(ctx context.Context, id string) (User, error)
}

// CacheConfig configures the user cache.
type CacheConfig struct {
	// TTL is how long a lookup (found or not) is trusted; it bounds how long a
	// newly blocked user can still write.
	TTL time.Duration
	// MaxStale is how old a cached entry may be and still be used when the
	// source fails.
	MaxStale time.Duration
	MaxUsers int64
}

// CachedDirectory caches a UserDirectory with a short TTL, caches misses too,
// collapses concurrent lookups of one user into one, and rides out source
// failures with entries younger than MaxStale.
type CachedDirectory struct {
	source  UserDirectory
	cfg     CacheConfig
	clock   Clock
	metrics *metrics
	cache   *ristretto.Cache[string, *userEntry]
	flight  singleflight.Group
}

var _ UserDirectory = (*CachedDirectory)(nil)

type userEntry struct {
	user      User
	found     bool
	fetchedAt time.Time
}

// NewCachedDirectory wraps source.
func NewCachedDirectory(source UserDirectory, cfg CacheConfig, clock Clock, m *metrics) (*CachedDirectory, error) {
	cache, err := newEntryCache[string, *userEntry](cfg.MaxUsers)
	if err != nil {
		return nil, fmt.Errorf("user cache: %w", err)
	}
	return &CachedDirectory{source: source, cfg: cfg, clock: clock, metrics: m, cache: cache}, nil
}

// Close releases the cache.
func (d *CachedDirectory) Close() { d.cache.Close() }

// CacheStats returns the user cache's hits and misses.
func (d *CachedDirectory) CacheStats() (hits, misses uint64) {
	return d.cache.Metrics.Hits(), d.cache.Metrics.Misses()
}

// LookupUser implements UserDirectory.
func (d *CachedDirectory) LookupUser(ctx context.Context, id string) (User, error) {
	now := d.clock.Now()
	cached, ok := d.cache.Get(id)
	if ok && now.Sub(cached.fetchedAt) < d.cfg.TTL {
		d.metrics.userHit.Inc()
		return cached.result()
	}
	res, err := d.fetch(ctx, id)
	if err == nil {
		return res, nil
	}
	if errors.Is(err, ErrUserNotFound) {
		return User{}, err
	}
	if ok && now.Sub(cached.fetchedAt) < d.cfg.MaxStale {
		d.metrics.userLookups.WithLabelValues("stale").Inc()
		return cached.result()
	}
	d.metrics.userLookups.WithLabelValues("error").Inc()
	return User{}, fmt.Errorf("user directory: %w", err)
}

// fetch asks the source, apart from LookupUser so that the closure's
// captures cost nothing on a cache hit.
func (d *CachedDirectory) fetch(ctx context.Context, id string) (User, error) {
	// One lookup per user however many checks race on it. It runs detached
	// from the first caller (the source has its own timeout) so that caller's
	// deadline does not fail the others; each caller still stops at its own.
	ch := d.flight.DoChan(id, func() (_ any, err error) {
		lctx, span := childSpan(context.WithoutCancel(ctx), "authz.LookupUser")
		defer func() {
			if errors.Is(err, ErrUserNotFound) {
				endSpan(span, nil, attribute.String("authz.user_lookup", "not_found"))
				return
			}
			endSpan(span, err, attribute.String("authz.user_lookup", "found"))
		}()
		user, err := d.source.LookupUser(lctx, id)
		switch {
		case err == nil:
			d.store(id, &userEntry{user: user, found: true, fetchedAt: d.clock.Now()})
			d.metrics.userLookups.WithLabelValues("found").Inc()
			return user, nil
		case errors.Is(err, ErrUserNotFound):
			d.store(id, &userEntry{fetchedAt: d.clock.Now()})
			d.metrics.userLookups.WithLabelValues("not_found").Inc()
			return nil, ErrUserNotFound
		default:
			return nil, err
		}
	})
	var res any
	var err error
	select {
	case r := <-ch:
		res, err = r.Val, r.Err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return User{}, err
	}
	return res.(User), nil
}

func (d *CachedDirectory) store(id string, e *userEntry) {
	// Entries live until MaxStale so they can stand in when the source fails;
	// freshness is judged by fetchedAt against the TTL.
	d.cache.SetWithTTL(id, e, 1, max(d.cfg.MaxStale, d.cfg.TTL))
	d.cache.Wait()
}

func (e *userEntry) result() (User, error) {
	if !e.found {
		return User{}, ErrUserNotFound
	}
	return e.user, nil
}
