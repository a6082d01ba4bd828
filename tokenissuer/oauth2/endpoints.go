package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/portcullis/portcullis/internal/buildinfo"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/feed"
	"github.com/portcullis/portcullis/tokenissuer/keys"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer/limit"
)

// maxTokenRequestBody bounds the token request body; a legitimate one is a
// few hundred bytes.
const maxTokenRequestBody = 8 << 10

// failureLimit limits failed client authentications for a key: one
// replica's count, or the store's shared by every replica.
type failureLimit interface {
	// Blocked reports whether key must wait, and for how long.
	Blocked(key string) (bool, time.Duration)
	// Fail records a failed authentication.
	Fail(ctx context.Context, key string)
}

var (
	_ failureLimit = (*limit.Failures)(nil)
	_ failureLimit = (*limit.SharedFailures)(nil)
)

// Endpoints serves the token endpoint, the JWKS and the RFC 8414 metadata.
type Endpoints struct {
	cfg     EndpointsConfig
	store   EndpointStore
	keys    *keys.Manager
	hasher  *tokenissuer.SecretHasher
	clock   tokenissuer.Clock
	log     *slog.Logger
	metrics *metrics
	gather  prometheus.Gatherer

	byClient  failureLimit
	byAddress *limit.Failures
	// slowed holds back failed answers (rate_limit.failure_delay).
	slowed limit.Hold
	// issued and revoked bound what each authenticated client does a minute;
	// refusals remembers whom they refused, for the portal.
	issued, revoked *limit.Failures
	refusals        refusalLog
	proxies         trustedProxies
	// clients caches client records and, as nil, IDs the store does not
	// know, so a known and an unknown ID cost the same (no timing oracle).
	clients *ristretto.Cache[string, cachedClient]
	// tenantCache holds tenant records for client_cache_ttl, which also
	// bounds how long a disabled tenant's clients still get tokens.
	tenantCache *ristretto.Cache[string, cachedTenant]
	// cacheGen is the generation of both caches: an entry of an older
	// generation is a miss. Forgetting everything (a change made by another
	// process, of which this one knows only that the store moved) is one
	// increment.
	cacheGen atomic.Uint64

	// clientKeys are the keys clients sign their assertions with.
	clientKeys *clientKeySets
	// admin records revocations made at /oauth2/revoke.
	admin *tokenissuer.Admin
	// Usage gathers when each client and secret last got a token; its
	// owner runs and flushes it.
	Usage *UsageRecorder
	// Feed serves the revocation feed.
	Feed *feed.Feed
}

type cachedClient struct {
	client *tokenissuer.Client
	gen    uint64
}

type cachedTenant struct {
	tenant *tokenissuer.Tenant
	gen    uint64
}

// EndpointStore is what the token, revocation and feed endpoints read:
// clients and tenants to authenticate, failure counts shared by replicas,
// the revocation log and the announcements of changes. What they change
// (an RFC 7009 revocation) goes through the Admin they are given.
type EndpointStore interface {
	Client(ctx context.Context, id string) (*tokenissuer.Client, error)
	Tenant(ctx context.Context, id string) (*tokenissuer.Tenant, error)
	limit.Store
	tokenissuer.RevocationStore
	tokenissuer.ChangeBus
	tokenissuer.UsageStore
	tokenissuer.AssertionStore
}

