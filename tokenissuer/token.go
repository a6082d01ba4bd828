package tokenissuer

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
)

// accessTokenClaims are the claims of an RFC 9068 JWT access token.
type accessTokenClaims struct {
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

// mint signs an access token for client with the key that is active at now.
func (s *Endpoints) mint(client *Client, scopes []string, now time.Time) (token string, lifetime time.Duration, err error) {
	key, err := s.keys.signer(now)
	if err != nil {
		return "", 0, err
	}
	lifetime = s.cfg.Tokens.Lifetime
	if client.TokenLifetime > 0 {
		lifetime = min(client.TokenLifetime, s.cfg.Tokens.MaxLifetime)
	}
	claims := accessTokenClaims{
		Issuer:   s.cfg.Issuer,
		Subject:  client.ID,
		ClientID: client.ID,
		Audience: s.cfg.Audience,
		Expiry:   now.Add(lifetime).Unix(),
		IssuedAt: now.Unix(),
		JTI:      newID(16),
		Scope:    joinScopes(scopes),
		TenantID: client.TenantID,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", 0, fmt.Errorf("encode claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, accessTokenType); err != nil {
		return "", 0, err
	}
	if err := hdr.Set(jws.KeyIDKey, key.kid); err != nil {
		return "", 0, err
	}
	signed, err := jws.Sign(payload, jws.WithKey(key.alg, key.private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", 0, fmt.Errorf("sign token with key %s: %w", key.kid, err)
	}
	return string(signed), lifetime, nil
}
