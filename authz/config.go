package authz

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/telemetry"
)

// Config is authz's configuration file. Every setting can be overridden by
// an environment variable PORTCULLIS_AUTHZ_<PATH>, for example
// PORTCULLIS_AUTHZ_TOKEN_ISSUER for token.issuer.
type Config struct {
	// Listen is the gRPC address Envoy calls.
	Listen string `yaml:"listen"`
	// AdminListen serves /healthz, /readyz and /metrics over HTTP.
	AdminListen string `yaml:"admin_listen"`
	// AdminPprof also serves Go's profiler at /debug/pprof/ on the admin
	// port, to find where CPU goes under load. Keep the admin port private.
	AdminPprof bool   `yaml:"admin_pprof"`
	LogLevel   string `yaml:"log_level"`
	// Policy is a policy file or a directory of them.
	Policy string `yaml:"policy"`
	// ShadowPolicy is a candidate policy evaluated beside Policy on every
	// check, which never decides: disagreements are counted and logged.
	// Promoting it is a file move. Empty: none.
	ShadowPolicy string `yaml:"shadow_policy"`
	// Realm is the realm of WWW-Authenticate challenges.
	Realm string `yaml:"realm"`
	// CheckTimeout bounds one decision; past it the check is denied with 503.
	CheckTimeout    time.Duration `yaml:"check_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Token       TokenConfig       `yaml:"token"`
	Users       UsersConfig       `yaml:"users"`
	Headers     HeaderNames       `yaml:"headers"`
	DecisionLog DecisionLogConfig `yaml:"decision_log"`
	Revocation  RevocationConfig  `yaml:"revocation"`
	// HTTP serves the same decision over HTTP for proxies that ask that
	// way: Envoy's http_service, nginx auth_request, Caddy forward_auth,
	// Traefik ForwardAuth. Off unless http.listen is set.
	HTTP HTTPConfig `yaml:"http"`
	// Tracing sends a span per Check (continuing Envoy's trace) and spans
	// for token verifications, JWKS fetches and user lookups to an OTLP
	// collector. Off by default.
	Tracing telemetry.Config `yaml:"tracing"`
}

// TokenConfig configures token verification.
type TokenConfig struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// JWKSURL is found in the issuer's RFC 8414 metadata when empty.
	JWKSURL    string   `yaml:"jwks_url"`
	Algorithms []string `yaml:"algorithms"`
	// AcceptJWTType also accepts typ "JWT" besides RFC 9068's "at+jwt".
	AcceptJWTType bool          `yaml:"accept_jwt_type"`
	ClockSkew     time.Duration `yaml:"clock_skew"`
	// JWKSRefreshInterval is how often the JWKS is refetched in the background.
	JWKSRefreshInterval time.Duration `yaml:"jwks_refresh_interval"`
	// JWKSMinRefetchInterval bounds refetches for unknown kids.
	JWKSMinRefetchInterval time.Duration `yaml:"jwks_min_refetch_interval"`
	JWKSFetchTimeout       time.Duration `yaml:"jwks_fetch_timeout"`
	// CacheMaxTokens bounds the verified-token cache (entries).
	CacheMaxTokens int64 `yaml:"cache_max_tokens"`
	// MaxConcurrentVerifications bounds the full verifications (tokens not
	// cached: a signature check each) running at once; 0 is half the CPUs,
	// at least one. Unknown tokens cost an attacker nothing to make, so
	// without a bound a flood of them takes every core from cached ones.
	MaxConcurrentVerifications int `yaml:"max_concurrent_verifications"`
	// VerificationQueue is how many more verifications may wait for one
	// running; beyond, a new token is refused at once with 503 and
	// Retry-After (cached tokens are never queued).
	VerificationQueue int `yaml:"verification_queue"`
	// RefusalDelay holds the answer to a new token refused as invalid,
	// expired or overloaded this long (0: none). A client that waits for answers —
	// every request through Envoy does — sends forged tokens no faster than
	// its connections times 1/RefusalDelay, while the delay costs authz a
	// timer, not CPU.
	RefusalDelay time.Duration `yaml:"refusal_delay"`
	// JWKSMaxBytes bounds a JWKS (and metadata) response; a larger one is
	// refused and the keys in use stay.
	JWKSMaxBytes int64 `yaml:"jwks_max_bytes"`
}

// UsersConfig configures the user directory.
type UsersConfig struct {
	// Source is "file" or "http".
	Source string `yaml:"source"`
	// File is a YAML or JSON user list (source: file), reloaded on change.
	File string `yaml:"file"`
	// URL is the user service's URL with {id} for the user ID (source: http).
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL bounds how long a newly blocked user can still write.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// MaxStale is how old a cached user may be and still serve when the
	// source fails.
	MaxStale      time.Duration `yaml:"max_stale"`
	CacheMaxUsers int64         `yaml:"cache_max_users"`
	// AllowTenantlessClients lets tokens without a tenant_id act on behalf
	// of users of any tenant. Off by default: only tenant-bound tokens act
	// for users, and only for users of their own tenant.
	AllowTenantlessClients bool `yaml:"allow_tenantless_clients"`
	// MaxResponseBytes bounds a user service response (source: http).
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// DecisionLogConfig configures the per-check log.
type DecisionLogConfig struct {
	// AllowSampleRate is the share of allows logged (0 to 1).
	AllowSampleRate float64 `yaml:"allow_sample_rate"`
	// DenialsPerInterval is how many denials of each reason are logged per
	// Interval; past it they are counted, and one summary line per reason
	// reports how many were left out. 0 logs every denial. Metrics count
	// every decision either way.
	DenialsPerInterval int           `yaml:"denials_per_interval"`
	Interval           time.Duration `yaml:"interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:9001",
		AdminListen:     "127.0.0.1:9002",
		LogLevel:        "info",
		Policy:          "examples/policy",
		Realm:           "api",
		CheckTimeout:    time.Second,
		ShutdownTimeout: 10 * time.Second,
		Token: TokenConfig{
			Issuer:                 "http://127.0.0.1:8080",
			Audience:               "https://api.example.com",
			Algorithms:             []string{"RS256", "ES256", "EdDSA"},
			ClockSkew:              30 * time.Second,
			JWKSRefreshInterval:    5 * time.Minute,
			JWKSMinRefetchInterval: 10 * time.Second,
			JWKSFetchTimeout:       5 * time.Second,
			CacheMaxTokens:         100_000,
			JWKSMaxBytes:           1 << 20,
			VerificationQueue:      16,
			RefusalDelay:           50 * time.Millisecond,
		},
		Users: UsersConfig{
			Source:           "file",
			File:             "examples/users/users.yaml",
			Timeout:          500 * time.Millisecond,
			CacheTTL:         5 * time.Second,
			MaxStale:         5 * time.Minute,
			CacheMaxUsers:    100_000,
			MaxResponseBytes: 1 << 20,
		},
		Headers:     DefaultHeaderNames(),
		DecisionLog: DecisionLogConfig{DenialsPerInterval: 100, Interval: 10 * time.Second},
		Revocation:  RevocationConfig{Wait: 25 * time.Second, MaxStaleness: 5 * time.Minute, OnStale: "serve", MaxBytes: 16 << 20},
		HTTP:        defaultHTTPConfig(),
		Tracing:     telemetry.DefaultConfig(),
	}
}

