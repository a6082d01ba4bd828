package tokenissuer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
)

// encryptedKeyMagic starts every private key encrypted at rest:
// magic || 12-byte nonce || AES-256-GCM ciphertext, with the kid as
// additional data so a ciphertext cannot be moved to another key's row.
var encryptedKeyMagic = []byte("PCX1")

// KeyEncrypter encrypts signing keys at rest with a key-encryption key that
// is kept apart from the store (a file or the environment), so a copy of the
// database alone yields no private key.
type KeyEncrypter struct {
	aead cipher.AEAD
}

// NewKeyEncrypter returns an encrypter for a 32-byte key.
func NewKeyEncrypter(kek []byte) (*KeyEncrypter, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("the key-encryption key must be 32 bytes (base64 of 32 random bytes), got %d", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &KeyEncrypter{aead: aead}, nil
}

// LoadKeyEncrypter reads the key-encryption key given inline (base64) or in
// a file; it returns nil when neither is set.
func LoadKeyEncrypter(inline, file string) (*KeyEncrypter, error) {
	raw := inline
	if raw == "" && file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("keys.encryption_key_file: %w", err)
		}
		raw = strings.TrimSpace(string(data))
	}
	if raw == "" {
		return nil, nil
	}
	kek, err := DecodeHashKey(raw)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return NewKeyEncrypter(kek[:min(len(kek), 32)])
}

func (e *KeyEncrypter) seal(kid string, plain []byte) []byte {
	nonce := make([]byte, e.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := append(append([]byte{}, encryptedKeyMagic...), nonce...)
	return e.aead.Seal(out, nonce, plain, []byte(kid))
}

// openStoredKey returns the plaintext JWK of a stored key, decrypting it
// when it is encrypted.
func openStoredKey(e *KeyEncrypter, kid string, stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, encryptedKeyMagic) {
		return stored, nil
	}
	if e == nil {
		return nil, errors.New("the key is encrypted; set keys.encryption_key_file or keys.encryption_key")
	}
	rest := stored[len(encryptedKeyMagic):]
	if len(rest) < e.aead.NonceSize() {
		return nil, errors.New("encrypted key is truncated")
	}
	plain, err := e.aead.Open(nil, rest[:e.aead.NonceSize()], rest[e.aead.NonceSize():], []byte(kid))
	if err != nil {
		return nil, errors.New("cannot decrypt the key: wrong key-encryption key, or the row was tampered with")
	}
	return plain, nil
}
