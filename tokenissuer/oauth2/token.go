package oauth2

import (
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
)

// mint signs an access token for client with the key that is active at now.
func (s *Endpoints) mint(client *tokenissuer.Client, scopes []string, now time.Time) (token string, lifetime time.Duration, err error) {
	lifetime = s.cfg.Tokens.Lifetime
	if client.TokenLifetime > 0 {
		lifetime = min(client.TokenLifetime, s.cfg.Tokens.MaxLifetime)
	}
	token, err = s.keys.Sign(keys.Claims{
		Issuer:   s.cfg.Issuer,
		Subject:  client.ID,
		ClientID: client.ID,
		Audience: s.cfg.Audience,
		Expiry:   now.Add(lifetime).Unix(),
		IssuedAt: now.Unix(),
		JTI:      tokenissuer.RandomID(16),
		Scope:    tokenissuer.FormatScope(scopes),
		TenantID: client.TenantID,
	}, now)
	return token, lifetime, err
}
