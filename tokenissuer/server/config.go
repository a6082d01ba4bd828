package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
	"github.com/portcullis/portcullis/tokenissuer/secretscan"

	"github.com/portcullis/portcullis/internal/telemetry"
)

// Config is the issuer's configuration file. Every setting can be overridden
// by an environment variable PORTCULLIS_ISSUER_<PATH>, for example
// PORTCULLIS_ISSUER_KEYS_ALGORITHM=EdDSA for keys.algorithm.
type Config struct {
	// Listen is the address of the HTTP server.
	Listen string `yaml:"listen"`
	// AdminListen is the address of the admin API (/admin/v1/), apart from
	// the public token endpoint; keep it private.
	AdminListen string `yaml:"admin_listen"`
	// Issuer is the "iss" of every token and the base of the metadata URLs.
	Issuer string `yaml:"issuer"`
	// Audience is the "aud" of every token: the API the tokens are for.
	Audience string `yaml:"audience"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`

	Store     StoreConfig            `yaml:"store"`
	Keys      KeysConfig             `yaml:"keys"`
	Tokens    oauth2.TokensConfig    `yaml:"tokens"`
	RateLimit oauth2.RateLimitConfig `yaml:"rate_limit"`
	Audit     AuditConfig            `yaml:"audit"`
	Portal    PortalConfig           `yaml:"portal"`
	Tenants   TenantsConfig          `yaml:"tenants"`
	// ClientCacheTTL is how long a client record is reused without reading the
	// store; it bounds how long a disabled client or revoked secret still works.
	ClientCacheTTL time.Duration `yaml:"client_cache_ttl"`
	// ShutdownTimeout bounds how long in-flight requests may finish on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Tracing sends a span per token request and admin call to an OTLP
	// collector. Off by default.
	Tracing telemetry.Config `yaml:"tracing"`
	// SecretScanning takes GitHub's leaked-secret reports on the public
	// listener (secretscan.Path) when a source of GitHub's signing keys is
	// set. Off by default.
	SecretScanning secretscan.Config `yaml:"secret_scanning"`
}

