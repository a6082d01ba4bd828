package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"golang.org/x/sync/singleflight"

	"github.com/portcullis/portcullis/revocation"
)

// Claims is what the decision needs from a verified access token. Its
// strings are shared by every token of the same client and scope.
type Claims struct {
	// TokenKey is the key of the token's jti, by which it can be revoked
	// alone (zero when the token has none).
	TokenKey revocation.TokenKey
	ClientID string
	// Scope is the raw, space-delimited scope claim.
	Scope    string
	Scopes   []string
	TenantID string
	Expiry   time.Time
	// IssuedAt is the iat in Unix seconds (0 when absent: any watermark
	// revokes such a token).
	IssuedAt int64
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool {
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// TokenError is a token that was refused, with the reason the client sees
// (invalid-token, token-expired, or unavailable when keys could not be had).
type TokenError struct {
	Reason Reason
	Cause  error
	// final marks a refusal that will never change for this token (bad
	// signature, wrong issuer, expired...), so it may be remembered.
	final bool
}

func (e *TokenError) Error() string { return string(e.Reason) + ": " + e.Cause.Error() }

// Unwrap exposes the cause.
func (e *TokenError) Unwrap() error { return e.Cause }

func invalidToken(format string, args ...any) error {
	return &TokenError{Reason: ReasonInvalidToken, Cause: fmt.Errorf(format, args...), final: true}
}

// negativeTTL is how long a token refused for good is remembered, so a
// client replaying a bad or expired token costs a hash, not a signature check.
const negativeTTL = 30 * time.Second

// TokenVerifier verifies bearer tokens.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (Claims, error)
}

// AllowedAlgorithms are the signature algorithms authz may accept: asymmetric
// only. HMAC is never accepted (an HMAC "verified" with a public key is the
// classic key-confusion forgery), nor "none".
var AllowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// VerifierConfig configures token verification.
type VerifierConfig struct {
	Issuer     string
	Audience   string
	Algorithms []string
	// AcceptJWTType also accepts typ "JWT" (tokens from issuers that do not
	// follow RFC 9068); "at+jwt" is always accepted.
	AcceptJWTType bool
	ClockSkew     time.Duration
	// CacheMaxTokens bounds the verified-token cache.
	CacheMaxTokens int64
}

// Verifier checks JWT access tokens (RFC 9068) against the issuer's keys and
// caches the result per token until shortly before it expires, so a busy
// client costs one signature check per token, not per request.
type Verifier struct {
	cfg     VerifierConfig
	keys    KeySource
	clock   Clock
	metrics *metrics
	allowed map[jwa.SignatureAlgorithm]bool
	cache   *tokenCache
	refused *ristretto.Cache[uint64, *refusedToken]
	flight  singleflight.Group
}

var _ TokenVerifier = (*Verifier)(nil)

// refusedToken is a token refused for good, keyed in the refusal cache by
// the first 8 bytes of the token's SHA-256 and checked against the full hash
// on a hit. Refusals have a cache of their own, whose admission policy
// (TinyLFU) keeps a flood of one-off bad tokens from pushing out anything
// that is read often.
type refusedToken struct {
	sum [sha256.Size]byte
	err error
}

// cacheMargin is how long before its expiry a token leaves the cache, so a
// cached token is never used past its exp.
const cacheMargin = time.Second

// NewVerifier returns a Verifier.
func NewVerifier(cfg VerifierConfig, keys KeySource, clock Clock, m *metrics) (*Verifier, error) {
	v := &Verifier{cfg: cfg, keys: keys, clock: clock, metrics: m, allowed: map[jwa.SignatureAlgorithm]bool{}}
	for _, name := range cfg.Algorithms {
		if !contains(AllowedAlgorithms, name) {
			return nil, fmt.Errorf("algorithm %q cannot be allowed; choose from %s", name, strings.Join(AllowedAlgorithms, ", "))
		}
		var alg jwa.SignatureAlgorithm
		if err := alg.Accept(name); err != nil {
			return nil, err
		}
		v.allowed[alg] = true
	}
	if len(v.allowed) == 0 {
		return nil, errors.New("no token algorithm allowed")
	}
	refused, err := newEntryCache[uint64, *refusedToken](max(cfg.CacheMaxTokens/4, 1000))
	if err != nil {
		return nil, fmt.Errorf("token refusal cache: %w", err)
	}
	v.cache, v.refused = newTokenCache(cfg.CacheMaxTokens), refused
	return v, nil
}

// Close releases the caches.
func (v *Verifier) Close() { v.refused.Close() }

// CacheStats returns the verified-token cache's hits and misses.
func (v *Verifier) CacheStats() (hits, misses uint64) { return v.cache.stats() }

// Verify returns the claims of a valid token, or a *TokenError.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	// Hash the string's bytes in place: []byte(token) would copy the whole
	// token on every request. Sum256 only reads its input.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	if claims, ok := v.cache.get(&sum, v.clock.Now()); ok {
		return claims, nil
	}
	key := binary.LittleEndian.Uint64(sum[:8])
	if r, ok := v.refused.Get(key); ok && r.sum == sum {
		return Claims{}, r.err
	}
	return v.verifyOnce(ctx, token, sum, key)
}

