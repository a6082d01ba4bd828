package oauth2

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/tokenissuer"
)

// What the package's external tests may see of its insides.

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

func (s *Endpoints) Mint(c *tokenissuer.Client, scopes []string, now time.Time) (string, time.Duration, error) {
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

// CacheGeneration moves whenever every cached client and tenant is
// forgotten.
func (s *Endpoints) CacheGeneration() uint64 { return s.cacheGen.Load() }
