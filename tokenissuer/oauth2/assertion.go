package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/portcullis/portcullis/internal/egress"
	"github.com/portcullis/portcullis/tokenissuer"
)

// private_key_jwt (RFC 7523 §2.2, OIDC Core §9): a client proves itself
// with a JWT it signed with a key it registered, and holds no shared
// secret.

// AssertionType is the client_assertion_type of a JWT assertion.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// maxAssertion bounds an assertion: a few hundred bytes signed.
	maxAssertion = 8 << 10
	// maxAssertionLife is how far ahead an assertion's exp may be: a
	// short life bounds how long its ID must be remembered.
	maxAssertionLife = 5 * time.Minute
	// assertionSkew forgives clocks that disagree a little.
	assertionSkew = 30 * time.Second
)

// assertionCredentials reads a client assertion from the form, or reports
// that there is none. Using it beside another method is an error (RFC
// 6749 §2.3: one method per request).
func assertionCredentials(r *http.Request, form url.Values) (credentials, bool, error) {
	if !form.Has("client_assertion") && !form.Has("client_assertion_type") {
		return credentials{}, false, nil
	}
	if len(r.Header.Values("Authorization")) > 0 || form.Has("client_secret") {
		return credentials{}, true, ErrInvalidRequest.WithDescription("use one client authentication method: a client assertion, HTTP Basic or client_secret, not several")
	}
	if form.Get("client_assertion_type") != AssertionType {
		return credentials{}, true, ErrInvalidRequest.WithDescription("client_assertion_type must be " + AssertionType)
	}
	assertion := form.Get("client_assertion")
	if assertion == "" || len(assertion) > maxAssertion {
		return credentials{}, true, ErrInvalidClient.WithDescription("client_assertion is missing or too large")
	}
	// The client is the assertion's issuer, read before the signature is
	// checked only to find its keys.
	var claims struct {
		Iss string `json:"iss"`
	}
	if msg, err := jws.Parse([]byte(assertion), jws.WithCompact()); err == nil {
		_ = json.Unmarshal(msg.Payload(), &claims)
	}
	id := claims.Iss
	if form.Has("client_id") && form.Get("client_id") != id {
		return credentials{id: form.Get("client_id")}, true, ErrInvalidClient.WithDescription("client_id differs from the assertion's issuer")
	}
	return credentials{id: id, assertion: assertion}, true, nil
}

// verifyAssertion checks a client's assertion (RFC 7523 §3) and returns the
// kid that signed it: the algorithm from the allow-list, a key the client
// registered, iss and sub the client, aud this issuer or its token
// endpoint, exp required and at most maxAssertionLife ahead, nbf and iat
// not ahead, and a jti never used before on any replica.
func (s *Endpoints) verifyAssertion(ctx context.Context, c *tokenissuer.Client, assertion string) (string, error) {
	if !c.Keys.Any() {
		return "", errors.New("the client has no keys for private_key_jwt")
	}
	msg, err := jws.Parse([]byte(assertion), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return "", errors.New("the assertion is not a compact JWS")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg := hdr.Algorithm().String()
	if !slices.Contains(tokenissuer.AssertionAlgorithms, alg) {
		return "", fmt.Errorf("algorithm %q is not allowed for assertions", alg)
	}
	key, err := s.clientKeys.key(ctx, c, hdr.KeyID())
	if err != nil {
		return "", err
	}
	now := s.clock.Now()
	tok, err := jwt.Parse([]byte(assertion), jwt.WithKey(jwa.SignatureAlgorithm(alg), key), jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(s.clock.Now)), jwt.WithAcceptableSkew(assertionSkew),
		jwt.WithIssuer(c.ID), jwt.WithSubject(c.ID), jwt.WithRequiredClaim("exp"), jwt.WithRequiredClaim("jti"))
	if err != nil {
		return "", fmt.Errorf("the assertion does not verify: %w", err)
	}
	if tok.JwtID() == "" {
		return "", errors.New("the assertion has no jti")
	}
	base := strings.TrimSuffix(s.cfg.Issuer, "/")
	if !slices.ContainsFunc(tok.Audience(), func(a string) bool { return a == s.cfg.Issuer || a == base || a == base+"/oauth2/token" }) {
		return "", errors.New("the assertion's aud is neither this issuer nor its token endpoint")
	}
	if tok.Expiration().After(now.Add(maxAssertionLife + assertionSkew)) {
		return "", fmt.Errorf("the assertion's exp is more than %s ahead", maxAssertionLife)
	}
	if ctx.Value(recheckKey{}) != nil {
		return hdr.KeyID(), nil
	}
	if err := s.store.UseAssertionID(ctx, c.ID, tok.JwtID(), tok.Expiration().Add(assertionSkew)); err != nil && !errors.Is(err, tokenissuer.ErrAssertionReplayed) {
		return "", storeError{err} // the issuer's fault, not the client's
	} else if err != nil {
		return "", err
	}
	return hdr.KeyID(), nil
}

// recheckKey marks a request judged a second time (after waiting out a
// watermark), whose assertion ID the first check recorded.
type recheckKey struct{}

// storeError is a failure of the store while checking an assertion: a
// server error, never the client's invalid_client.
type storeError struct{ error }

