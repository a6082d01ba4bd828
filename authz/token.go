package authz

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"go.opentelemetry.io/otel/attribute"

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
	// MaxConcurrentVerifications bounds full verifications running at
	// once (0: half the CPUs, at least one); VerificationQueue more may
	// wait, and beyond that a new token is refused as overloaded.
	MaxConcurrentVerifications int
	VerificationQueue          int
	// RefusalDelay holds the answer to a new token refused as invalid,
	// expired or overloaded (0: answered at once).
	RefusalDelay time.Duration
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
	// signers are jwx's signature verifiers, one per allowed algorithm.
	signers map[jwa.SignatureAlgorithm]jws.Verifier
	raw     atomic.Pointer[rawKeys]
	cache   *tokenCache
	refused *ristretto.Cache[uint64, *refusedToken]
	// mu guards inflight, the verifications running, by token hash.
	mu       sync.Mutex
	inflight map[[sha256.Size]byte]*verification
	// checks are the signature checks for the verification workers, of
	// which there are workers; pending counts those running and waiting,
	// at most workers+VerificationQueue; stop ends the workers.
	checks  chan *signatureCheck
	workers int
	pending atomic.Int64
	stop    chan struct{}
	closing sync.Once
	// hold waits out a refusal delay (holdFor; tests see it called).
	hold func(ctx context.Context, d time.Duration)
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
	v := &Verifier{cfg: cfg, keys: keys, clock: clock, metrics: m, allowed: map[jwa.SignatureAlgorithm]bool{}, signers: map[jwa.SignatureAlgorithm]jws.Verifier{},
		inflight: map[[sha256.Size]byte]*verification{}, hold: holdFor}
	for _, name := range cfg.Algorithms {
		if !contains(AllowedAlgorithms, name) {
			return nil, fmt.Errorf("algorithm %q cannot be allowed; choose from %s", name, strings.Join(AllowedAlgorithms, ", "))
		}
		var alg jwa.SignatureAlgorithm
		if err := alg.Accept(name); err != nil {
			return nil, err
		}
		v.allowed[alg] = true
		signer, err := jws.NewVerifier(alg)
		if err != nil {
			return nil, fmt.Errorf("algorithm %s: %w", name, err)
		}
		v.signers[alg] = signer
	}
	if len(v.allowed) == 0 {
		return nil, errors.New("no token algorithm allowed")
	}
	refused, err := newEntryCache[uint64, *refusedToken](max(cfg.CacheMaxTokens/10, 1000))
	if err != nil {
		return nil, fmt.Errorf("token refusal cache: %w", err)
	}
	v.cache, v.refused = newTokenCache(cfg.CacheMaxTokens), refused
	v.workers = cfg.MaxConcurrentVerifications
	if v.workers <= 0 {
		v.workers = max(runtime.GOMAXPROCS(0)/2, 1)
	}
	v.checks, v.stop = make(chan *signatureCheck, v.workers+max(cfg.VerificationQueue, 0)), make(chan struct{})
	for range v.workers {
		go v.checkSignatures()
	}
	return v, nil
}

// Close stops the verification workers and releases the caches. Calls
// after the first do nothing.
func (v *Verifier) Close() {
	v.closing.Do(func() {
		close(v.stop)
		v.refused.Close()
	})
}

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
	claims, err := v.verifyOnce(ctx, token, sum, key)
	if err != nil {
		v.delayRefusal(ctx, err)
	}
	return claims, err
}

// delayRefusal holds the caller RefusalDelay when its token, new to authz,
// was refused as invalid, expired or overloaded. Forged tokens cost an
// attacker nothing to make and each costs authz a signature check; answered
// at once they come back as fast as authz answers. Held, they come back only
// as fast as the delay lets each of the sender's connections. No
// verification worker is held meanwhile. A refusal remembered from before is
// answered at once: it costs a hash, like a request without a token.
func (v *Verifier) delayRefusal(ctx context.Context, err error) {
	var te *TokenError
	if v.cfg.RefusalDelay <= 0 || !errors.As(err, &te) {
		return
	}
	switch te.Reason {
	case ReasonInvalidToken, ReasonTokenExpired, ReasonOverloaded:
	default:
		return
	}
	v.hold(ctx, v.cfg.RefusalDelay)
}

