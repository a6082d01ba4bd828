// Package secretformat is the format of Portcullis client secrets: a prefix
// that names the issuer, 43 random base62 characters (256 bits) and a
// CRC32 checksum of them in base62, the scheme GitHub uses for its tokens.
// A secret scanner recognises one by its prefix and shape, and confirms it
// by its checksum offline, so a leaked secret is found with no false
// positives, and a typo'd one is told apart from a wrong one.
//
//	portcullis_3xK0c6...(43 characters)...Zq1B9aF   (60 characters in all)
package secretformat

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"
)

// Prefix starts every secret: it names the issuer.
const Prefix = "portcullis_"

const (
	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// randomLength base62 characters carry 43 × log2(62) ≈ 256.03 bits.
	randomLength = 43
	// checksumLength base62 characters hold any CRC32 (62⁶ > 2³²).
	checksumLength = 6
	// Length is the length of a whole secret.
	Length = len(Prefix) + randomLength + checksumLength
)

// Pattern matches a secret in text, for scanners: the same expression the
// docs give for gitleaks and GitHub's custom patterns. A match is then
// confirmed by Check.
var Pattern = regexp.MustCompile(`\b` + Prefix + `[0-9A-Za-z]{` + fmt.Sprint(randomLength+checksumLength) + `}\b`)

// New returns a new secret: randomLength characters drawn uniformly from
// crypto/rand, then their checksum.
func New() (string, error) {
	var b strings.Builder
	b.Grow(Length)
	b.WriteString(Prefix)
	buf := make([]byte, 64)
	for n := 0; n < randomLength; {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate secret: %w", err)
		}
		for _, c := range buf {
			// 248 = 4 × 62: bytes at or above it are dropped, so every
			// character is equally likely.
			if c < 248 && n < randomLength {
				b.WriteByte(alphabet[c%62])
				n++
			}
		}
	}
	random := b.String()[len(Prefix):]
	b.WriteString(checksum(random))
	return b.String(), nil
}

// The ways a string is not a secret of this format.
var (
	ErrPrefix   = errors.New("it does not start with " + Prefix)
	ErrLength   = fmt.Errorf("a secret is %d characters long", Length)
	ErrCharset  = errors.New("after the prefix a secret holds only letters and digits")
	ErrChecksum = errors.New("its checksum does not match: it was changed or mistyped")
)

// Check reports whether s is a well-formed secret, and if not, why. It
// says nothing of whether the secret exists or works.
func Check(s string) error {
	if !strings.HasPrefix(s, Prefix) {
		return ErrPrefix
	}
	if len(s) != Length {
		return ErrLength
	}
	body := s[len(Prefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return ErrCharset
		}
	}
	if checksum(body[:randomLength]) != body[randomLength:] {
		return ErrChecksum
	}
	return nil
}

// checksum is the CRC32 (IEEE) of random in base62, zero-padded to
// checksumLength characters.
func checksum(random string) string {
	n := uint64(crc32.ChecksumIEEE([]byte(random)))
	out := make([]byte, checksumLength)
	for i := checksumLength - 1; i >= 0; i-- {
		out[i] = alphabet[n%62]
		n /= 62
	}
	return string(out)
}
