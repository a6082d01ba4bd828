package authz

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCanonicalBase64URLAgreesWithStrictDecoding(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	strict := base64.RawURLEncoding.Strict()
	for _, prefix := range []string{"", "QUJD", "QUJDRA"} {
		for _, a := range alphabet + "=+/." {
			for _, b := range "" + alphabet[:4] + "Q_" {
				for _, s := range []string{prefix + string(a), prefix + string(a) + string(b), prefix + "Q" + string(a) + string(b)} {
					_, err := strict.DecodeString(s)
					if got := isCanonicalBase64URL(s); got != (err == nil) {
						t.Errorf("isCanonicalBase64URL(%q) = %v, strict decoding says %v", s, got, err)
					}
				}
			}
		}
	}
}

func TestTokenAttacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := time.Now()
	stranger := newSigningKey(t, "ec-1", jwa.ES256) // same kid, key not in the JWKS
	unknownKid := newSigningKey(t, "not-published", jwa.ES256)
	// The classic confusion: the published public key used as the HMAC secret.
	rsaPublicJWK, err := json.Marshal(f.rsa.public(t))
	if err != nil {
		t.Fatal(err)
	}
	hmacWithPublicKey := func() string {
		payload, _ := json.Marshal(claims(now))
		hdr := jws.NewHeaders()
		hdr.Set(jws.KeyIDKey, "rsa-1")
		hdr.Set(jws.TypeKey, "at+jwt")
		signed, err := jws.Sign(payload, jws.WithKey(jwa.HS256, rsaPublicJWK, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}()
	b64 := func(v any) string {
		raw, _ := json.Marshal(v)
		return strings.TrimRight(encodeB64(raw), "=")
	}
	algNone := b64(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "ec-1"}) + "." + b64(claims(now)) + "."
	valid := f.token(t, nil)
	parts := strings.Split(valid, ".")

	const rawHeader = `{"alg":"ES256","typ":"at+jwt","kid":"ec-1"}`
	rawClaims := func(more string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d,"client_id":"app-1","scope":"accounts:read"%s}`, testIssuer, testAudience, now.Add(time.Hour).Unix(), more)
	}
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"valid ES256", valid, "allowed"},
		{"valid RS256", sign(t, f.rsa, nil, claims(now)), "allowed"},
		{"valid EdDSA", sign(t, f.ed, nil, claims(now)), "allowed"},
		{"alg none", algNone, "invalid-token"},
		{"HS256 signed with the RSA public key", hmacWithPublicKey, "invalid-token"},
		{"signature from a key not in the JWKS", sign(t, stranger, nil, claims(now)), "invalid-token"},
		{"unknown kid", sign(t, unknownKid, nil, claims(now)), "invalid-token"},
		{"kid of a key of another type", sign(t, rekeyed(t, f.ec, "rsa-1"), nil, claims(now)), "invalid-token"},
		{"no kid", func() string {
			k := rekeyed(t, f.ec, "")
			payload, _ := json.Marshal(claims(now))
			hdr := jws.NewHeaders()
			hdr.Set(jws.TypeKey, "at+jwt")
			s, _ := jws.Sign(payload, jws.WithKey(jwa.ES256, k.private, jws.WithProtectedHeaders(hdr)))
			return string(s)
		}(), "invalid-token"},
		{"expired", f.token(t, func(cl map[string]any) { cl["exp"] = now.Add(-time.Minute).Unix() }), "token-expired"},
		{"expired within skew", f.token(t, func(cl map[string]any) { cl["exp"] = now.Add(-10 * time.Second).Unix() }), "allowed"},
		{"no exp", f.token(t, func(cl map[string]any) { delete(cl, "exp") }), "invalid-token"},
		{"nbf in the future", f.token(t, func(cl map[string]any) { cl["nbf"] = now.Add(10 * time.Minute).Unix() }), "invalid-token"},
		{"iat in the future", f.token(t, func(cl map[string]any) { cl["iat"] = now.Add(10 * time.Minute).Unix() }), "invalid-token"},
		{"wrong iss", f.token(t, func(cl map[string]any) { cl["iss"] = "https://evil.test" }), "invalid-token"},
		{"wrong aud", f.token(t, func(cl map[string]any) { cl["aud"] = "https://other.example.com" }), "invalid-token"},
		{"aud list containing ours", f.token(t, func(cl map[string]any) { cl["aud"] = []string{"x", testAudience} }), "allowed"},
		{"no client_id", f.token(t, func(cl map[string]any) { delete(cl, "client_id") }), "invalid-token"},
		{"claim names match exactly: EXP is not exp", f.token(t, func(cl map[string]any) { cl["EXP"] = cl["exp"]; delete(cl, "exp") }), "invalid-token"},
		{"claim names match exactly: Iss is not iss", f.token(t, func(cl map[string]any) { cl["Iss"] = cl["iss"]; delete(cl, "iss") }), "invalid-token"},
		{"exp as a string", f.token(t, func(cl map[string]any) { cl["exp"] = "4102444800" }), "invalid-token"},
		{"exp of zero", f.token(t, func(cl map[string]any) { cl["exp"] = 0 }), "invalid-token"},
		{"fractional exp", f.token(t, func(cl map[string]any) { cl["exp"] = float64(now.Add(time.Hour).Unix()) + 0.5 }), "allowed"},
		{"aud not a string", f.token(t, func(cl map[string]any) { cl["aud"] = 42 }), "invalid-token"},
		{"aud list without ours", f.token(t, func(cl map[string]any) { cl["aud"] = []string{"x", "y"} }), "invalid-token"},
		{"claims not an object", sign(t, f.ec, nil, nil), "invalid-token"},
		{"raw claims as signed", signRaw(t, f.ec, rawHeader, rawClaims("")), "allowed"},
		{"a claim given twice", signRaw(t, f.ec, rawHeader, rawClaims(`,"client_id":"admin"`)), "invalid-token"},
		{"a claim given twice, once escaped", signRaw(t, f.ec, rawHeader, rawClaims(`,"\u0063lient_id":"admin"`)), "invalid-token"},
		{"an unknown member given twice", signRaw(t, f.ec, rawHeader, rawClaims(`,"x":1,"x":2`)), "invalid-token"},
		{"claims with invalid UTF-8", signRaw(t, f.ec, rawHeader, rawClaims(",\"name\":\"\xff\"")), "invalid-token"},
		{"data after the claims", signRaw(t, f.ec, rawHeader, rawClaims("")+`{}`), "invalid-token"},
		{"a header member given twice", signRaw(t, f.ec, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","kid":"rsa-1"}`, rawClaims("")), "invalid-token"},
		{"an escaped jku header", signRaw(t, f.ec, `{"alg":"ES256","typ":"at+jwt","kid":"ec-1","\u006aku":"https://evil.test"}`, rawClaims("")), "invalid-token"},
		{"tenant_id null", f.token(t, func(cl map[string]any) { cl["tenant_id"] = nil }), "invalid-token"},
		{"exp null", f.token(t, func(cl map[string]any) { cl["exp"] = nil }), "invalid-token"},
		{"client_id not a string", f.token(t, func(cl map[string]any) { cl["client_id"] = 7 }), "invalid-token"},
		{"scope not a string", f.token(t, func(cl map[string]any) { cl["scope"] = []string{"accounts:read"} }), "invalid-token"},
		{"typ JWT when at+jwt is required", sign(t, f.ec, map[string]any{"typ": "JWT"}, claims(now)), "invalid-token"},
		{"no typ", func() string {
			payload, _ := json.Marshal(claims(now))
			hdr := jws.NewHeaders()
			hdr.Set(jws.KeyIDKey, "ec-1")
			s, _ := jws.Sign(payload, jws.WithKey(jwa.ES256, f.ec.private, jws.WithProtectedHeaders(hdr)))
			return string(s)
		}(), "invalid-token"},
		{"application/at+jwt typ", sign(t, f.ec, map[string]any{"typ": "application/at+jwt"}, claims(now)), "allowed"},
		{"jku header", sign(t, f.ec, map[string]any{"jku": "https://evil.test/jwks"}, claims(now)), "invalid-token"},
		{"crit header", sign(t, f.ec, map[string]any{"crit": []string{"exp"}}, claims(now)), "invalid-token"},
		{"trailing garbage", valid + ".garbage", "invalid-token"},
		{"tampered payload", parts[0] + "." + b64(map[string]any{"iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix(), "client_id": "admin", "scope": "users:admin"}) + "." + parts[2], "invalid-token"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "invalid-token"},
		{"not a JWT", "abc.def.ghi", "invalid-token"},
		// One token, one spelling: the same bytes re-spelt with non-zero
		// unused bits, padding, or an impossible length are refused.
		{"signature re-spelt with non-zero unused bits", parts[0] + "." + parts[1] + "." + respell(t, parts[2]), "invalid-token"},
		{"header re-spelt with non-zero unused bits", respellAny(parts[0]) + "." + parts[1] + "." + parts[2], "invalid-token"},
		{"padded signature", valid + "==", "invalid-token"},
		{"padded header (not token68)", parts[0] + "=." + parts[1] + "." + parts[2], "malformed-token"},
		{"signature with an impossible length", valid + "A", "invalid-token"},
		{"token68 but not a JWT", "dGVzdA==", "invalid-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tt.token))
			if r.reason != tt.reason {
				t.Fatalf("got %d %s, want %s", r.status, r.reason, tt.reason)
			}
		})
	}
}