// NewEndpoints wires the Endpoints over store, changing through admin.
// reg receives the issuer's metrics.
func NewEndpoints(cfg EndpointsConfig, store EndpointStore, admin *tokenissuer.Admin, km *keys.Manager, hasher *tokenissuer.SecretHasher, clock tokenissuer.Clock, log *slog.Logger, reg *prometheus.Registry) (*Endpoints, error) {
	s := &Endpoints{cfg: cfg, store: store, keys: km, hasher: hasher, clock: clock, log: log, gather: reg,
		admin: admin, Feed: feed.New(store, km, cfg.Issuer, clock, log), Usage: NewUsageRecorder(store, clock, log), clientKeys: newClientKeySets(clock, cfg.ClientKeysFromPrivateNetworks)}
	s.metrics = newMetrics(reg, km)
	s.slowed = limit.NewHold()
	s.Feed.OnEntries = s.forgetRevoked
	rl := cfg.RateLimit
	s.byClient = limit.NewFailures(rl.MaxFailures, rl.Window, rl.MaxEntries, clock)
	if cfg.SharedFailures {
		// Several replicas: the per-client count must be shared.
		s.byClient = limit.NewSharedFailures(store, rl.MaxFailures, rl.Window, rl.MaxEntries, clock, log)
	}
	s.byAddress = limit.NewFailures(rl.MaxFailures, rl.Window, rl.MaxEntries, clock)
	s.issued = limit.NewFailures(rl.TokensPerMinute, time.Minute, max(rl.MaxEntries, 1), clock)
	s.revoked = limit.NewFailures(rl.RevocationsPerMinute, time.Minute, max(rl.MaxEntries, 1), clock)
	proxies, err := parseTrustedProxies(rl.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("rate_limit.trusted_proxies: %w", err)
	}
	s.proxies = proxies
	if cfg.ClientCacheTTL > 0 {
		cache, err := ristretto.NewCache(&ristretto.Config[string, cachedClient]{
			NumCounters: 100_000,
			MaxCost:     10_000,
			BufferItems: 64,
			// Cost counts entries, not bytes: without this ristretto adds its own
			// per-entry overhead to each cost and keeps a fraction of the entries.
			IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, fmt.Errorf("client cache: %w", err)
		}
		s.clients = cache
		tenants, err := ristretto.NewCache(&ristretto.Config[string, cachedTenant]{
			NumCounters: 10_000, MaxCost: 1_000, BufferItems: 64, IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, fmt.Errorf("tenant cache: %w", err)
		}
		s.tenantCache = tenants
	}
	return s, nil
}

// Close releases the server's caches.
func (s *Endpoints) Close() {
	if s.clients != nil {
		s.clients.Close()
		s.tenantCache.Close()
	}
}

// Handler returns the HTTP routes of the issuer.
func (s *Endpoints) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", s.handleToken)
	mux.HandleFunc("/oauth2/revoke", s.handleRevoke)
	mux.Handle("GET "+revocation.FeedPath, s.Feed)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleMetadata)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	return mux
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// handleToken serves POST /oauth2/token (RFC 6749 §4.4.2, §5.1, §5.2).
func (s *Endpoints) handleToken(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	resp, clientID, err := s.token(w, r)
	if err != nil {
		var oe *OAuthError
		if !errors.As(err, &oe) {
			oe = ErrServerError.WithCause(err)
		}
		traceTokenRequest(r, oe.Code, clientID)
		level := slog.LevelInfo
		if oe.Status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "token request refused", "reason", oe.Code, "client_id", clientID,
			"remote", s.remoteAddress(r), "description", oe.Description, "err", oe.Cause)
		s.metrics.requests.WithLabelValues(oe.Code).Inc()
		s.metrics.latency.Observe(time.Since(start).Seconds())
		oe.write(w, s.cfg.Issuer)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
	traceTokenRequest(r, "issued", clientID)
	s.metrics.requests.WithLabelValues("issued").Inc()
	s.metrics.latency.Observe(time.Since(start).Seconds())
	s.log.Debug("token issued", "client_id", clientID, "scope", resp.Scope)
}

// traceTokenRequest puts a token request's outcome on its span: the
// RFC 6749 error code or "issued", and the client once it authenticated
// (a refused ID may be anything a caller typed). Never a secret or a token.
func traceTokenRequest(r *http.Request, outcome, clientID string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("oauth2.outcome", outcome))
	if clientID != "" && outcome != "invalid_client" && outcome != "invalid_request" {
		span.SetAttributes(attribute.String("oauth2.client_id", clientID))
	}
}