// holdFor waits d, or until ctx ends.
func holdFor(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// verification is one token's verification in progress, shared by the
// requests that race on it.
type verification struct {
	done   chan struct{}
	claims *Claims
	err    error
}

// verifyOnce verifies a token that missed the cache. However many requests
// race on a new token, it is verified once: by the first, detached from its
// deadline so that the others get the result; each of the others stops at
// its own deadline. The header and the key are read on the first's own
// goroutine, so that a JWKS refetch for an unknown kid holds no worker; the
// signature and the claims are checked on a verification worker.
func (v *Verifier) verifyOnce(ctx context.Context, token string, sum [sha256.Size]byte, key uint64) (Claims, error) {
	v.mu.Lock()
	if call, ok := v.inflight[sum]; ok {
		v.mu.Unlock()
		select {
		case <-call.done:
			return call.result()
		case <-ctx.Done():
			return Claims{}, &TokenError{Reason: ReasonUnavailable, Cause: ctx.Err()}
		}
	}
	// A request that missed the cache just before another's verification
	// finished (its result cached, then its call removed) finds the
	// result here, and does not verify the token a second time.
	if claims, ok := v.cache.lookup(&sum, v.clock.Now()); ok {
		v.mu.Unlock()
		return claims, nil
	}
	call := &verification{done: make(chan struct{})}
	v.inflight[sum] = call
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.inflight, sum)
		v.mu.Unlock()
		close(call.done)
	}()
	call.claims, call.err = v.verify(context.WithoutCancel(ctx), token)
	if call.err != nil {
		var te *TokenError
		if errors.As(call.err, &te) && te.final {
			v.refused.SetWithTTL(key, &refusedToken{sum: sum, err: call.err}, 1, negativeTTL)
			v.refused.Wait()
		}
		return call.result()
	}
	v.cache.put(&sum, call.claims, v.clock.Now())
	return call.result()
}

func (c *verification) result() (Claims, error) {
	if c.err != nil {
		return Claims{}, c.err
	}
	return *c.claims, nil
}

// errOverloaded refuses a new token unverified: too many are being
// verified. Not final: the same token is verified when it comes back.
var errOverloaded = &TokenError{Reason: ReasonOverloaded, Cause: errors.New("too many token verifications running and waiting; new token shed")}

// signatureCheck is one new token for a verification worker: the signature
// to check and, once it holds, the claims to decode. The claims are read on
// the worker too, whose stack is already deep enough for the JSON decoder:
// read on the request's own goroutine, they grew its stack for every new
// token (3% of authz's CPU when every token is new). They are read only
// once the signature holds, so a forger cannot make a worker read them.
type signatureCheck struct {
	verifier         jws.Verifier
	key              any
	input, signature []byte
	// payload is the token's base64url payload, decoded into decoded's
	// spare capacity.
	payload string
	decoded *[]byte
	// claims or err is the outcome, set before done is closed.
	claims *Claims
	err    error
	done   chan struct{}
}

// checkSignatures is a verification worker: it checks signatures until the
// verifier is closed.
//
// Signature checks are the only CPU an unauthenticated caller can make authz
// spend at will: a forged token with a known kid costs a full check. Run by
// a fixed number of workers, with a bounded queue before them, a flood of
// them takes at most the workers' cores, and requests with cached tokens,
// which never come here, keep the rest. Long-lived workers also keep the
// deep stack a signature check needs: run on each request's own goroutine,
// the stack was grown anew for every new token (4% of authz's CPU when
// every token is new).
func (v *Verifier) checkSignatures() {
	for {
		select {
		case c := <-v.checks:
			c.claims, c.err = v.checkToken(c)
			v.pending.Add(-1)
			close(c.done)
		case <-v.stop:
			return
		}
	}
}