func TestNewTokenIsVerifiedOnceUnderRace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.token(t, nil)
	before := testutil.ToFloat64(f.az.srv.Verifier.metrics.signatureChecks)
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
				t.Errorf("%d %s", r.status, r.reason)
			}
		}()
	}
	wg.Wait()
	if n := testutil.ToFloat64(f.az.srv.Verifier.metrics.signatureChecks) - before; n != 1 {
		t.Fatalf("%v signature verifications for one token, want 1", n)
	}
}

func TestCachedTokenIsNotUsedPastExpiry(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	clock := &fakeClock{now: time.Now()}
	cfg := testConfig(t, jwks.URL)
	cfg.Token.ClockSkew = 0
	az := startAuthz(t, cfg, clock)
	az.waitReady(t)
	cl := claims(clock.Now())
	cl["exp"] = clock.Now().Add(time.Minute).Unix()
	tok := sign(t, ec, nil, cl)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
		t.Fatalf("fresh token: %s", r.reason)
	}
	clock.Advance(2 * time.Minute)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.reason != "token-expired" {
		t.Fatalf("expired cached token: %d %s", r.status, r.reason)
	}
}

func TestRefusedTokenIsRememberedButUnknownKidIsNot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bad := f.token(t, func(cl map[string]any) { cl["iss"] = "https://evil.test" })
	checks := func() float64 { return testutil.ToFloat64(f.az.srv.Verifier.metrics.signatureChecks) }
	before := checks()
	for i := 0; i < 5; i++ {
		if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(bad)); r.reason != "invalid-token" {
			t.Fatalf("bad token: %s", r.reason)
		}
	}
	if n := checks() - before; n != 1 {
		t.Fatalf("a replayed bad token was verified %v times, want 1", n)
	}
	// A token whose kid is not published yet is refused, then accepted once
	// the JWKS has the key: the refusal was not remembered.
	next := newSigningKey(t, "next", jwa.ES256)
	tok := sign(t, next, nil, claims(time.Now()))
	if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); r.reason != "invalid-token" {
		t.Fatalf("unpublished kid: %s", r.reason)
	}
	f.jwks.setKeys(t, f.rsa, f.ec, f.ed, next)
	if r := f.az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
		t.Fatalf("after publication: %d %s", r.status, r.reason)
	}
}

