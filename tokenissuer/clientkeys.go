package tokenissuer

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/internal/egress"
)

// AssertionAlgorithms are the algorithms a client may sign its
// private_key_jwt assertions with: never none, never HMAC (a shared
// secret is what the keys replace).
var AssertionAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// Bounds of a client's registered keys.
const (
	MaxClientJWKSBytes = 64 << 10
	maxClientKeys      = 10
	minRSABits         = 2048
)

// ParseClientJWKS parses a client's JWKS and checks that it holds 1 to 10
// public keys, each with a unique kid, of a kind an allowed algorithm uses
// (EC P-256, OKP Ed25519, RSA of at least 2048 bits), and no private part.
// The token endpoint checks a fetched jwks_uri document the same way.
func ParseClientJWKS(raw []byte) (jwk.Set, error) {
	if len(raw) > MaxClientJWKSBytes {
		return nil, invalid("the JWKS is larger than %d bytes", MaxClientJWKSBytes)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, invalid("the JWKS does not parse: %v", err)
	}
	if set.Len() == 0 || set.Len() > maxClientKeys {
		return nil, invalid("a JWKS holds 1 to %d keys, not %d", maxClientKeys, set.Len())
	}
	kids := map[string]bool{}
	for i := range set.Len() {
		key, _ := set.Key(i)
		kid := key.KeyID()
		if kid == "" || kids[kid] {
			return nil, invalid("every key needs a kid of its own (key %d)", i+1)
		}
		kids[kid] = true
		switch k := key.(type) {
		case jwk.ECDSAPrivateKey, jwk.OKPPrivateKey, jwk.RSAPrivateKey, jwk.SymmetricKey:
			return nil, invalid("key %q is not a public key: register only the public half", kid)
		case jwk.ECDSAPublicKey:
			if k.Crv() != jwa.P256 {
				return nil, invalid("key %q: EC keys must be on P-256 (ES256)", kid)
			}
		case jwk.OKPPublicKey:
			if k.Crv() != jwa.Ed25519 {
				return nil, invalid("key %q: OKP keys must be Ed25519 (EdDSA)", kid)
			}
		case jwk.RSAPublicKey:
			var pub rsa.PublicKey
			if err := k.Raw(&pub); err != nil || pub.N.BitLen() < minRSABits {
				return nil, invalid("key %q: RSA keys must have at least %d bits", kid, minRSABits)
			}
		default:
			return nil, invalid("key %q is of an unsupported type", kid)
		}
	}
	return set, nil
}

// validateClientKeys checks keys as a client registers them. A jwks_uri is
// https, and names no loopback, private or otherwise internal address
// unless privateNetworks (then plain http on loopback is fine too). A name
// is checked again on each fetch, on the addresses it resolves to.
func validateClientKeys(k ClientKeys, privateNetworks bool) (ClientKeys, error) {
	if len(k.JWKS) > 0 && k.JWKSURI != "" {
		return k, invalid("give the keys inline (jwks) or by URL (jwks_uri), not both")
	}
	if len(k.JWKS) > 0 {
		if _, err := ParseClientJWKS(k.JWKS); err != nil {
			return k, err
		}
		var compact json.RawMessage
		if err := json.Unmarshal(k.JWKS, &compact); err != nil {
			return k, invalid("the JWKS is not JSON")
		}
	}
	if k.JWKSURI != "" {
		u, err := url.Parse(k.JWKSURI)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(privateNetworks && u.Scheme == "http" && loopbackHost(u.Hostname()))) {
			return k, invalid("jwks_uri %q must be an absolute https URL", k.JWKSURI)
		}
		if !privateNetworks {
			if err := publicHost(u.Hostname()); err != nil {
				return k, invalid("jwks_uri %q: %v; the issuer fetches client keys from public addresses only (its operator may allow others with tenants.jwks_uri_private_networks)", k.JWKSURI, err)
			}
		}
	}
	if k.Only && !k.Any() {
		return k, invalid("a client that authenticates with private_key_jwt only needs keys: jwks or jwks_uri")
	}
	return k, nil
}

// publicHost refuses a host that is an internal address, or a name that
// only ever means one (localhost).
func publicHost(host string) error {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%s is a loopback name", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return egress.CheckPublic(ip)
	}
	return nil
}

// loopbackHost reports whether host is a loopback name or address, where
// plain http cannot be overheard (a development setup).
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SetClientKeys registers the public keys the client signs its
// private_key_jwt assertions with (or none), and whether they are its only
// way to authenticate: then its secrets are removed, and none can be made.
func (a *Admin) SetClientKeys(ctx context.Context, id string, k ClientKeys) (*Client, error) {
	k, err := validateClientKeys(k, a.jwksURIPrivateNetworks)
	if err != nil {
		return nil, err
	}
	return a.updateClient(ctx, "client.set_keys", id, func(c *Client) error {
		c.Keys = k
		if k.Only {
			c.Secrets = []Secret{}
		}
		return nil
	})
}