// token runs the client credentials grant; clientID is returned for logging
// once known.
func (s *Endpoints) token(w http.ResponseWriter, r *http.Request) (_ *tokenResponse, clientID string, _ error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, "", (&OAuthError{Code: "invalid_request", Status: http.StatusMethodNotAllowed}).WithDescription("the token endpoint accepts POST only")
	}
	form, err := readTokenForm(w, r)
	if err != nil {
		return nil, "", err
	}
	switch grant := form.Get("grant_type"); grant {
	case "":
		return nil, "", ErrInvalidRequest.WithDescription("grant_type is required")
	case "client_credentials":
	default:
		return nil, "", ErrUnsupportedGrantType
	}

	client, secretID, err := s.authenticateRequest(r, form)
	if err != nil {
		return nil, loggableClientID(client.ID), err
	}
	if waited, err := s.waitOutWatermark(r.Context(), client); err != nil {
		return nil, client.ID, err
	} else if waited {
		// The client or its tenant changed a moment ago (disabled,
		// deleted, a secret revoked): judge the request by what both are
		// now. Forgetting every cached record is synchronous (a single
		// cache's delete is not), and a watermark ahead of the clock is
		// rare enough that the cost is nothing.
		s.InvalidateAll()
		// The assertion's ID was recorded by the first check: judging the
		// same request again is no replay.
		again := r.WithContext(context.WithValue(r.Context(), recheckKey{}, true))
		if client, secretID, err = s.authenticateRequest(again, form); err != nil {
			return nil, loggableClientID(client.ID), err
		}
	}
	if client.Status != tokenissuer.ClientActive {
		return nil, client.ID, ErrUnauthorizedClient.WithDescription("the client is disabled")
	}
	if client.TenantID != "" {
		tenant, err := s.tenantAllows(r.Context(), client.TenantID)
		if err != nil {
			return nil, client.ID, err
		}
		if err := secretWithinAge(client, secretID, tenant, s.clock.Now()); err != nil {
			return nil, client.ID, err
		}
	}

	if ok, wait := s.issued.Take(client.ID); !ok {
		s.metrics.rateLimited.WithLabelValues("client_tokens").Inc()
		s.refusals.add(client.ID, false, s.clock.Now())
		return nil, client.ID, ErrTooManyRequests.withRetryAfter(wait).WithDescription("the client asked for more tokens a minute than rate_limit.tokens_per_minute allows")
	}

	scopes := client.Scopes
	if form.Has("scope") {
		requested, err := tokenissuer.ParseScope(form.Get("scope"))
		if err != nil {
			return nil, client.ID, ErrInvalidScope.WithDescription(err.Error())
		}
		var missing []string
		if scopes, missing = tokenissuer.NarrowScopes(client.Scopes, requested); len(missing) > 0 {
			return nil, client.ID, ErrInvalidScope.WithDescription("the client is not allowed the scope " + strings.Join(missing, " "))
		}
	}

	now := s.clock.Now()
	token, lifetime, err := s.mint(client, scopes, now)
	if err != nil {
		return nil, client.ID, ErrServerError.WithCause(err)
	}
	s.Usage.Note(client.ID, secretID, now)
	return &tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(lifetime / time.Second), Scope: tokenissuer.FormatScope(scopes)}, client.ID, nil
}

