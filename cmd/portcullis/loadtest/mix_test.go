package loadtest

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// TestTamperedTokensAlwaysChangeTheSignature: the tampered token differs
// from the real one in its signature bytes, and stays canonical base64url,
// so authz must refuse it for its signature, never for its spelling.
func TestTamperedTokensAlwaysChangeTheSignature(t *testing.T) {
	t.Parallel()
	iss, err := NewIssuer(jwa.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	for i := range 200 {
		tok, err := iss.Token("client-1", "acme", "accounts:read", "jti-"+string(rune('a'+i%26))+time.Duration(i).String(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		bad := tamper(tok)
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		badSig := bad[strings.LastIndexByte(bad, '.')+1:]
		orig, err1 := base64.RawURLEncoding.Strict().DecodeString(sig)
		changed, err2 := base64.RawURLEncoding.Strict().DecodeString(badSig)
		if err1 != nil || err2 != nil || string(orig) == string(changed) || len(orig) != len(changed) {
			t.Fatalf("token %d: the signature did not change, or is not canonical: %v %v", i, err1, err2)
		}
		if bad[:strings.LastIndexByte(bad, '.')] != tok[:strings.LastIndexByte(tok, '.')] {
			t.Fatalf("token %d: more than the signature changed", i)
		}
	}
}