func TestJSONMembersDecodeStrictly(t *testing.T) {
	t.Parallel()
	names := []string{"exp", "iss"}
	read := func(raw string) (iss string, exp float64, err error) {
		err = jsonMembers([]byte(raw), names, func(name string, dec *jsontext.Decoder) (err error) {
			if name == "iss" {
				iss, err = readString(dec)
			} else {
				exp, err = readNumber(dec)
			}
			return err
		})
		return iss, exp, err
	}
	for raw, want := range map[string]string{`"plain"`: "plain", `"https:\/\/issuer.test"`: "https://issuer.test", `"caf\u00e9"`: "café", `""`: ""} {
		if got, _, err := read(`{"iss":` + raw + `}`); err != nil || got != want {
			t.Errorf("iss %s = %q, %v; want %q", raw, got, err, want)
		}
	}
	if iss, exp, err := read(`{"\u0065xp":1.5, "other":{"iss":"nested"}, "i\u0073s":"x"}`); err != nil || exp != 1.5 || iss != "x" {
		t.Errorf("escaped names or a skipped member: %q %v %v", iss, exp, err)
	}
	for _, raw := range []string{
		`{"iss":null}`, `{"iss":1}`, `{"iss":["a"]}`, `{"iss":{}}`, `{"iss":true}`, `{"exp":null}`, `{"exp":"1"}`, `{"exp":[1]}`,
		`null`, `[]`, `"x"`, ``, `{`, `{"exp":1`, `{"exp":1}{}`, `{"exp":1} x`,
		`{"exp":1,"exp":2}`, `{"exp":1,"\u0065xp":2}`, `{"other":1,"other":2}`, // a name given twice
		"{\"iss\":\"\xff\"}", "{\"\xff\":1}", // invalid UTF-8
	} {
		if iss, exp, err := read(raw); err == nil {
			t.Errorf("%q read as iss %q, exp %v; want an error", raw, iss, exp)
		}
	}
	for raw, want := range map[string]float64{`4102444800`: 4102444800, `0`: 0, `-1`: -1, `1e3`: 1000, `1900000600.5`: 1900000600.5, `1234567890123456789`: 1234567890123456789} {
		if _, exp, err := read(`{"exp":` + raw + `}`); err != nil || exp != want {
			t.Errorf("exp %s = %v, %v; want %v", raw, exp, err, want)
		}
	}
	if iss, exp, err := read(`{"EXP":1,"Iss":"x"}`); err != nil || exp != 0 || iss != "" {
		t.Errorf("member names do not match exactly: %q %v %v", iss, exp, err)
	}
	for raw, want := range map[string][]string{`{"aud":"a"}`: {"a"}, `{"aud":["a","b"]}`: {"a", "b"}, `{"aud":[]}`: nil} {
		var got []string
		err := jsonMembers([]byte(raw), []string{"aud"}, func(_ string, dec *jsontext.Decoder) (err error) { got, err = readStrings(dec); return err })
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{`{"aud":null}`, `{"aud":1}`, `{"aud":["a",1]}`, `{"aud":["a",null]}`, `{"aud":{"a":1}}`} {
		err := jsonMembers([]byte(raw), []string{"aud"}, func(_ string, dec *jsontext.Decoder) error { _, err := readStrings(dec); return err })
		if err == nil {
			t.Errorf("%s read as an audience", raw)
		}
	}
}