// authenticateRequest authenticates the client of a token or revocation
// request (RFC 6749 §2.3.1), under the failure limits, and returns it with
// the ID of the secret it used. On failure the returned client carries only
// the ID given, for logging.
//
// The limits slow the sender, never the rightful owner: an address that
// failed too often is refused (it is the sender's own, or a trusted proxy
// passes the real one on), but a client ID is something anyone can name, so
// its secret is always checked, and only failures for a client that others
// have been guessing at are answered slowly. A correct secret is never
// refused because of what others sent.
func (s *Endpoints) authenticateRequest(r *http.Request, form url.Values) (_ *tokenissuer.Client, secretID string, _ error) {
	address := s.remoteAddress(r)
	if blocked, wait := s.byAddress.Blocked(address); blocked {
		s.metrics.rateLimited.WithLabelValues("address").Inc()
		return &tokenissuer.Client{}, "", ErrTooManyRequests.withRetryAfter(wait)
	}
	creds, err := clientCredentials(r, form)
	if err != nil {
		return &tokenissuer.Client{ID: creds.id}, "", err
	}
	// An ID no client can have is refused before it reaches a limiter key,
	// a cache or the store: only the address pays for it.
	if !tokenissuer.ValidClientID(creds.id) {
		s.byAddress.Fail(r.Context(), address)
		return &tokenissuer.Client{}, "", creds.invalidClient().WithCause(errors.New("malformed client ID"))
	}
	client, secretID, err := s.authenticate(r.Context(), creds)
	if err != nil {
		if errors.Is(err, ErrInvalidClient) {
			s.byAddress.Fail(r.Context(), address)
			// Counted per client ID whether or not the client exists: an
			// answer slowed for a known ID only would tell which IDs are
			// known. The per-address limit bounds how fast anyone adds
			// keys, and the limiter's memory is bounded anyway.
			over, _ := s.byClient.Blocked(creds.id)
			s.byClient.Fail(r.Context(), creds.id)
			if over {
				s.metrics.rateLimited.WithLabelValues("client").Inc()
				s.log.Warn("failed authentications for one client ID from many places; slowing them down", "client_id", creds.id, "remote", address)
				s.slowDown(r.Context())
			}
		}
		return &tokenissuer.Client{ID: creds.id}, "", err
	}
	return client, secretID, nil
}

// slowDown holds a failed answer for rate_limit.failure_delay, so that
// guessing at a client from many addresses gets one answer per delay per
// connection.
func (s *Endpoints) slowDown(ctx context.Context) {
	s.slowed.Wait(ctx, s.clock, s.cfg.RateLimit.FailureDelay)
}

// waitOutWatermark waits, when the client's or its tenant's revocation
// watermark is still ahead of the clock, until it has passed: a token minted
// now would be refused for its whole life. It reports whether it waited.
func (s *Endpoints) waitOutWatermark(ctx context.Context, c *tokenissuer.Client) (bool, error) {
	now := s.clock.Now()
	set := s.Feed.Set()
	if set.Len() == 0 {
		return false, nil
	}
	until := int64(0)
	if e, revoked := set.Revoked(revocation.TokenKey{}, c.ID, "", now.Unix()); revoked {
		until = e.Before
	}
	if e, revoked := set.Revoked(revocation.TokenKey{}, "", c.TenantID, now.Unix()); revoked {
		until = max(until, e.Before)
	}
	if until == 0 {
		return false, nil
	}
	wait := time.Unix(until, 0).Sub(now)
	if wait > tokenissuer.WatermarkMargin+2*time.Second {
		// A watermark far ahead is not ours to wait for (a clock that
		// jumped): mint, and let the watermark decide.
		return false, nil
	}
	if err := limit.Sleep(ctx, s.clock, wait); err != nil {
		return false, ErrServerError.WithCause(err)
	}
	return true, nil
}

// readTokenForm reads and strictly parses the form body of a token request.
func readTokenForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, ErrInvalidRequest.WithDescription("the request body must be application/x-www-form-urlencoded")
	}
	// RFC 6749 §2.3.1: credentials must not travel in the request URI.
	if q := r.URL.Query(); q.Has("client_secret") {
		return nil, ErrInvalidRequest.WithDescription("client_secret must not be sent in the URL")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, ErrRequestTooLarge
		}
		return nil, ErrInvalidRequest.WithDescription("could not read the request body").WithCause(err)
	}
	return ParseTokenForm(string(body))
}

// ParseTokenForm parses an application/x-www-form-urlencoded token request
// body. A parameter sent more than once is an error (RFC 6749 §3.2), and so
// is anything that is not UTF-8 once decoded.
func ParseTokenForm(body string) (url.Values, error) {
	if !utf8.ValidString(body) {
		return nil, ErrInvalidRequest.WithDescription("the request body is not UTF-8")
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, ErrInvalidRequest.WithDescription("the request body is not a valid form")
	}
	for name, values := range form {
		if len(values) > 1 {
			return nil, ErrInvalidRequest.WithDescription("parameter " + strconv.Quote(name) + " is repeated")
		}
		if !utf8.ValidString(name) || !utf8.ValidString(values[0]) {
			return nil, ErrInvalidRequest.WithDescription("the request body is not UTF-8")
		}
	}
	return form, nil
}

