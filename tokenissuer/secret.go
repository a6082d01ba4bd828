package tokenissuer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// newID returns a random identifier of n bytes, base64url without padding.
func newID(n int) string {
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
// 256 random bits (mode 0600) when the file does not exist yet.
func LoadOrCreateHashKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		enc := base64.RawURLEncoding.EncodeToString(key) + "\n"
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secret hashing key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create secret hashing key %s: %w", path, err)
		}
		if _, err := f.WriteString(enc); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret hashing key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret hashing key: %w", err)
	}
	return DecodeHashKey(strings.TrimSpace(string(raw)))
}

// DecodeHashKey decodes a base64url (or standard base64) secret hashing key.
func DecodeHashKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) < 32 {
				return nil, errors.New("secret hashing key must decode to at least 32 bytes")
			}
			return key, nil
		}
	}
	return nil, errors.New("secret hashing key is not valid base64")
}

// Hash returns the stored form of secret for clientID.
func (h *SecretHasher) Hash(clientID, secret string) []byte {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(clientID))
	mac.Write([]byte{0})
	mac.Write([]byte(secret))
	return mac.Sum(nil)
}

// Matches reports whether secret matches one of the stored hashes, comparing
// in constant time and always checking every hash, so timing reveals neither
// which secret matched nor how much of it did.
func (h *SecretHasher) Matches(clientID, secret string, hashes [][]byte) bool {
	candidate := h.Hash(clientID, secret)
	match := 0
	for _, stored := range hashes {
		match |= subtle.ConstantTimeCompare(candidate, stored)
	}
	return match == 1
}
