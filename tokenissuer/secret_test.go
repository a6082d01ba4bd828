package tokenissuer_test

import (
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
)

func TestSecretMatchSaysWhichSecret(t *testing.T) {
	t.Parallel()
	h, err := tokenissuer.NewSecretHasher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	first, second := "first-secret-0123456789abcdefghijklmnopq", "second-secret-0123456789abcdefghijklmnop"
	hashes := [][]byte{h.Hash("app", first), h.Hash("app", second)}
	for _, tc := range []struct {
		name, clientID, secret string
		want                   int
	}{
		{"the first", "app", first, 0},
		{"the second", "app", second, 1},
		{"a wrong secret", "app", "nope", -1},
		{"another client's hash", "other", first, -1},
	} {
		if got := h.Match(tc.clientID, tc.secret, hashes); got != tc.want {
			t.Errorf("%s: Match = %d, want %d", tc.name, got, tc.want)
		}
		if got := h.Matches(tc.clientID, tc.secret, hashes); got != (tc.want >= 0) {
			t.Errorf("%s: Matches = %v", tc.name, got)
		}
	}
}

func TestSecretHintIsTheLastCharactersOfGeneratedSecretsOnly(t *testing.T) {
	t.Parallel()
	s, err := tokenissuer.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenissuer.SecretHint(s); got != s[len(s)-4:] {
		t.Errorf("hint %q of %q", got, s)
	}
	// A short string (a test's, or an imported one) would give too much away.
	if got := tokenissuer.SecretHint("short-secret"); got != "" {
		t.Errorf("hint of a short secret: %q", got)
	}
}
