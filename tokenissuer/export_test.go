package tokenissuer

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// What the package's external tests may see of its insides.

// TokenHash is how sessions and invitations are stored.
func TokenHash(token string) []byte { return tokenHash(token) }

var (
	SQLiteFiles        = sqliteFiles
	SQLiteMigrations   = sqliteMigrations
	PostgresMigrations = postgresMigrations
	ActorFrom          = actorFrom
)

// LimiterKeyBehind is the failure limit's key for r's sender, behind the
// trusted proxies listed.
func LimiterKeyBehind(proxies []string, r *http.Request) (string, error) {
	t, err := parseTrustedProxies(proxies)
	if err != nil {
		return "", err
	}
	return limiterKey(t.clientAddress(r)), nil
}

// RateLimited counts the token requests slowed for kind ("client", "address").
func (s *Endpoints) RateLimited(kind string) prometheus.Counter {
	return s.metrics.rateLimited.WithLabelValues(kind)
}

func (s *Endpoints) Mint(c *Client, scopes []string, now time.Time) (string, time.Duration, error) {
	return s.mint(c, scopes, now)
}

// LimiterSizes is how many keys the per-address and per-client limits hold.
func (s *Endpoints) LimiterSizes() (addresses, clients int) {
	type sized interface{ Len() int }
	if c, ok := s.byClient.(sized); ok {
		clients = c.Len()
	}
	return s.byAddress.Len(), clients
}

// WaitForClientCache lets the client cache settle its writes.
func (s *Endpoints) WaitForClientCache() { s.clients.Wait() }

// WithoutLifetimeCap is a copy of a that lets clients' tokens outlive
// tokens.max_lifetime, as a store written before the cap holds them.
func (a *Admin) WithoutLifetimeCap() *Admin {
	c := *a
	c.maxTokenLifetime = 0
	return &c
}

// OccupyPasswordWork takes every place the password pool admits, as a
// flood of sign-ins would; release gives them back.
func (a *Accounts) OccupyPasswordWork() (release func(), running, admitted int) {
	p := a.passwords
	for range cap(p.admitted) {
		p.admitted <- struct{}{}
	}
	return func() {
		for range cap(p.admitted) {
			<-p.admitted
		}
	}, cap(p.running), cap(p.admitted)
}