type credentials struct {
	id, secret string
	basic      bool
	// assertion is a private_key_jwt client assertion, instead of a secret.
	assertion string
}

// clientCredentials extracts the client's ID and secret from HTTP Basic
// (client_secret_basic, RFC 6749 §2.3.1: form-urlencoded, then base64) or
// from the form (client_secret_post). Using both is an error.
func clientCredentials(r *http.Request, form url.Values) (credentials, error) {
	if creds, ok, err := assertionCredentials(r, form); ok {
		return creds, err
	}
	if authz := r.Header.Values("Authorization"); len(authz) > 0 {
		if len(authz) > 1 {
			return credentials{}, ErrInvalidRequest.WithDescription("more than one Authorization header")
		}
		scheme, _, _ := strings.Cut(authz[0], " ")
		if !strings.EqualFold(scheme, "Basic") {
			return credentials{}, ErrInvalidClient.WithDescription("only HTTP Basic client authentication is supported in the Authorization header").withBasicChallenge()
		}
		if form.Has("client_secret") {
			return credentials{}, ErrInvalidRequest.WithDescription("use one client authentication method: HTTP Basic or client_secret in the body, not both")
		}
		rawID, rawSecret, ok := r.BasicAuth()
		if !ok {
			return credentials{}, ErrInvalidClient.WithDescription("malformed HTTP Basic credentials").withBasicChallenge()
		}
		id, errID := url.QueryUnescape(rawID)
		secret, errSecret := url.QueryUnescape(rawSecret)
		if errID != nil || errSecret != nil || !utf8.ValidString(id) || !utf8.ValidString(secret) {
			return credentials{}, ErrInvalidClient.WithDescription("HTTP Basic credentials must be form-urlencoded (RFC 6749 §2.3.1)").withBasicChallenge()
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return credentials{id: id}, ErrInvalidRequest.WithDescription("client_id in the body differs from the HTTP Basic user")
		}
		if id == "" {
			return credentials{}, ErrInvalidClient.withBasicChallenge()
		}
		return credentials{id: id, secret: secret, basic: true}, nil
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if id == "" || secret == "" {
		return credentials{id: id}, ErrInvalidClient.WithDescription("client authentication is required: HTTP Basic or client_id and client_secret in the body")
	}
	return credentials{id: id, secret: secret}, nil
}

// invalidClient is the invalid_client error for these credentials, with the
// Basic challenge when Basic was used (RFC 6749 §5.2).
func (c credentials) invalidClient() *OAuthError {
	if c.basic {
		return ErrInvalidClient.withBasicChallenge()
	}
	return ErrInvalidClient
}

// loggableClientID is id when it is a valid client ID, else "": a client ID
// of 8 KB of garbage does not go to the logs.
func loggableClientID(id string) string {
	if tokenissuer.ValidClientID(id) {
		return id
	}
	return ""
}

// authenticate checks the client's secret and returns the ID of the one
// that matched. Unknown clients and wrong secrets fail identically, after
// the same hashing work.
func (s *Endpoints) authenticate(ctx context.Context, creds credentials) (*tokenissuer.Client, string, error) {
	fail := creds.invalidClient()
	client, err := s.lookupClient(ctx, creds.id)
	if errors.Is(err, tokenissuer.ErrClientNotFound) {
		s.hasher.Matches(creds.id, creds.secret, nil)
		return nil, "", fail.WithCause(err)
	}
	if err != nil {
		return nil, "", ErrServerError.WithCause(err)
	}
	if creds.assertion != "" {
		kid, err := s.verifyAssertion(ctx, client, creds.assertion)
		if isStoreError(err) {
			return nil, "", ErrServerError.WithCause(err)
		}
		if err != nil {
			return nil, "", fail.WithCause(err)
		}
		return client, "key:" + kid, nil
	}
	if client.Keys.Only {
		s.hasher.Matches(client.ID, creds.secret, nil) // the same work as a wrong secret
		return nil, "", fail.WithCause(errors.New("the client authenticates with private_key_jwt only"))
	}
	i := s.hasher.Match(client.ID, creds.secret, client.SecretHashes())
	if i < 0 {
		return nil, "", fail.WithCause(errors.New("wrong client secret"))
	}
	return client, client.Secrets[i].ID, nil
}

// lookupClient returns the client, or ErrClientNotFound. Both outcomes are
// cached for client_cache_ttl, so a repeated unknown ID costs a cache hit
// like a known one, not a store round trip that timing would reveal.
func (s *Endpoints) lookupClient(ctx context.Context, id string) (*tokenissuer.Client, error) {
	// The generation is read before the store: a change that lands while
	// the store is read makes this entry stale at once.
	gen := s.cacheGen.Load()
	if s.clients != nil {
		if c, ok := s.clients.Get(id); ok && c.gen == gen {
			if c.client == nil {
				return nil, tokenissuer.ErrClientNotFound
			}
			return c.client, nil
		}
	}
	c, err := s.store.Client(ctx, id)
	if err != nil && !errors.Is(err, tokenissuer.ErrClientNotFound) {
		return nil, err
	}
	if s.clients != nil {
		s.clients.SetWithTTL(id, cachedClient{client: c, gen: gen}, 1, s.cfg.ClientCacheTTL)
	}
	return c, err
}

// secretWithinAge refuses a secret older than its tenant's maximum secret
// age: its owner rotates it. Not counted as a failure: the rightful owner
// sent it.
func secretWithinAge(c *tokenissuer.Client, secretID string, t *tokenissuer.Tenant, now time.Time) error {
	for _, sec := range c.Secrets {
		if sec.ID != secretID {
			continue
		}
		if exp := t.SecretExpiry(sec.CreatedAt); !exp.IsZero() && !now.Before(exp) {
			return ErrInvalidClient.WithDescription(fmt.Sprintf("the client secret is older than its tenant allows (%d days); rotate it", t.MaxSecretAgeDays))
		}
	}
	return nil
}

// tenantAllows refuses the clients of a disabled (or vanished) tenant, and
// returns the tenant.
func (s *Endpoints) tenantAllows(ctx context.Context, id string) (*tokenissuer.Tenant, error) {
	gen := s.cacheGen.Load()
	t, ok := (*tokenissuer.Tenant)(nil), false
	if s.tenantCache != nil {
		var c cachedTenant
		if c, ok = s.tenantCache.Get(id); ok && c.gen == gen {
			t = c.tenant
		} else {
			ok = false
		}
	}
	if !ok {
		var err error
		t, err = s.store.Tenant(ctx, id)
		if errors.Is(err, tokenissuer.ErrTenantNotFound) {
			return nil, ErrUnauthorizedClient.WithDescription("the client's tenant does not exist")
		}
		if err != nil {
			return nil, ErrServerError.WithCause(err)
		}
		if s.tenantCache != nil {
			s.tenantCache.SetWithTTL(id, cachedTenant{tenant: t, gen: gen}, 1, s.cfg.ClientCacheTTL)
		}
	}
	if t.Status != tokenissuer.TenantActive {
		return nil, ErrUnauthorizedClient.WithDescription("the client's tenant is disabled")
	}
	return t, nil
}

// handleRevoke serves POST /oauth2/revoke (RFC 7009): a client revokes an
// access token it was issued. The client authenticates as at the token
// endpoint. A token that is not valid (expired, not ours, garbage) is
// answered 200 like a revoked one (§2.2): there is nothing to revoke.
func (s *Endpoints) handleRevoke(w http.ResponseWriter, r *http.Request) {
	clientID, err := s.revoke(w, r)
	if err != nil {
		var oe *OAuthError
		if !errors.As(err, &oe) {
			oe = ErrServerError.WithCause(err)
		}
		s.log.Info("revocation refused", "reason", oe.Code, "client_id", clientID, "remote", s.remoteAddress(r), "description", oe.Description, "err", oe.Cause)
		oe.write(w, s.cfg.Issuer)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Endpoints) revoke(w http.ResponseWriter, r *http.Request) (clientID string, _ error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return "", (&OAuthError{Code: "invalid_request", Status: http.StatusMethodNotAllowed}).WithDescription("the revocation endpoint accepts POST only")
	}
	form, err := readTokenForm(w, r)
	if err != nil {
		return "", err
	}
	token := form.Get("token")
	if token == "" {
		return "", ErrInvalidRequest.WithDescription("token is required")
	}
	client, _, err := s.authenticateRequest(r, form)
	if err != nil {
		return loggableClientID(client.ID), err
	}
	at, err := s.keys.VerifyAccessToken(token, s.cfg.Issuer, s.clock.Now())
	if err != nil {
		s.log.Debug("revocation of a token that is not valid: nothing to do", "client_id", client.ID)
		return client.ID, nil
	}
	// §2.1: a client revokes only its own tokens.
	if at.ClientID != client.ID {
		return client.ID, ErrUnauthorizedClient.WithDescription("the token was not issued to this client")
	}
	if ok, wait := s.revoked.Take(client.ID); !ok {
		s.metrics.rateLimited.WithLabelValues("client_revocations").Inc()
		s.refusals.add(client.ID, true, s.clock.Now())
		return client.ID, ErrTooManyRequests.withRetryAfter(wait).WithDescription("the client revoked more tokens a minute than rate_limit.revocations_per_minute allows")
	}
	if _, revoked := s.Feed.Revoked(at); revoked {
		return client.ID, nil // already: nothing to add
	}
	ctx := tokenissuer.WithActor(r.Context(), tokenissuer.Actor{ID: "client:" + client.ID, Address: s.remoteAddress(r)})
	if limit := s.cfg.RateLimit.RevokedTokensPerClient; limit > 0 && s.Feed.TokenEntries(client.ID) >= limit {
		// §2.1 lets a server revoke more than the one token. Past the cap,
		// one watermark covers this token and all others of the client, and
		// the set every authz holds stops growing.
		s.log.Warn("a client revoked more tokens than rate_limit.revoked_tokens_per_client; revoking all its tokens instead", "client_id", client.ID, "limit", limit)
		if err := s.admin.RevokeOwnTokensInstead(ctx, client); err != nil {
			return client.ID, ErrServerError.WithCause(err)
		}
		return client.ID, nil
	}
	if err := s.admin.RevokeToken(ctx, at); err != nil {
		return client.ID, ErrServerError.WithCause(err)
	}
	s.log.Info("token revoked", "client_id", client.ID, "jti", at.ID)
	return client.ID, nil
}

// forgetRevoked forgets the cached records of the clients and tenants that
// new watermarks name: a change whose announcement was lost (a dropped
// NOTIFY) still reaches this issuer through the feed's read of the store.
func (s *Endpoints) forgetRevoked(entries []revocation.Entry) {
	for _, e := range entries {
		switch e.Kind {
		case revocation.KindClient:
			s.InvalidateClient(e.Subject)
		case revocation.KindTenant:
			s.InvalidateTenant(e.Subject)
		}
	}
}

// InvalidateAll forgets every cached client and tenant.
func (s *Endpoints) InvalidateAll() { s.cacheGen.Add(1) }

// InvalidateClient forgets the cached record of a client that changed.
func (s *Endpoints) InvalidateClient(id string) {
	if s.clients != nil {
		s.clients.Del(id)
	}
}

// InvalidateTenant forgets the cached record of a tenant that changed.
func (s *Endpoints) InvalidateTenant(id string) {
	if s.tenantCache != nil {
		s.tenantCache.Del(id)
	}
}

// remoteAddress is the key of the per-address failure limit.
func (s *Endpoints) remoteAddress(r *http.Request) string {
	return limiterKey(s.proxies.clientAddress(r))
}

// ClientAddress is who sent r, as every per-address limit of the issuer
// counts it: the peer, or what a proxy of rate_limit.trusted_proxies says,
// an IPv6 address by its /64.
func (s *Endpoints) ClientAddress(r *http.Request) string { return s.remoteAddress(r) }

// PruneLimiters forgets failure windows that have ended.
func (s *Endpoints) PruneLimiters() {
	s.byAddress.Prune()
	s.issued.Prune()
	s.revoked.Prune()
	if l, ok := s.byClient.(*limit.Failures); ok {
		l.Prune()
	}
}

func (s *Endpoints) handleJWKS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.cfg.JWKSMaxAge/time.Second)))
	_, _ = w.Write(s.keys.JWKS())
}