// StoreConfig selects and configures the client and key store.
type StoreConfig struct {
	// Driver is "sqlite" (embedded, the default) or "postgres".
	Driver string `yaml:"driver"`
	// SQLitePath is the SQLite database file.
	SQLitePath string `yaml:"sqlite_path"`
	// PostgresDSN is the PostgreSQL connection string.
	PostgresDSN string `yaml:"postgres_dsn" secret:"dsn"`
	// SecretHashKeyFile holds the key of the client secret hash; it is created
	// on first use. Keep it apart from the database backups.
	SecretHashKeyFile string `yaml:"secret_hash_key_file"`
	// SecretHashKey is the same key given inline (base64); it wins over the file.
	SecretHashKey string `yaml:"secret_hash_key" secret:"inline"`
	// ConnectTimeout is how long the issuer keeps trying to reach
	// PostgreSQL at start (a database starting beside it) before giving up.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// KeysConfig configures token signing keys.
type KeysConfig struct {
	// Algorithm of new keys: RS256, ES256 or EdDSA.
	Algorithm string `yaml:"algorithm"`
	// JWKSMaxAge is the Cache-Control max-age of the JWKS response.
	JWKSMaxAge time.Duration `yaml:"jwks_max_age"`
	// PublishDelay is how long a rotated-in key is published before it signs;
	// it must exceed jwks_max_age so every verifier has refetched the JWKS.
	PublishDelay time.Duration `yaml:"publish_delay"`
	// ReloadInterval is how often keys are re-read from the store: it bounds
	// how long a replica takes to pick up a rotation made elsewhere.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// RotateEvery, when positive, rotates keys on this schedule (one replica
	// rotates; the others pick the new key up).
	RotateEvery time.Duration `yaml:"rotate_every"`
	// EncryptionKeyFile holds the key-encryption key (base64 of 32 random
	// bytes) that encrypts private keys in the store. Required with
	// PostgreSQL; keep it outside the database and its backups.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// EncryptionKey is the same key given inline (for the environment:
	// PORTCULLIS_ISSUER_KEYS_ENCRYPTION_KEY); it wins over the file.
	EncryptionKey string `yaml:"encryption_key" secret:"inline"`
}

// TenantsConfig bounds what each tenant holds.
type TenantsConfig struct {
	// MaxClients is the quota of clients per tenant: creating one more is
	// refused (the admin API's 409, the portal's message), so that one
	// tenant's bot cannot slow every other tenant's lists. 0: no quota.
	MaxClients int `yaml:"max_clients"`
	// JWKSURIPrivateNetworks lets a client's jwks_uri name loopback and
	// private addresses (and plain http on loopback). Off: the issuer
	// fetches client keys from public https addresses only, so that a
	// tenant cannot make it reach into its own network.
	JWKSURIPrivateNetworks bool `yaml:"jwks_uri_private_networks"`
}

// AdminLimits are the bounds the service layer enforces.
func (c *Config) AdminLimits() tokenissuer.AdminLimits {
	return tokenissuer.AdminLimits{MaxTokenLifetime: c.Tokens.MaxLifetime, MaxClientsPerTenant: c.Tenants.MaxClients,
		JWKSURIPrivateNetworks: c.Tenants.JWKSURIPrivateNetworks}
}

// AuditConfig configures the audit trail of client and tenant changes.
type AuditConfig struct {
	// Retention is how long audit records are kept.
	Retention time.Duration `yaml:"retention"`
}

// PortalConfig configures the Enterprise Portal (/portal/ on the admin
// listener) and its accounts.
type PortalConfig struct {
	// URL is where people reach the portal, for the links in invitations;
	// empty: http:// and admin_listen.
	URL string `yaml:"url"`
	// SecureCookies marks the session cookie Secure (sent over HTTPS only).
	// Turn it off only to use the portal over plain HTTP on loopback.
	SecureCookies bool `yaml:"secure_cookies"`
	// SessionIdleTimeout ends a session nobody used for this long.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	// SessionLifetime ends a session this long after sign-in, used or not.
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	// InviteLifetime is how long an invitation link can be used.
	InviteLifetime time.Duration `yaml:"invite_lifetime"`
	// MinPasswordLength is the shortest password accepted.
	MinPasswordLength int `yaml:"min_password_length"`
	// SignInMaxFailures per account and per address within SignInWindow:
	// past it an address is refused until its window ends, and an
	// account's attempts wait SignInDelay, doubling per further failure up
	// to 16 times (an account is never refused: anyone can name one).
	SignInMaxFailures int           `yaml:"sign_in_max_failures"`
	SignInWindow      time.Duration `yaml:"sign_in_window"`
	SignInDelay       time.Duration `yaml:"sign_in_delay"`
}

// PortalURL is the portal's base URL, ending in "/portal/".
func (c *Config) PortalURL() string {
	if c.Portal.URL != "" {
		return strings.TrimSuffix(c.Portal.URL, "/") + "/"
	}
	return "http://" + c.AdminListen + "/portal/"
}

// Endpoints is the public endpoints' part of the configuration.
func (c *Config) Endpoints() oauth2.EndpointsConfig {
	return oauth2.EndpointsConfig{Issuer: c.Issuer, Audience: c.Audience, Tokens: c.Tokens, RateLimit: c.RateLimit,
		SharedFailures: c.Store.Driver == "postgres", ClientCacheTTL: c.ClientCacheTTL, JWKSMaxAge: c.Keys.JWKSMaxAge,
		ClientKeysFromPrivateNetworks: c.Tenants.JWKSURIPrivateNetworks}
}

// AccountsConfig is the account service's part of the configuration.
func (c *Config) AccountsConfig() tokenissuer.AccountsConfig {
	return tokenissuer.AccountsConfig{SessionIdleTimeout: c.Portal.SessionIdleTimeout, SessionLifetime: c.Portal.SessionLifetime,
		InviteLifetime: c.Portal.InviteLifetime, MinPasswordLength: c.Portal.MinPasswordLength, TOTPIssuer: "Portcullis " + c.Issuer,
		SignInMaxFailures: c.Portal.SignInMaxFailures, SignInWindow: c.Portal.SignInWindow, SignInDelay: c.Portal.SignInDelay, MaxLimiterEntries: c.RateLimit.MaxEntries}
}

// DefaultConfig returns the settings used when the file does not say otherwise.
func DefaultConfig() Config {
	return Config{
		Listen:      "127.0.0.1:8080",
		AdminListen: "127.0.0.1:8081",
		Issuer:      "http://127.0.0.1:8080",
		Audience:    "https://api.example.com",
		LogLevel:    "info",
		Store: StoreConfig{
			Driver:            "sqlite",
			SQLitePath:        "issuer.db",
			SecretHashKeyFile: "issuer-secret-hash.key",
			ConnectTimeout:    30 * time.Second,
		},
		Keys: KeysConfig{
			Algorithm:      "ES256",
			JWKSMaxAge:     5 * time.Minute,
			PublishDelay:   15 * time.Minute,
			ReloadInterval: 10 * time.Second,
		},
		Tokens:  oauth2.TokensConfig{Lifetime: 15 * time.Minute, MaxLifetime: time.Hour},
		Tenants: TenantsConfig{MaxClients: 1000},
		RateLimit: oauth2.RateLimitConfig{MaxFailures: 10, Window: time.Minute, FailureDelay: time.Second, MaxEntries: 100_000,
			TokensPerMinute: 6000, RevocationsPerMinute: 60, RevokedTokensPerClient: 1000},
		Audit: AuditConfig{Retention: 400 * 24 * time.Hour},
		Portal: PortalConfig{
			SecureCookies: true, SessionIdleTimeout: 30 * time.Minute, SessionLifetime: 12 * time.Hour,
			InviteLifetime: 72 * time.Hour, MinPasswordLength: 12, SignInMaxFailures: 5, SignInWindow: 15 * time.Minute, SignInDelay: time.Second,
		},
		ClientCacheTTL:  5 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		Tracing:         telemetry.DefaultConfig(),
	}
}

// Validate reports every invalid setting, each named by its YAML path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
		bad("admin_listen", "%q is not host:port", c.AdminListen)
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("issuer", "%q must be an absolute http(s) URL without query or fragment (RFC 8414 §2)", c.Issuer)
	}
	if strings.TrimSpace(c.Audience) == "" {
		bad("audience", "must name the API the tokens are for")
	}
	if s := c.SecretScanning; s.KeysFile != "" && s.KeysURL != "" {
		bad("secret_scanning", "set github_keys_file or github_keys_url, not both")
	} else if s.KeysURL != "" {
		if u, err := url.Parse(s.KeysURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("secret_scanning.github_keys_url", "%q must be an absolute URL, such as %s", s.KeysURL, secretscan.GitHubKeysURL)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.SQLitePath == "" {
			bad("store.sqlite_path", "required when store.driver is sqlite")
		}
	case "postgres":
		if c.Store.PostgresDSN == "" {
			bad("store.postgres_dsn", "required when store.driver is postgres")
		}
		if c.Keys.EncryptionKey == "" && c.Keys.EncryptionKeyFile == "" {
			bad("keys.encryption_key_file", "required when store.driver is postgres: private keys in a shared database are encrypted (or set keys.encryption_key)")
		}
		if c.Store.SecretHashKey == "" && c.Store.SecretHashKeyFile != "" {
			// Every replica must hash with the same key; a per-replica file
			// created on first start would differ between replicas.
			if _, err := os.Stat(c.Store.SecretHashKeyFile); err != nil {
				bad("store.secret_hash_key_file", "%s must exist and be the same file on every replica when store.driver is postgres (or set store.secret_hash_key)", c.Store.SecretHashKeyFile)
			}
		}
	default:
		bad("store.driver", "%q is not sqlite or postgres", c.Store.Driver)
	}
	if c.Store.SecretHashKey == "" && c.Store.SecretHashKeyFile == "" {
		bad("store.secret_hash_key_file", "set it or store.secret_hash_key")
	}
	if !keys.IsSupportedAlgorithm(c.Keys.Algorithm) {
		bad("keys.algorithm", "%q is not supported; use one of %s", c.Keys.Algorithm, strings.Join(keys.SupportedAlgorithms, ", "))
	}
	if c.Keys.JWKSMaxAge <= 0 {
		bad("keys.jwks_max_age", "must be positive")
	}
	if c.Keys.PublishDelay <= c.Keys.JWKSMaxAge {
		bad("keys.publish_delay", "%s must be longer than keys.jwks_max_age (%s), or verifiers may meet a key they have not fetched", c.Keys.PublishDelay, c.Keys.JWKSMaxAge)
	}
	if c.Keys.ReloadInterval <= 0 {
		bad("keys.reload_interval", "must be positive")
	}
	if c.Keys.RotateEvery < 0 {
		bad("keys.rotate_every", "must not be negative (0 disables scheduled rotation)")
	}
	if c.Keys.RotateEvery > 0 && c.Keys.RotateEvery <= c.Keys.PublishDelay {
		bad("keys.rotate_every", "%s must be longer than keys.publish_delay (%s), or a key would be replaced before it signs", c.Keys.RotateEvery, c.Keys.PublishDelay)
	}
	if c.Tokens.Lifetime <= 0 {
		bad("tokens.lifetime", "must be positive")
	}
	if c.Tokens.MaxLifetime < c.Tokens.Lifetime {
		bad("tokens.max_lifetime", "%s is shorter than tokens.lifetime (%s)", c.Tokens.MaxLifetime, c.Tokens.Lifetime)
	}
	errs = append(errs, c.RateLimit.Validate()...)
	if c.Audit.Retention < 24*time.Hour {
		bad("audit.retention", "%s is shorter than a day; keep the trail long enough to investigate (e.g. 9600h, about 400 days)", c.Audit.Retention)
	}
	if c.Portal.URL != "" {
		if u, err := url.Parse(c.Portal.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/portal") {
			bad("portal.url", "%q must be an absolute http(s) URL ending in /portal/, e.g. https://admin.example.com/portal/", c.Portal.URL)
		}
	}
	if c.Portal.SessionIdleTimeout <= 0 {
		bad("portal.session_idle_timeout", "must be positive")
	}
	if c.Portal.SessionLifetime < c.Portal.SessionIdleTimeout {
		bad("portal.session_lifetime", "%s is shorter than portal.session_idle_timeout (%s)", c.Portal.SessionLifetime, c.Portal.SessionIdleTimeout)
	}
	if c.Portal.InviteLifetime <= 0 {
		bad("portal.invite_lifetime", "must be positive")
	}
	if c.Portal.MinPasswordLength < 8 {
		bad("portal.min_password_length", "%d is too short; use at least 8 (12 or more is better)", c.Portal.MinPasswordLength)
	}
	if c.Portal.SignInMaxFailures <= 0 || c.Portal.SignInWindow <= 0 {
		bad("portal.sign_in_max_failures", "failed sign-ins must be limited: set it and portal.sign_in_window positive")
	}
	if c.Portal.SignInDelay < 0 || c.Portal.SignInDelay > 10*time.Second {
		bad("portal.sign_in_delay", "%s must be between 0 and 10s (it doubles up to 16 times that)", c.Portal.SignInDelay)
	}
	if c.Store.ConnectTimeout < 0 {
		bad("store.connect_timeout", "must not be negative (0: try once)")
	}
	if c.Tenants.MaxClients < 0 {
		bad("tenants.max_clients", "must not be negative (0: no quota)")
	}
	if c.ClientCacheTTL < 0 {
		bad("client_cache_ttl", "must not be negative (0 disables the cache)")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	errs = append(errs, c.Tracing.Validate("tracing")...)
	return errors.Join(errs...)
}

// DefaultKeyEncryptionKeyFile is where an SQLite issuer keeps the
// key-encryption key it creates when none is configured: beside the secret
// hashing key (or the database when that key is given inline).
func DefaultKeyEncryptionKeyFile(cfg StoreConfig) string {
	beside := cfg.SecretHashKeyFile
	if cfg.SecretHashKey != "" || beside == "" {
		beside = cfg.SQLitePath
	}
	return filepath.Join(filepath.Dir(beside), "issuer-key-encryption.key")
}

// Describe names the store for people and logs: the driver and the SQLite
// file's absolute path, or the PostgreSQL host and database, never a
// password.
func (c StoreConfig) Describe() string {
	if c.Driver == "sqlite" {
		path, err := filepath.Abs(c.SQLitePath)
		if err != nil {
			path = c.SQLitePath
		}
		return "sqlite " + path
	}
	where := c.PostgresDSN
	if u, err := url.Parse(where); err == nil && u.Host != "" {
		where = u.Host + u.Path
	} else if i := strings.LastIndexByte(where, '@'); i >= 0 {
		where = where[i+1:]
	} else {
		where = "(connection string not shown)"
	}
	return c.Driver + " " + where
}