// verify checks one token fully, decoding each part once: the header first
// (algorithm allow-list, type, no keys carried by the token, no critical
// extensions, a kid), then the key from the JWKS, then — on a verification
// worker, the only CPU a forger can make authz spend — the signature, and
// last, on the same worker, the claims, straight into the cached form.
//
// It does not go through jwt.Parse: that parses the token into a generic
// claim set again after the signature check and validates it through
// generic validators, which cost 50 µs a token, as much again as the
// signature itself (BenchmarkVerifyNewToken). The signature is still jwx's
// (jws.NewVerifier), over the key jwx parsed from the JWKS.
func (v *Verifier) verify(ctx context.Context, token string) (_ *Claims, err error) {
	ctx, span := childSpan(ctx, "authz.VerifyToken")
	var hdr joseHeader
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(attribute.String("token.alg", truncate(hdr.alg, 16)), attribute.String("token.kid", truncate(hdr.kid, 64)))
		}
		endSpan(span, err)
	}()
	if !isCompactJWS(token) {
		return nil, invalidToken("not a compact JWS in canonical base64url")
	}
	headerEnd := strings.IndexByte(token, '.')
	payloadEnd := headerEnd + 1 + strings.IndexByte(token[headerEnd+1:], '.')
	// One buffer for the three decoded parts: their decoded lengths add up
	// to no more than the whole token's.
	decoded := make([]byte, 0, base64.RawURLEncoding.DecodedLen(len(token)))
	headerJSON, err := appendBase64URL(&decoded, token[:headerEnd])
	if err != nil {
		return nil, invalidToken("header: %w", err)
	}
	if hdr, err = parseHeader(headerJSON); err != nil {
		return nil, err
	}
	alg, key, err := v.keyFor(ctx, hdr)
	if err != nil {
		return nil, err
	}
	signature, err := appendBase64URL(&decoded, token[payloadEnd+1:])
	if err != nil {
		return nil, invalidToken("signature: %w", err)
	}
	// The signing input is the token's own bytes, read in place: the
	// signature check only reads it.
	signingInput := unsafe.Slice(unsafe.StringData(token), payloadEnd)
	return v.onWorker(&signatureCheck{verifier: v.signers[alg], key: key, input: signingInput, signature: signature,
		payload: token[headerEnd+1 : payloadEnd], decoded: &decoded})
}

// appendBase64URL decodes part into buf's spare capacity, which must hold
// it, and returns the decoded bytes.
func appendBase64URL(buf *[]byte, part string) ([]byte, error) {
	start := len(*buf)
	n, err := base64.RawURLEncoding.Decode((*buf)[start:cap(*buf)], []byte(part))
	if err != nil {
		return nil, err
	}
	*buf = (*buf)[:start+n]
	return (*buf)[start : start+n], nil
}

// onWorker has a verification worker check a new token, or refuses the
// token as overloaded when every worker is busy and the queue is full. It
// waits for the answer whatever its caller's deadline: the verification is
// shared (verifyOnce).
func (v *Verifier) onWorker(c *signatureCheck) (*Claims, error) {
	if v.pending.Add(1) > int64(cap(v.checks)) {
		v.pending.Add(-1)
		v.metrics.verificationsShed.Inc()
		return nil, errOverloaded
	}
	v.metrics.signatureChecks.Inc()
	c.done = make(chan struct{})
	v.checks <- c // never blocks: the channel holds as many as may be pending
	select {
	case <-c.done:
		return c.claims, c.err
	case <-v.stop:
		return nil, &TokenError{Reason: ReasonUnavailable, Cause: errors.New("shutting down")}
	}
}

// checkToken is a verification worker's part of a new token: its signature,
// then its claims.
func (v *Verifier) checkToken(c *signatureCheck) (*Claims, error) {
	if err := c.verifier.Verify(c.input, c.signature, c.key); err != nil {
		return nil, invalidToken("signature: %w", err)
	}
	payload, err := appendBase64URL(c.decoded, c.payload)
	if err != nil {
		return nil, invalidToken("payload: %w", err)
	}
	return v.claimsOf(payload)
}

// truncate bounds a string a token controls before it goes into a span.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// joseHeader is what authz reads of a JWS protected header.
type joseHeader struct {
	alg, typ, kid string
}

// parseHeader decodes a protected header (RFC 7515 §4). A header that
// names a key of its own (jku, jwk, x5u, x5c: keys come from the configured
// JWKS only) or asks for extensions (crit, RFC 7515 §4.1.11: extensions we
// do not implement, such as b64, must fail) is refused.
func parseHeader(raw []byte) (joseHeader, error) {
	var h joseHeader
	err := jsonMembers(raw, headerNames, func(name string, dec *jsontext.Decoder) (err error) {
		switch name {
		case "alg":
			h.alg, err = readString(dec)
		case "typ":
			h.typ, err = readString(dec)
		case "kid":
			h.kid, err = readString(dec)
		case "crit":
			return errors.New("token requires header extensions")
		default:
			return errors.New("token names its own key")
		}
		return err
	})
	if err != nil {
		return joseHeader{}, invalidToken("header: %w", err)
	}
	return h, nil
}

