package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/singleflight"
)

// KeySource provides the trusted issuer's public keys.
type KeySource interface {
	// Keys returns the current key set, or ErrKeysUnavailable if no key set
	// has ever been fetched.
	Keys() (jwk.Set, error)
	// RefetchForUnknownKID fetches the key set anew, at most once per
	// configured interval however many callers ask, and returns the result.
	RefetchForUnknownKID(ctx context.Context) (jwk.Set, error)
}

// ErrKeysUnavailable means no key set could be fetched yet: checks that need
// a signature verification fail closed with 503.
var ErrKeysUnavailable = errors.New("the issuer's JWKS has not been fetched yet")

// JWKSConfig configures the JWKS source.
type JWKSConfig struct {
	// Issuer is used to discover the JWKS URL (RFC 8414) when URL is empty.
	Issuer string
	URL    string
	// RefreshInterval is how often the JWKS is refetched in the background.
	RefreshInterval time.Duration
	// MinRefetchInterval bounds refetches triggered by unknown kids.
	MinRefetchInterval time.Duration
	// FetchTimeout bounds each fetch.
	FetchTimeout time.Duration
	// MaxBytes bounds each response (the JWKS and the metadata): a larger
	// one is refused and the keys in use stay.
	MaxBytes int64
}

// defaultMaxResponseBytes bounds the JWKS and user service responses unless
// configured: a real key set or user record is a few kilobytes.
const defaultMaxResponseBytes = 1 << 20

// JWKSSource keeps the issuer's JWKS with jwx's auto-refreshing cache. The
// last good set stays in use when the issuer is unreachable or answers with
// garbage or an empty set.
type JWKSSource struct {
	cfg     JWKSConfig
	client  *http.Client
	log     *slog.Logger
	metrics *metrics
	cache   *jwk.Cache
	url     atomic.Pointer[string]
	current atomic.Pointer[jwk.Set]

	refetch     singleflight.Group
	lastRefetch atomic.Int64
	clock       Clock
	startOnce   sync.Once
}

var _ KeySource = (*JWKSSource)(nil)

// NewJWKSSource returns a source; Start begins fetching.
func NewJWKSSource(cfg JWKSConfig, clock Clock, log *slog.Logger, m *metrics) *JWKSSource {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultMaxResponseBytes
	}
	client := newBoundedClient(cfg.FetchTimeout, cfg.MaxBytes, "token.jwks_max_bytes", log)
	return &JWKSSource{cfg: cfg, client: client, log: log, metrics: m, clock: clock}
}

// Start discovers the JWKS URL if needed and fetches the key set, retrying
// every second until the first success, then leaves refreshing to the cache.
// It returns at once; Ready reports when keys are in.
func (s *JWKSSource) Start(ctx context.Context) {
	s.startOnce.Do(func() {
		// Background refresh failures arrive here; the last good set stays.
		sink := httprc.ErrSinkFunc(func(err error) {
			s.metrics.jwksFetches.WithLabelValues("failure").Inc()
			s.log.Warn("background JWKS refresh failed; keeping the keys in use", "err", err)
		})
		s.cache = jwk.NewCache(ctx, jwk.WithRefreshWindow(time.Second), jwk.WithErrSink(sink))
		go s.warm(ctx)
	})
}

// Ready reports whether a key set is in use.
func (s *JWKSSource) Ready() bool { return s.current.Load() != nil }

func (s *JWKSSource) warm(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		err := s.tryFirstFetch(ctx)
		if err == nil {
			return
		}
		s.log.Warn("fetching the issuer's JWKS failed; checks that need a key are denied with 503 until it succeeds", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (s *JWKSSource) tryFirstFetch(ctx context.Context) error {
	if s.url.Load() == nil {
		u := s.cfg.URL
		if u == "" {
			var err error
			if u, err = s.discover(ctx); err != nil {
				return err
			}
		}
		err := s.cache.Register(u,
			jwk.WithHTTPClient(s.client),
			jwk.WithRefreshInterval(s.cfg.RefreshInterval),
			jwk.WithPostFetcher(jwk.PostFetchFunc(s.accept)))
		if err != nil {
			return fmt.Errorf("register JWKS %s: %w", u, err)
		}
		s.url.Store(&u)
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	_, err := s.cache.Refresh(fctx, *s.url.Load())
	return err
}

// accept runs after every fetch, background ones included: it refuses an
// empty set (which would deny every token) and publishes a good one.
func (s *JWKSSource) accept(u string, set jwk.Set) (jwk.Set, error) {
	if set.Len() == 0 {
		s.metrics.jwksFetches.WithLabelValues("rejected").Inc()
		s.log.Error("the issuer served an empty JWKS; keeping the keys in use", "url", u)
		return nil, errors.New("empty JWKS")
	}
	s.current.Store(&set)
	s.metrics.jwksFetches.WithLabelValues("success").Inc()
	s.metrics.jwksKeys.Set(float64(set.Len()))
	s.metrics.jwksFetched.Set(float64(s.clock.Now().Unix()))
	return set, nil
}

// discover finds jwks_uri in the issuer's RFC 8414 metadata, checking that
// the metadata names the same issuer (RFC 8414 §3.3).
func (s *JWKSSource) discover(ctx context.Context) (string, error) {
	metaURL := strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/oauth-authorization-server"
	fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, metaURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("issuer metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("issuer metadata %s: status %d", metaURL, resp.StatusCode)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		return "", fmt.Errorf("issuer metadata %s: %w", metaURL, err)
	}
	if md.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("issuer metadata names issuer %q, expected %q (RFC 8414 §3.3)", md.Issuer, s.cfg.Issuer)
	}
	if md.JWKSURI == "" {
		return "", fmt.Errorf("issuer metadata %s has no jwks_uri", metaURL)
	}
	return md.JWKSURI, nil
}

// Keys implements KeySource without blocking: it reads the last good set.
func (s *JWKSSource) Keys() (jwk.Set, error) {
	if set := s.current.Load(); set != nil {
		return *set, nil
	}
	return nil, ErrKeysUnavailable
}

// RefetchForUnknownKID implements KeySource. Concurrent callers share one
// fetch; a fetch within MinRefetchInterval of the previous one is skipped, so
// a flood of bogus kids costs the issuer at most one request per interval.
func (s *JWKSSource) RefetchForUnknownKID(ctx context.Context) (jwk.Set, error) {
	u := s.url.Load()
	if u == nil {
		return nil, ErrKeysUnavailable
	}
	// Each caller waits for the fetch until its own deadline; the fetch
	// goes on for the others (and for the next caller of this kid).
	ch := s.refetch.DoChan("refetch", func() (any, error) {
		now := s.clock.Now().UnixNano()
		last := s.lastRefetch.Load()
		if last != 0 && now-last < int64(s.cfg.MinRefetchInterval) {
			s.metrics.jwksFetches.WithLabelValues("throttled").Inc()
			return nil, nil
		}
		s.lastRefetch.Store(now)
		sctx, span := childSpan(ctx, "authz.FetchJWKS")
		// The fetch must not die with the first caller's Check deadline:
		// others are waiting on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(sctx), s.cfg.FetchTimeout)
		defer cancel()
		_, err := s.cache.Refresh(fctx, *u)
		if err != nil {
			s.metrics.jwksFetches.WithLabelValues("failure").Inc()
			s.log.Warn("JWKS refetch for an unknown kid failed; keeping the keys in use", "err", err)
		}
		endSpan(span, err, attribute.String("jwks.trigger", "unknown-kid"))
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("JWKS refetch for an unknown kid: %w", ctx.Err())
	}
	return s.Keys()
}
