package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis/portcullis/internal/secretfile"
)

// encryptedKeyMagic starts every private key encrypted at rest:
// magic || 12-byte nonce || AES-256-GCM ciphertext, with the kid as
// additional data so a ciphertext cannot be moved to another key's row.
var encryptedKeyMagic = []byte("PCX1")

// Encrypter encrypts signing keys at rest with a key-encryption key that
// is kept apart from the store (a file or the environment), so a copy of the
// database alone yields no private key.
type Encrypter struct {
	aead cipher.AEAD
}

// kekBytes is the length of the key-encryption key: AES-256.
const kekBytes = 32

// NewEncrypter returns an encrypter for a 32-byte key.
func NewEncrypter(kek []byte) (*Encrypter, error) {
	if len(kek) != kekBytes {
		return nil, fmt.Errorf("the key-encryption key must be %d bytes (base64 of %d random bytes), got %d", kekBytes, kekBytes, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Encrypter{aead: aead}, nil
}

// LoadEncrypter reads the key-encryption key given inline (base64) or in
// a file; it returns nil when neither is set. A key file that group or
// others can read is refused, and so is a key of any length but 32 bytes.
func LoadEncrypter(inline, file string) (*Encrypter, error) {
	raw, setting := inline, "keys.encryption_key"
	if raw == "" && file != "" {
		data, err := secretfile.Read(file)
		if err != nil {
			return nil, fmt.Errorf("keys.encryption_key_file: %w", err)
		}
		raw, setting = strings.TrimSpace(string(data)), "keys.encryption_key_file "+file
	}
	if raw == "" {
		return nil, nil
	}
	return decodeKEK(raw, setting)
}

func decodeKEK(raw, setting string) (*Encrypter, error) {
	kek, err := secretfile.DecodeKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: the key-encryption key is %w", setting, err)
	}
	enc, err := NewEncrypter(kek)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	return enc, nil
}

// LoadOrCreateEncrypter reads the key-encryption key file, creating it
// with 256 random bits when it does not exist.
func LoadOrCreateEncrypter(file string) (*Encrypter, bool, error) {
	raw, created, err := secretfile.LoadOrCreateKey(file)
	if err != nil {
		return nil, false, fmt.Errorf("key-encryption key %s: %w", file, err)
	}
	enc, err := decodeKEK(raw, "key-encryption key "+file)
	return enc, created, err
}

func (e *Encrypter) Seal(kid string, plain []byte) []byte {
	nonce := make([]byte, e.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := append(append([]byte{}, encryptedKeyMagic...), nonce...)
	return e.aead.Seal(out, nonce, plain, []byte(kid))
}

// ErrKeyInClear is a signing key stored unencrypted while a key-encryption
// key is configured: whoever can write the database could have planted it.
var ErrKeyInClear = errors.New("the key is stored in clear although a key-encryption key is configured; if you did not plant it, run `issuer keys encrypt` to encrypt the store's keys")

// IsSealed reports whether a stored key is encrypted.
func IsSealed(stored []byte) bool { return bytes.HasPrefix(stored, encryptedKeyMagic) }

// OpenStored returns the plaintext JWK of a stored key, decrypting it.
// With an encrypter, a key in clear is refused.
func OpenStored(e *Encrypter, kid string, stored []byte) ([]byte, error) {
	if !IsSealed(stored) {
		if e != nil {
			return nil, ErrKeyInClear
		}
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