// headerNames are the header members authz reads or refuses.
var headerNames = []string{"alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "x5c"}

// keyFor checks a token's protected header and returns the algorithm and
// the JWKS key to verify it with, as the crypto package's public key.
func (v *Verifier) keyFor(ctx context.Context, hdr joseHeader) (jwa.SignatureAlgorithm, any, error) {
	alg := jwa.SignatureAlgorithm(hdr.alg)
	if !v.allowed[alg] {
		return alg, nil, invalidToken("algorithm %q is not allowed", hdr.alg)
	}
	if !v.acceptableType(hdr.typ) {
		return alg, nil, invalidToken("token type %q is not at+jwt (RFC 9068 §2.1)", hdr.typ)
	}
	kid := hdr.kid
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
	raw, err := v.rawKey(set, key)
	if err != nil {
		return alg, nil, invalidToken("key %q: %w", kid, err)
	}
	return alg, raw, nil
}

// rawKeys are the crypto package's keys of one JWKS, converted once when
// the set changes rather than on every verification.
type rawKeys struct {
	set  jwk.Set
	keys map[jwk.Key]any
}

func (v *Verifier) rawKey(set jwk.Set, key jwk.Key) (any, error) {
	cur := v.raw.Load()
	if cur == nil || cur.set != set {
		next := &rawKeys{set: set, keys: make(map[jwk.Key]any, set.Len())}
		for i := range set.Len() {
			k, _ := set.Key(i)
			var raw any
			if err := k.Raw(&raw); err == nil {
				next.keys[k] = raw
			}
		}
		v.raw.Store(next)
		cur = next
	}
	raw, ok := cur.keys[key]
	if !ok {
		return nil, errors.New("not a usable public key")
	}
	return raw, nil
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

// claimsOf decodes a verified payload's claims and validates them: iss,
// aud, exp (required), nbf and iat, within the clock skew.
func (v *Verifier) claimsOf(payload []byte) (*Claims, error) {
	var c Claims
	var iss, jti string
	var aud []string
	var exp, nbf, iat float64
	err := jsonMembers(payload, claimNames, func(name string, dec *jsontext.Decoder) (err error) {
		switch name {
		case "iss":
			iss, err = readString(dec)
		case "aud":
			aud, err = readStrings(dec)
		case "exp":
			exp, err = readNumber(dec)
		case "nbf":
			nbf, err = readNumber(dec)
		case "iat":
			iat, err = readNumber(dec)
		case "jti":
			jti, err = readString(dec)
		case "client_id":
			c.ClientID, err = readString(dec)
		case "scope":
			c.Scope, err = readString(dec)
		case "tenant_id":
			c.TenantID, err = readString(dec)
		}
		return err
	})
	if err != nil {
		return nil, invalidToken("claims: %w", err)
	}
	if iss != v.cfg.Issuer {
		return nil, invalidToken("issuer %q is not the trusted one", iss)
	}
	if !contains(aud, v.cfg.Audience) {
		return nil, invalidToken("audience %v does not name this API", aud)
	}
	now := v.clock.Now().Truncate(time.Second)
	skew := v.cfg.ClockSkew
	if exp <= 0 {
		return nil, invalidToken("no exp claim")
	}
	c.Expiry = numericDate(exp)
	if !now.Before(c.Expiry.Truncate(time.Second).Add(skew)) {
		return nil, &TokenError{Reason: ReasonTokenExpired, Cause: fmt.Errorf("expired at %s", c.Expiry.UTC().Format(time.RFC3339)), final: true}
	}
	// Not final: these tokens become valid with time.
	if nbf > 0 && now.Before(numericDate(nbf).Truncate(time.Second).Add(-skew)) {
		return nil, &TokenError{Reason: ReasonInvalidToken, Cause: errors.New("not valid yet (nbf)")}
	}
	if iat > 0 {
		if now.Before(numericDate(iat).Truncate(time.Second).Add(-skew)) {
			return nil, &TokenError{Reason: ReasonInvalidToken, Cause: errors.New("issued in the future (iat)")}
		}
		c.IssuedAt = int64(iat)
	}
	if c.ClientID == "" {
		return nil, invalidToken("no client_id claim (RFC 9068 §2.2)")
	}
	c.TokenKey = revocation.KeyOf(jti)
	c.Scopes = strings.Fields(c.Scope)
	return &c, nil
}

// claimNames are the claims authz reads.
var claimNames = []string{"iss", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "tenant_id"}

// numericDate is a NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly with a fraction.
func numericDate(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
