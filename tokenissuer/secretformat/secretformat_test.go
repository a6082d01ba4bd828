package secretformat_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer/secretformat"
)

func TestNewSecretsCheckAndAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	counts := map[byte]int{}
	for range 2000 {
		s, err := secretformat.New()
		if err != nil {
			t.Fatal(err)
		}
		if err := secretformat.Check(s); err != nil {
			t.Fatalf("a new secret does not check: %q: %v", s, err)
		}
		if !secretformat.Pattern.MatchString("password: " + s + "\n") {
			t.Fatalf("the pattern misses %q", s)
		}
		if seen[s] {
			t.Fatal("a secret repeated")
		}
		seen[s] = true
		for i := len(secretformat.Prefix); i < len(secretformat.Prefix)+43; i++ {
			counts[s[i]]++
		}
	}
	// 86,000 characters over 62 symbols: each about 1,387 times. A modulo
	// bias (bytes 248..255 kept) would lift the first eight symbols by
	// about 3 %; the bound catches a broken generator, not noise.
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n < 1100 || n > 1700 {
			t.Errorf("character %q drawn %d times of about 1387", c, n)
		}
	}
}

func TestCheckSaysWhyAStringIsNotASecret(t *testing.T) {
	t.Parallel()
	good, err := secretformat.New()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, secret string
		want         error
	}{
		{"another prefix", "ghp_" + good[len(secretformat.Prefix):], secretformat.ErrPrefix},
		{"an old secret (base64url, no prefix)", "q5N5m1b2v3c4x5z6l7k8j9h0g1f2d3s4a5p6o7i8u9y", secretformat.ErrPrefix},
		{"cut short", good[:len(good)-1], secretformat.ErrLength},
		{"a character outside base62", good[:20] + "-" + good[21:], secretformat.ErrCharset},
		{"one character of the random part changed", flip(good, 20), secretformat.ErrChecksum},
		{"one character of the checksum changed", flip(good, len(good)-1), secretformat.ErrChecksum},
	} {
		if err := secretformat.Check(tc.secret); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if secretformat.Pattern.MatchString("x" + good) {
		t.Error("the pattern matches inside a longer word")
	}
	if !strings.HasPrefix(good, "portcullis_") || len(good) != 60 {
		t.Errorf("the documented shape: %q", good)
	}
}

// FuzzCheck: Check never panics, and whatever it accepts has the shape the
// pattern finds.
func FuzzCheck(f *testing.F) {
	good, _ := secretformat.New()
	f.Add(good)
	f.Add("portcullis_")
	f.Add("portcullis_" + strings.Repeat("0", 49))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if secretformat.Check(s) == nil && secretformat.Pattern.FindString(s) != s {
			t.Fatalf("Check accepts %q, which the pattern does not find whole", s)
		}
	})
}

// TestTheDocsGiveTheScannersThePattern: the expression the docs give for
// gitleaks and GitHub is the one the issuer's secrets are made to match.
func TestTheDocsGiveTheScannersThePattern(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "issuer.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{secretformat.Pattern.String(), "regex = '''" + secretformat.Pattern.String() + "'''", "`portcullis_[0-9A-Za-z]{49}`"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/issuer.md does not give %s", want)
		}
	}
}