// verifyOnce verifies a token that missed the cache, apart from Verify so
// that the closure's captures cost nothing on a cache hit.
func (v *Verifier) verifyOnce(ctx context.Context, token string, sum [sha256.Size]byte, key uint64) (Claims, error) {
	// However many requests race on a new token, it is verified once, detached
	// from the first caller's deadline; each caller still stops at its own.
	ch := v.flight.DoChan(string(sum[:]), func() (any, error) {
		claims, err := v.verify(context.WithoutCancel(ctx), token)
		if err != nil {
			var te *TokenError
			if errors.As(err, &te) && te.final {
				v.refused.SetWithTTL(key, &refusedToken{sum: sum, err: err}, 1, negativeTTL)
				v.refused.Wait()
			}
			return nil, err
		}
		v.cache.put(&sum, claims, v.clock.Now())
		return claims, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Claims{}, r.Err
		}
		return *r.Val.(*Claims), nil
	case <-ctx.Done():
		return Claims{}, &TokenError{Reason: ReasonUnavailable, Cause: ctx.Err()}
	}
}

// verify checks one token fully, in one parse: the key provider checks the
// header (algorithm allow-list, type, no keys carried by the token, no
// critical extensions, a kid) before any key is looked up, then jwx checks
// the signature and the claims.
func (v *Verifier) verify(ctx context.Context, token string) (*Claims, error) {
	v.metrics.signatureChecks.Inc()
	if !isCompactJWS(token) {
		return nil, invalidToken("not a compact JWS in canonical base64url")
	}
	provider := jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, msg *jws.Message) error {
		if n := len(msg.Signatures()); n != 1 {
			return invalidToken("%d signatures", n)
		}
		alg, key, err := v.keyFor(ctx, sig.ProtectedHeaders())
		if err != nil {
			return err
		}
		sink.Key(alg, key)
		return nil
	})
	tok, err := jwt.ParseString(token,
		jwt.WithKeyProvider(provider),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithAcceptableSkew(v.cfg.ClockSkew),
		jwt.WithClock(jwt.ClockFunc(v.clock.Now)),
	)
	if err != nil {
		var te *TokenError
		switch {
		case errors.As(err, &te): // refused by the key provider
			return nil, te
		case errors.Is(err, jwt.ErrTokenExpired()):
			return nil, &TokenError{Reason: ReasonTokenExpired, Cause: err, final: true}
		case errors.Is(err, jwt.ErrTokenNotYetValid()), errors.Is(err, jwt.ErrInvalidIssuedAt()):
			// Not final: the token becomes valid with time.
			return nil, &TokenError{Reason: ReasonInvalidToken, Cause: err}
		}
		return nil, invalidToken("%w", err)
	}
	return claimsOf(tok)
}