// authorizationServerMetadata is RFC 8414 §2 metadata.
type authorizationServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// TokenEndpointAuthSigningAlgsSupported are the algorithms of
	// private_key_jwt assertions.
	TokenEndpointAuthSigningAlgsSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	// RevocationEndpoint is RFC 7009's endpoint (RFC 8414 §2).
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
}

func (s *Endpoints) handleMetadata(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimSuffix(s.cfg.Issuer, "/")
	md := authorizationServerMetadata{
		Issuer:                                 s.cfg.Issuer,
		TokenEndpoint:                          base + "/oauth2/token",
		JWKSURI:                                base + "/.well-known/jwks.json",
		ResponseTypesSupported:                 []string{},
		GrantTypesSupported:                    []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported:      []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		TokenEndpointAuthSigningAlgsSupported:  tokenissuer.AssertionAlgorithms,
		RevocationEndpoint:                     base + "/oauth2/revoke",
		RevocationEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(md)
}

func (s *Endpoints) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.keys.Ready(s.clock.Now()); err != nil {
		http.Error(w, "no signing key: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\nversion: "+buildinfo.Get().String()+"\n")
}

// ClientLimits is what the per-client bounds allow a client, and what this
// issuer refused it in the last hour.
type ClientLimits struct {
	TokensPerMinute, RevocationsPerMinute int
	// RefusedTokens and RefusedRevocations count the requests this replica
	// answered 429 in the hour since FirstRefused.
	RefusedTokens, RefusedRevocations int
	FirstRefused, LastRefused         time.Time
}

// ClientLimits reports the client's bounds and this replica's refusals.
func (s *Endpoints) ClientLimits(clientID string) ClientLimits {
	l := s.refusals.get(clientID, s.clock.Now())
	l.TokensPerMinute, l.RevocationsPerMinute = s.cfg.RateLimit.TokensPerMinute, s.cfg.RateLimit.RevocationsPerMinute
	return l
}

// refusalLog counts per-client refusals over an hour. Only authenticated
// clients that went over a bound are in it, so it is as large as the
// clients are many at most.
type refusalLog struct {
	mu sync.Mutex
	m  map[string]ClientLimits
}

func (r *refusalLog) add(clientID string, revocation bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]ClientLimits{}
	}
	l, ok := r.m[clientID]
	if !ok || now.Sub(l.FirstRefused) >= time.Hour {
		l = ClientLimits{FirstRefused: now}
	}
	if revocation {
		l.RefusedRevocations++
	} else {
		l.RefusedTokens++
	}
	l.LastRefused = now
	r.m[clientID] = l
}

func (r *refusalLog) get(clientID string, now time.Time) ClientLimits {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.m[clientID]
	if !ok || now.Sub(l.FirstRefused) >= time.Hour {
		return ClientLimits{}
	}
	return l
}

// FollowChanges wakes the feed, and makes endpoints forget cached clients
// and tenants, as the store announces changes made by any process sharing
// it; it returns when ctx ends.
func FollowChanges(ctx context.Context, bus tokenissuer.ChangeBus, e *Endpoints) {
	_ = bus.ListenChanges(ctx, func(topic, subject string) {
		switch topic {
		case tokenissuer.TopicRevocation:
			e.Feed.Changed()
		case tokenissuer.TopicClient:
			e.InvalidateClient(subject)
		case tokenissuer.TopicTenant:
			e.InvalidateTenant(subject)
		case tokenissuer.TopicAny:
			e.InvalidateAll()
			e.Feed.Changed()
		}
	})
}
