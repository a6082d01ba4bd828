package tokenissuer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/portcullis/portcullis/internal/secretfile"
)

// secretBytes is the entropy of a generated client secret: 256 bits.
const secretBytes = 32

// GenerateSecret returns a new client secret: 256 random bits, base64url
// without padding (43 characters, safe in URLs, forms and Basic credentials).
func GenerateSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// RandomID returns a random identifier of n bytes, base64url without padding.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b)
}

// SecretHasher turns client secrets into the hashes the store keeps.
//
// Why a fast keyed hash (HMAC-SHA-256) and not a slow password KDF such as
// bcrypt or Argon2: slow KDFs exist to make guessing low-entropy, human-chosen
// passwords expensive after a database leak. Client secrets here are never
// chosen by people; the issuer generates them with 256 bits of entropy, so an
// offline search of 2^255 candidates is out of reach whatever the cost per
// guess. A KDF would add nothing to that and would cost tens of milliseconds of
// CPU per token request, making the token endpoint bound by hashing (and easy to
// exhaust with bad credentials) instead of by signing. The key (a "pepper")
// lives outside the store, so a leaked database alone does not even allow
// checking a candidate secret. The hash also covers the client ID, so a hash
// copied to another client's row does not verify.
type SecretHasher struct {
	key []byte
}

// NewSecretHasher returns a hasher keyed with key, which must be at least 32 bytes.
func NewSecretHasher(key []byte) (*SecretHasher, error) {
	if len(key) < 32 {
		return nil, errors.New("secret hashing key must be at least 32 bytes")
	}
	return &SecretHasher{key: append([]byte(nil), key...)}, nil
}

// LoadOrCreateHashKey reads the secret hashing key from path, creating it with
// 256 random bits (owner-only) when the file does not exist yet. A key file
// that group or others can read is refused.
func LoadOrCreateHashKey(path string) ([]byte, error) {
	raw, _, err := secretfile.LoadOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("secret hashing key: %w", err)
	}
	return DecodeHashKey(raw)
}

// DecodeHashKey decodes a base64url (or standard base64) secret hashing key.
func DecodeHashKey(s string) ([]byte, error) {
	key, err := secretfile.DecodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("secret hashing key: %w", err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("secret hashing key must decode to at least 32 bytes, got %d", len(key))
	}
	return key, nil
}

// Hash returns the stored form of secret for clientID.
func (h *SecretHasher) Hash(clientID, secret string) []byte {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(clientID))
	mac.Write([]byte{0})
	mac.Write([]byte(secret))
	return mac.Sum(nil)
}

// Lookup returns the keyed hash that finds secret without its client ID
// (Secret.Lookup): a leak report names a secret, never its client. Keyed
// like Hash, so a leaked database alone checks no candidate.
func (h *SecretHasher) Lookup(secret string) []byte {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte("lookup\x00"))
	mac.Write([]byte(secret))
	return mac.Sum(nil)
}

// Matches reports whether secret matches one of the stored hashes, comparing
// in constant time and always checking every hash, so timing reveals neither
// which secret matched nor how much of it did.
func (h *SecretHasher) Matches(clientID, secret string, hashes [][]byte) bool {
	return h.Match(clientID, secret, hashes) >= 0
}

// Match returns the index of the stored hash that secret matches, or -1, with
// the same constant-time work as Matches: which secret matched is known
// afterwards (to record its use), never from the timing.
func (h *SecretHasher) Match(clientID, secret string, hashes [][]byte) int {
	candidate := h.Hash(clientID, secret)
	found := -1
	for i, stored := range hashes {
		found = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(candidate, stored), i, found)
	}
	return found
}