// keyFor checks a token's protected header and returns the algorithm and the
// JWKS key to verify it with.
func (v *Verifier) keyFor(ctx context.Context, hdr jws.Headers) (jwa.SignatureAlgorithm, jwk.Key, error) {
	alg := hdr.Algorithm()
	if !v.allowed[alg] {
		return alg, nil, invalidToken("algorithm %q is not allowed", alg)
	}
	if typ := hdr.Type(); !v.acceptableType(typ) {
		return alg, nil, invalidToken("token type %q is not at+jwt (RFC 9068 §2.1)", typ)
	}
	if hdr.JWKSetURL() != "" || hdr.JWK() != nil || hdr.X509URL() != "" || (hdr.X509CertChain() != nil && hdr.X509CertChain().Len() > 0) {
		// Keys come from the configured JWKS only, never from the token.
		return alg, nil, invalidToken("token names its own key (jku, jwk, x5u or x5c)")
	}
	if len(hdr.Critical()) > 0 {
		// RFC 7515 §4.1.11: extensions we do not implement (b64, ...) must fail.
		return alg, nil, invalidToken("token requires header extensions %v", hdr.Critical())
	}
	kid := hdr.KeyID()
	if kid == "" {
		return alg, nil, invalidToken("no kid in the header")
	}
	set, err := v.keys.Keys()
	if err != nil {
		return alg, nil, &TokenError{Reason: ReasonUnavailable, Cause: err}
	}
	key, ok := set.LookupKeyID(kid)
	if !ok {
		if set, err = v.keys.RefetchForUnknownKID(ctx); err != nil {
			return alg, nil, &TokenError{Reason: ReasonUnavailable, Cause: err}
		}
		if key, ok = set.LookupKeyID(kid); !ok {
			// Not final: the key may be published soon (rotation).
			return alg, nil, &TokenError{Reason: ReasonInvalidToken, Cause: fmt.Errorf("unknown kid %q", kid)}
		}
	}
	if ka := key.Algorithm(); ka != nil && ka.String() != "" && ka.String() != alg.String() {
		return alg, nil, invalidToken("key %q is for %s, token says %s", kid, ka, alg)
	}
	if use := key.KeyUsage(); use != "" && use != "sig" {
		return alg, nil, invalidToken("key %q is not a signing key", kid)
	}
	return alg, key, nil
}

// isCompactJWS reports whether s is three parts in canonical base64url
// (RFC 7515 §2: no padding) joined by dots, and nothing else: no JSON
// serialization, no trailing data, no empty header or payload.
//
// Canonical means one token has one spelling. A base64url string whose
// length leaves 2 or 3 characters in its last quantum has unused low bits
// in its last character; decoders (jwx's among them) ignore them, so
// flipping them re-spells the same signed token as a new string, a new
// cache key and a fresh signature check each time. Those bits must be zero,
// and a length that leaves 1 character (6 bits, no whole byte) is invalid.
func isCompactJWS(s string) bool {
	start, parts := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		parts++
		if parts > 3 || !isCanonicalBase64URL(s[start:i]) || (parts < 3 && i == start) {
			return false
		}
		start = i + 1
	}
	return parts == 3
}

// isCanonicalBase64URL reports whether p is unpadded base64url whose last
// character carries no unused bits (RFC 4648 §3.5: "pad bits ... MUST be
// set to zero").
func isCanonicalBase64URL(p string) bool {
	for i := 0; i < len(p); i++ {
		if base64URLValue[p[i]] < 0 {
			return false
		}
	}
	if len(p) == 0 {
		return true
	}
	last := base64URLValue[p[len(p)-1]]
	switch len(p) % 4 {
	case 1:
		return false
	case 2: // 12 bits for one byte: 4 unused
		return last&0x0f == 0
	case 3: // 18 bits for two bytes: 2 unused
		return last&0x03 == 0
	}
	return true
}

// base64URLValue maps a byte to its base64url value, or -1.
var base64URLValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

func (v *Verifier) acceptableType(typ string) bool {
	switch strings.ToLower(typ) {
	case "at+jwt", "application/at+jwt":
		return true
	case "jwt":
		return v.cfg.AcceptJWTType
	}
	return false
}

func claimsOf(tok jwt.Token) (*Claims, error) {
	c := &Claims{TokenKey: revocation.KeyOf(tok.JwtID()), Expiry: tok.Expiration()}
	if iat := tok.IssuedAt(); !iat.IsZero() {
		c.IssuedAt = iat.Unix()
	}
	raw, _ := tok.Get("client_id")
	clientID, ok := raw.(string)
	if !ok || clientID == "" {
		return nil, invalidToken("no client_id claim (RFC 9068 §2.2)")
	}
	c.ClientID = clientID
	if raw, ok := tok.Get("scope"); ok {
		scope, isString := raw.(string)
		if !isString {
			return nil, invalidToken("scope claim is not a string")
		}
		c.Scope = scope
		c.Scopes = strings.Fields(scope)
	}
	if raw, ok := tok.Get("tenant_id"); ok {
		tenant, isString := raw.(string)
		if !isString {
			return nil, invalidToken("tenant_id claim is not a string")
		}
		c.TenantID = tenant
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
