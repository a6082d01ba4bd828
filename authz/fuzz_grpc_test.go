package authz

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"google.golang.org/protobuf/proto"
)

// FuzzCheckRequest feeds arbitrary bytes, decoded as a CheckRequest, through
// the gRPC adapter and the real decision: every input must get a
// CheckResponse (never a gRPC error or panic), and only a public route or
// the one valid token may be allowed.
func FuzzCheckRequest(f *testing.F) {
	ec := newSigningKey(f, "ec-1", jwa.ES256)
	fx := newDeciderFixture(f, []string{"ES256"}, ec)
	svc := NewService(fx.decider, ServiceConfig{CheckTimeout: time.Second}, SystemClock{}, discard(), fx.metrics)
	valid := sign(f, ec, nil, claims(time.Now().Add(time.Hour)))

	seed := func(method, path string, headers [][2]string, raw bool) {
		b, _ := proto.Marshal(NewCheckRequest(method, path, "api", headers, raw))
		f.Add(b)
	}
	seed("GET", "/v1/accounts/42", [][2]string{{"authorization", "Bearer " + valid}, {"x-on-behalf-of", "user 42"}}, false)
	seed("POST", "/v1/accounts", [][2]string{{"authorization", "Bearer " + valid}, {"authorization", "Bearer x"}}, true)
	seed("GET", "/healthz", nil, false)
	seed("GET", "/v1/..%2fadmin", [][2]string{{":path", "/v1/accounts"}}, true)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			return
		}
		resp, err := svc.Check(context.Background(), &req)
		if err != nil || resp == nil {
			t.Fatalf("Check returned %v, %v", resp, err)
		}
		if resp.GetOkResponse() == nil {
			if resp.GetDeniedResponse().GetStatus().GetCode() < 400 {
				t.Fatalf("denial without an HTTP status: %v", resp)
			}
			return
		}
		reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
		if reason == string(ReasonPublic) {
			return
		}
		var auth string
		var r Request
		requestFromCheck(&req, &r)
		auth = r.Authorization.First
		if !strings.HasSuffix(auth, valid) {
			t.Fatalf("allowed (%s) without the valid token", reason)
		}
	})
}

// FuzzVerifyToken gives arbitrary strings to the real verifier: none may
// verify except the one valid token, and none may panic.
func FuzzVerifyToken(f *testing.F) {
	ec := newSigningKey(f, "ec-1", jwa.ES256)
	rsaKey := newSigningKey(f, "rsa-1", jwa.RS256)
	v := newDeciderFixture(f, []string{"ES256", "RS256"}, ec, rsaKey).verifier
	valid := sign(f, ec, nil, claims(time.Now().Add(time.Hour)))
	f.Add(valid)
	f.Add(sign(f, rsaKey, map[string]any{"typ": "JWT"}, claims(time.Now())))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0Iiwia2lkIjoiZWMtMSJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0In0.")
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6InJzYS0xIiwidHlwIjoiYXQrand0In0.e30.c2ln")
	f.Add(valid + ".extra")
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := v.Verify(context.Background(), token)
		if err == nil && token != valid {
			t.Fatalf("verified a token that is not the valid one: %q (%+v)", token, claims)
		}
	})
}
