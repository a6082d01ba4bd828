package keys

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Claims are the claims of an RFC 9068 JWT access token.
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	JTI      string `json:"jti"`
	Scope    string `json:"scope"`
	TenantID string `json:"tenant_id,omitempty"`
}

// accessTokenType is the "typ" header of RFC 9068 §2.1.
const accessTokenType = "at+jwt"

// Sign signs claims as an access token with the key that is active at now.
func (m *Manager) Sign(claims Claims, now time.Time) (string, error) {
	key, err := m.signer(now)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, accessTokenType); err != nil {
		return "", err
	}
	if err := hdr.Set(jws.KeyIDKey, key.kid); err != nil {
		return "", err
	}
	signed, err := jws.Sign(payload, jws.WithKey(key.alg, key.private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign token with key %s: %w", key.kid, err)
	}
	return string(signed), nil
}

// AccessToken is what the admin API needs of a verified access token.
type AccessToken struct {
	ID       string
	ClientID string
	TenantID string
	Scopes   []string
	IssuedAt time.Time
	Expiry   time.Time
}

// HasScope reports whether the token was granted scope.
func (t AccessToken) HasScope(scope string) bool { return slices.Contains(t.Scopes, scope) }

// ErrInvalidAccessToken is a token this issuer did not mint, or no longer
// honours (expired, signed by a retired key, malformed).
var ErrInvalidAccessToken = errors.New("invalid access token")

// VerifyAccessToken verifies a token this issuer minted: signed by a key it
// publishes, typ at+jwt (RFC 9068 §2.1), iss this issuer, not expired.
func (m *Manager) VerifyAccessToken(token, issuer string, now time.Time) (AccessToken, error) {
	snap := m.snapshot.Load()
	if snap == nil {
		return AccessToken{}, errors.New("signing keys not loaded")
	}
	if !canonicalCompact(token) {
		return AccessToken{}, fmt.Errorf("%w: not three parts of canonical base64url", ErrInvalidAccessToken)
	}
	msg, err := jws.ParseString(token)
	if err != nil || len(msg.Signatures()) != 1 || msg.Signatures()[0].ProtectedHeaders().Type() != accessTokenType {
		return AccessToken{}, ErrInvalidAccessToken
	}
	tok, err := jwt.ParseString(token, jwt.WithKeySet(snap.public), jwt.WithValidate(true), jwt.WithIssuer(issuer),
		jwt.WithRequiredClaim(jwt.ExpirationKey), jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })))
	if err != nil {
		return AccessToken{}, fmt.Errorf("%w: %v", ErrInvalidAccessToken, err)
	}
	at := AccessToken{ID: tok.JwtID(), IssuedAt: tok.IssuedAt(), Expiry: tok.Expiration()}
	if v, ok := tok.Get("client_id"); ok {
		at.ClientID, _ = v.(string)
	}
	if v, ok := tok.Get("tenant_id"); ok {
		at.TenantID, _ = v.(string)
	}
	if v, ok := tok.Get("scope"); ok {
		s, _ := v.(string)
		at.Scopes = strings.Fields(s)
	}
	if at.ClientID == "" {
		return AccessToken{}, fmt.Errorf("%w: no client_id", ErrInvalidAccessToken)
	}
	return at, nil
}

// canonicalCompact reports whether token is three dot-separated parts in
// canonical base64url (RFC 7515 §2: no padding, and, as authz demands, zero
// unused bits and nothing outside the alphabet): one token, one spelling,
// so that the issuer accepts exactly the tokens authz does.
func canonicalCompact(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(p); err != nil {
			return false
		}
	}
	return true
}