// Validate reports every invalid setting, named by its YAML path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	if r := c.Revocation; r.Enabled {
		if r.ClientID == "" {
			bad("revocation.client_id", "required when revocation.enabled: authz reads the feed with its own client, which holds the scope portcullis.revocations:read")
		}
		if r.ClientSecret == "" && r.ClientSecretFile == "" {
			bad("revocation.client_secret_file", "required when revocation.enabled (or set revocation.client_secret)")
		}
		for setting, raw := range map[string]string{"revocation.feed_url": r.FeedURL, "revocation.token_url": r.TokenURL} {
			if u, err := url.Parse(raw); raw != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				bad(setting, "%q is not an absolute http(s) URL", raw)
			}
		}
		if r.Wait < time.Second || r.Wait > 30*time.Second {
			bad("revocation.wait", "%s: use 1s to 30s", r.Wait)
		}
		if r.MaxStaleness <= r.Wait {
			bad("revocation.max_staleness", "%s must be longer than revocation.wait (%s)", r.MaxStaleness, r.Wait)
		}
		if r.OnStale != "serve" && r.OnStale != "not-ready" {
			bad("revocation.on_stale", "%q is not serve or not-ready", r.OnStale)
		}
		if r.MaxBytes <= 0 {
			bad("revocation.max_bytes", "must be positive")
		}
	}
	for setting, addr := range map[string]string{"listen": c.Listen, "admin_listen": c.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(setting, "%q is not host:port", addr)
		}
	}
	c.HTTP.validate(bad)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.Policy == "" {
		bad("policy", "name a policy file or directory")
	}
	if c.Realm == "" || strings.ContainsAny(c.Realm, "\"\\\r\n") {
		bad("realm", "must be non-empty, without quotes, backslashes or line breaks")
	}
	if c.CheckTimeout <= 0 {
		bad("check_timeout", "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	t := c.Token
	if u, err := url.Parse(t.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		bad("token.issuer", "%q must be the issuer's absolute URL, exactly as in the tokens' iss", t.Issuer)
	}
	if t.Audience == "" {
		bad("token.audience", "required: the aud the tokens must carry")
	}
	if t.JWKSURL != "" {
		if u, err := url.Parse(t.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("token.jwks_url", "%q must be an absolute http(s) URL (or empty to discover it)", t.JWKSURL)
		}
	}
	if len(t.Algorithms) == 0 {
		bad("token.algorithms", "list at least one algorithm")
	}
	for _, a := range t.Algorithms {
		if !contains(AllowedAlgorithms, a) {
			bad("token.algorithms", "%q is not allowed; choose from %s (never none or HMAC)", a, strings.Join(AllowedAlgorithms, ", "))
		}
	}
	if t.ClockSkew < 0 || t.ClockSkew > 5*time.Minute {
		bad("token.clock_skew", "%s must be between 0 and 5m", t.ClockSkew)
	}
	if t.JWKSRefreshInterval < time.Second {
		bad("token.jwks_refresh_interval", "must be at least 1s")
	}
	if t.JWKSMinRefetchInterval < 0 {
		bad("token.jwks_min_refetch_interval", "must not be negative")
	}
	if t.JWKSFetchTimeout <= 0 {
		bad("token.jwks_fetch_timeout", "must be positive")
	}
	if t.CacheMaxTokens < 1 {
		bad("token.cache_max_tokens", "must be at least 1")
	}
	if t.MaxConcurrentVerifications < 0 {
		bad("token.max_concurrent_verifications", "must not be negative (0 is half the CPUs)")
	}
	if t.VerificationQueue < 0 {
		bad("token.verification_queue", "must not be negative")
	}
	if t.RefusalDelay < 0 || t.RefusalDelay > time.Second {
		bad("token.refusal_delay", "%s must be between 0 and 1s (Envoy's ext_authz timeout is shorter)", t.RefusalDelay)
	}
	if t.JWKSMaxBytes < 1<<10 {
		bad("token.jwks_max_bytes", "%d is too small for any key set; use at least 1024", t.JWKSMaxBytes)
	}
	u := c.Users
	switch u.Source {
	case "file":
		if u.File == "" {
			bad("users.file", "required when users.source is file")
		}
	case "http":
		if !strings.Contains(u.URL, "{id}") {
			bad("users.url", "%q must contain {id} where the user ID goes", u.URL)
		}
	default:
		bad("users.source", "%q is not file or http", u.Source)
	}
	if u.Timeout <= 0 {
		bad("users.timeout", "must be positive")
	}
	if u.CacheTTL < 0 {
		bad("users.cache_ttl", "must not be negative")
	}
	if u.MaxStale < u.CacheTTL {
		bad("users.max_stale", "%s must be at least users.cache_ttl (%s)", u.MaxStale, u.CacheTTL)
	}
	if u.CacheMaxUsers < 1 {
		bad("users.cache_max_users", "must be at least 1")
	}
	if u.MaxResponseBytes < 256 {
		bad("users.max_response_bytes", "%d is too small for a user record; use at least 256", u.MaxResponseBytes)
	}
	if err := c.Headers.Validate(); err != nil {
		errs = append(errs, err)
	}
	if r := c.DecisionLog.AllowSampleRate; r < 0 || r > 1 {
		bad("decision_log.allow_sample_rate", "%v must be between 0 and 1", r)
	}
	if c.DecisionLog.DenialsPerInterval < 0 {
		bad("decision_log.denials_per_interval", "must not be negative (0 logs every denial)")
	}
	if c.DecisionLog.DenialsPerInterval > 0 && c.DecisionLog.Interval < time.Second {
		bad("decision_log.interval", "%s must be at least 1s", c.DecisionLog.Interval)
	}
	errs = append(errs, c.Tracing.Validate("tracing")...)
	return errors.Join(errs...)
}
