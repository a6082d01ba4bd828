package oauth2

import (
	"fmt"
	"time"
)

// EndpointsConfig is what the token, revocation, metadata and JWKS
// endpoints need of the issuer's configuration.
type EndpointsConfig struct {
	// Issuer is the "iss" of every token and the base of the metadata URLs;
	// Audience is the "aud" of every token.
	Issuer, Audience string
	Tokens           TokensConfig
	RateLimit        RateLimitConfig
	// SharedFailures counts failed authentications in the store, so that
	// every replica slows the same sender (several replicas share a
	// PostgreSQL store).
	SharedFailures bool
	// ClientCacheTTL is how long a client record is reused without reading
	// the store; JWKSMaxAge is the JWKS response's Cache-Control max-age.
	ClientCacheTTL, JWKSMaxAge time.Duration
	// ClientKeysFromPrivateNetworks lets the issuer fetch a client's
	// jwks_uri from loopback and private addresses; off, from public ones
	// only.
	ClientKeysFromPrivateNetworks bool
}

// TokensConfig configures issued access tokens.
type TokensConfig struct {
	// Lifetime is the default token lifetime.
	Lifetime time.Duration `yaml:"lifetime"`
	// MaxLifetime caps per-client lifetimes; old keys stay published this long
	// after rotation.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// RateLimitConfig bounds failed client authentications.
type RateLimitConfig struct {
	// MaxFailures per client ID and per remote address within Window; 0
	// disables. An address past it is refused (429) until its window ends;
	// a client ID past it still gets a token with its right secret, and
	// further failures for it are answered after FailureDelay.
	MaxFailures int           `yaml:"max_failures"`
	Window      time.Duration `yaml:"window"`
	// FailureDelay is how long a failed authentication for a client past
	// MaxFailures is held before it is answered; 0 answers at once.
	FailureDelay time.Duration `yaml:"failure_delay"`
	// TokensPerMinute bounds the tokens one client gets a minute from one
	// issuer replica; 0: no bound.
	TokensPerMinute int `yaml:"tokens_per_minute"`
	// RevocationsPerMinute bounds one client's RFC 7009 revocations a
	// minute on one replica; 0: no bound.
	RevocationsPerMinute int `yaml:"revocations_per_minute"`
	// RevokedTokensPerClient caps one client's live single-token
	// revocations: past it, a revocation revokes every token the client
	// holds (its watermark) instead of growing the set every authz holds.
	RevokedTokensPerClient int `yaml:"revoked_tokens_per_client"`
	// MaxEntries bounds the memory of each limiter.
	MaxEntries int `yaml:"max_entries"`
	// TrustedProxies are the addresses or CIDRs of the proxies in front of
	// the issuer (Envoy): only from them is X-Forwarded-For read for the
	// client's address. Empty: the peer address counts, and a client cannot
	// choose its own.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TrustForwardedFor is the setting TrustedProxies replaced: trusting
	// X-Forwarded-For from anyone let clients pick their address.
	TrustForwardedFor bool `yaml:"trust_forwarded_for" retired:"true"`
}

// Validate reports every invalid rate_limit setting, named by its YAML path.
func (c *RateLimitConfig) Validate() []error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	if c.MaxFailures < 0 {
		bad("rate_limit.max_failures", "must not be negative (0 disables)")
	}
	if c.MaxFailures > 0 && c.Window <= 0 {
		bad("rate_limit.window", "must be positive")
	}
	if c.FailureDelay < 0 || c.FailureDelay > 10*time.Second {
		bad("rate_limit.failure_delay", "%s must be between 0 and 10s", c.FailureDelay)
	}
	for setting, n := range map[string]int{"rate_limit.tokens_per_minute": c.TokensPerMinute,
		"rate_limit.revocations_per_minute": c.RevocationsPerMinute, "rate_limit.revoked_tokens_per_client": c.RevokedTokensPerClient} {
		if n < 0 {
			bad(setting, "must not be negative (0: no bound)")
		}
	}
	if c.MaxFailures > 0 && c.MaxEntries <= 0 {
		bad("rate_limit.max_entries", "must be positive")
	}
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		bad("rate_limit.trusted_proxies", "%v", err)
	}
	if c.TrustForwardedFor {
		bad("rate_limit.trust_forwarded_for", "was replaced by rate_limit.trusted_proxies: list the addresses or CIDRs of the proxies in front of the issuer, whose X-Forwarded-For is then believed")
	}
	return errs
}