func (e storeError) Unwrap() error { return e.error }

func isStoreError(err error) bool {
	var se storeError
	return errors.As(err, &se)
}

// clientKeySets holds clients' keys: the inline JWKS parsed once per
// client version, and jwks_uri documents fetched with the strictness of
// authz's JWKS fetch: bounded, cached, fetched again for an unknown kid at
// most once per refetchEvery, kept when a fetch fails.
type clientKeySets struct {
	client *http.Client
	clock  tokenissuer.Clock

	mu   sync.Mutex
	sets map[string]*keySetEntry // by client ID (inline) or "uri:" + jwks_uri
}

type keySetEntry struct {
	set       jwk.Set
	version   string // inline: the client's version it was parsed at
	fetched   time.Time
	lastTried time.Time
}

const (
	// keysTTL is how long a fetched jwks_uri document is used.
	keysTTL = 5 * time.Minute
	// refetchEvery bounds how often one jwks_uri is fetched again for a
	// kid it does not hold: a flood of bogus kids costs one fetch.
	refetchEvery = 30 * time.Second
	// maxKeySets bounds the cache; past it, entries are dropped.
	maxKeySets = 10_000
)

// newClientKeySets fetches jwks_uri documents from public addresses only,
// unless privateNetworks: the tenant, not the operator, chooses the URL.
func newClientKeySets(clock tokenissuer.Clock, privateNetworks bool) *clientKeySets {
	return &clientKeySets{client: egress.Client(egress.Options{Timeout: 5 * time.Second, PrivateNetworks: privateNetworks}),
		clock: clock, sets: map[string]*keySetEntry{}}
}

// key returns the client's key kid names.
func (k *clientKeySets) key(ctx context.Context, c *tokenissuer.Client, kid string) (jwk.Key, error) {
	if len(c.Keys.JWKS) > 0 {
		set, err := k.inline(c)
		if err != nil {
			return nil, err
		}
		return lookup(set, kid)
	}
	set, err := k.fetched(ctx, c.Keys.JWKSURI, kid)
	if err != nil {
		return nil, err
	}
	return lookup(set, kid)
}

func lookup(set jwk.Set, kid string) (jwk.Key, error) {
	if kid == "" && set.Len() == 1 {
		key, _ := set.Key(0)
		return key, nil
	}
	key, ok := set.LookupKeyID(kid)
	if !ok {
		return nil, fmt.Errorf("no key %q among the client's keys", kid)
	}
	return key, nil
}

func (k *clientKeySets) inline(c *tokenissuer.Client) (jwk.Set, error) {
	version := tokenissuer.ClientVersion(c)
	k.mu.Lock()
	e := k.sets[c.ID]
	k.mu.Unlock()
	if e != nil && e.version == version {
		return e.set, nil
	}
	set, err := tokenissuer.ParseClientJWKS(c.Keys.JWKS)
	if err != nil {
		return nil, err
	}
	k.store(c.ID, &keySetEntry{set: set, version: version})
	return set, nil
}

func (k *clientKeySets) fetched(ctx context.Context, uri, kid string) (jwk.Set, error) {
	now := k.clock.Now()
	k.mu.Lock()
	e := k.sets["uri:"+uri]
	fresh := e != nil && now.Sub(e.fetched) < keysTTL
	holds := e != nil && e.set != nil && (kid == "" || hasKey(e.set, kid))
	mayFetch := e == nil || now.Sub(e.lastTried) >= refetchEvery
	if (!fresh || !holds) && mayFetch {
		if e == nil {
			e = &keySetEntry{}
			k.storeLocked("uri:"+uri, e)
		}
		e.lastTried = now
	} else {
		mayFetch = false
	}
	set := (jwk.Set)(nil)
	if e != nil {
		set = e.set
	}
	k.mu.Unlock()
	if !mayFetch {
		if set == nil {
			return nil, errors.New("the client's jwks_uri could not be read lately")
		}
		return set, nil
	}
	fetchedSet, err := k.fetch(ctx, uri)
	if err != nil {
		if set != nil {
			return set, nil // keep what worked
		}
		return nil, err
	}
	k.mu.Lock()
	e.set, e.fetched = fetchedSet, now
	k.mu.Unlock()
	return fetchedSet, nil
}

func hasKey(set jwk.Set, kid string) bool {
	_, ok := set.LookupKeyID(kid)
	return ok
}

func (k *clientKeySets) fetch(ctx context.Context, uri string) (jwk.Set, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if errors.Is(err, egress.ErrNotPublic) {
		return nil, fmt.Errorf("fetch the client's jwks_uri: %w (set tenants.jwks_uri_private_networks to allow it)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the client's jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the client's jwks_uri answered %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, tokenissuer.MaxClientJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the client's jwks_uri: %w", err)
	}
	return tokenissuer.ParseClientJWKS(raw)
}

func (k *clientKeySets) store(key string, e *keySetEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.storeLocked(key, e)
}

func (k *clientKeySets) storeLocked(key string, e *keySetEntry) {
	if len(k.sets) >= maxKeySets {
		for old := range k.sets {
			delete(k.sets, old)
			break
		}
	}
	k.sets[key] = e
}
