package authz

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer x", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer a, Bearer b", "Bearer a==", "Bearer =a", "Bearer\ta", "BEARER  abc", "Bearer a\r\nx: y"} {
		f.Add(s, 1)
	}
	f.Add("Bearer abc", 2)
	f.Fuzz(func(t *testing.T, v string, count int) {
		h := HeaderValues{First: v, Count: count % 4}
		tok, err := parseBearer(h)
		if err != nil {
			return
		}
		if h.Count != 1 || tok == "" || !isToken68(tok) || len(tok) > maxTokenLength || !strings.HasSuffix(v, tok) {
			t.Fatalf("accepted %q from %q (count %d)", tok, v, h.Count)
		}
	})
}

func FuzzParseOnBehalfOf(f *testing.F) {
	for _, s := range []string{"user 42", "user", "user  42", "User 42", "user 4 2", "user 42\r\n", "user a@b.c:d-1", "user -1", "user " + strings.Repeat("9", 200), "user 1,user 2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, err := ParseOnBehalfOf(v)
		if err != nil {
			return
		}
		if "user "+id != v || len(id) > maxUserIDLength || strings.ContainsAny(id, " \t\r\n,") {
			t.Fatalf("accepted %q from %q", id, v)
		}
	})
}

func FuzzParseUserFile(f *testing.F) {
	f.Add([]byte("users:\n  - {id: \"42\", status: active, tenant_id: acme}\n"))
	f.Add([]byte(`{"users":[{"id":"1","status":"blocked"}]}`))
	f.Add([]byte("users:\n  - {id: \"user 1\", status: active}\n  - {id: x, status: frozen}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseUserFile("fuzz.yaml", data)
		if err != nil {
			return
		}
		for id, u := range users {
			if _, err := ParseOnBehalfOf("user " + id); err != nil || (u.Status != UserActive && u.Status != UserBlocked) {
				t.Fatalf("accepted bad user %+v", u)
			}
		}
	})
}

// FuzzDecide drives the real decision (real verifier, sample policy, sample
// users) with arbitrary request attributes. Only one valid token exists, so
// anything else allowed must be a public route; nothing may panic.
func FuzzDecide(f *testing.F) {
	ec := newSigningKey(f, "ec-1", jwa.ES256)
	d := newDeciderFixture(f, []string{"ES256", "RS256", "EdDSA"}, ec).decider
	valid := sign(f, ec, nil, claims(time.Now().Add(time.Hour)))

	f.Add("GET", "/v1/accounts/42", "Bearer "+valid, "user 42")
	f.Add("POST", "/v1/accounts", "Bearer "+valid, "user 43")
	f.Add("GET", "/healthz", "", "")
	f.Add("GET", "/v1/../admin", "Bearer "+valid, "")
	f.Add("DELETE", "/v1/accounts/%2e%2e", "Bearer "+valid+"x", "user  1")
	f.Add("GET", "/v1/accounts/42", "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "")
	f.Fuzz(func(t *testing.T, method, path, authorization, onBehalfOf string) {
		req := Request{Method: method, Path: path}
		if authorization != "" {
			req.Authorization.Add(authorization)
		}
		if onBehalfOf != "" {
			req.OnBehalfOf.Add(onBehalfOf)
		}
		dec := d.Decide(context.Background(), &req)
		if !dec.Allowed() {
			if dec.Denial == nil || dec.Denial.Status < 400 {
				t.Fatalf("denial without a response: %+v", dec)
			}
			return
		}
		if dec.Reason == ReasonPublic {
			if dec.Route == nil || !dec.Route.Public {
				t.Fatal("public allow without a public route")
			}
			return
		}
		if !strings.HasSuffix(authorization, valid) {
			t.Fatalf("allowed with a token that is not the valid one: %q", authorization)
		}
	})
}

// FuzzTokenClaims feeds the claims decoder (run only after a valid
// signature, so FuzzVerifyToken rarely reaches it): whatever it accepts
// names the trusted issuer, this API's audience, a client, and an expiry
// still ahead.
func FuzzTokenClaims(f *testing.F) {
	now := time.Unix(1_900_000_000, 0)
	for _, s := range []string{
		`{"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":1900000600,"client_id":"app","scope":"a b","tenant_id":"acme","jti":"j","iat":1900000000}`,
		`{"iss":"` + testIssuer + `","aud":["x","` + testAudience + `"],"exp":1900000600.5,"client_id":"app"}`,
		`{"iss":"` + testIssuer + `","aud":"` + testAudience + `","EXP":1900000600,"client_id":"app"}`,
		`{"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":"1900000600","client_id":"app"}`,
		`{"iss":null,"aud":null,"exp":null}`, `[]`, `null`, `{"iss":"\u0068ttps://issuer.test"}`,
	} {
		f.Add([]byte(s))
	}
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"ES256"}, ClockSkew: time.Minute, CacheMaxTokens: 10}, nil, fixedClock{now}, newMetrics(nil))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := v.claimsOf(payload)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("refusal is not a TokenError: %v", err)
			}
			return
		}
		if c.ClientID == "" || !c.Expiry.Add(time.Minute).After(now) {
			t.Fatalf("accepted claims without a client or already expired: %+v from %s", c, payload)
		}
		var raw map[string]any
		if json.Unmarshal(payload, &raw) != nil || raw["iss"] != testIssuer {
			t.Fatalf("accepted claims whose iss is not the trusted issuer: %s", payload)
		}
	})
}

// FuzzJOSEHeader feeds the protected header decoder: whatever it accepts
// carries no key of its own and asks for no extension.
func FuzzJOSEHeader(f *testing.F) {
	for _, s := range []string{
		`{"alg":"ES256","typ":"at+jwt","kid":"ec-1"}`, `{"alg":"none"}`, `{"alg":"ES256","jku":"https://evil.test"}`,
		`{"alg":"ES256","JKU":"https://evil.test","kid":"k"}`, `{"alg":"ES256","crit":[]}`, `{"alg":"ES256","x5c":[]}`, `{"kid":null}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := parseHeader(raw)
		if err != nil {
			return
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			t.Fatalf("accepted a header that is not a JSON object: %q", raw)
		}
		for _, name := range []string{"jku", "jwk", "x5u", "x5c", "crit"} {
			if _, ok := members[name]; ok {
				t.Fatalf("accepted a header with %s: %q", name, raw)
			}
		}
		_ = h
	})
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
