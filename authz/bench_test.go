package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/portcullis/portcullis/policy"
	"github.com/portcullis/portcullis/revocation"
)

// benchDecider is a Decider on the sample policy and users with a verified
// token, as on the hot path.
func benchDecider(b *testing.B) (*Decider, string) {
	ec := newSigningKey(b, "ec-1", jwa.ES256)
	return newDeciderFixture(b, []string{"ES256"}, ec).decider, sign(b, ec, nil, claims(time.Now()))
}

// hotRequest is the hot path's request: a cached token acting for a
// cached user. It checks that d allows it (which caches both).
func hotRequest(b *testing.B, d *Decider, tok string) *Request {
	req := &Request{Method: "GET", Path: "/v1/accounts/42?expand=owner", RequestID: "r-1"}
	req.Authorization.Add("Bearer " + tok)
	req.OnBehalfOf.Add("user 42")
	if dec := d.Decide(context.Background(), req); !dec.Allowed() {
		b.Fatalf("not allowed: %s %v", dec.Reason, dec.Cause)
	}
	return req
}

// BenchmarkDecide is the decision alone for a cached token, on-behalf-of
// and a cached user: the cost authz adds per request beyond gRPC.
func BenchmarkDecide(b *testing.B) {
	d, tok := benchDecider(b)
	req := hotRequest(b, d, tok)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if dec := d.Decide(ctx, req); !dec.Allowed() {
				b.Fatal(dec.Reason)
			}
		}
	})
}

type staticRevocations struct{ set *revocation.Set }

func (s staticRevocations) Current() *revocation.Set { return s.set }

// BenchmarkDecideRevocations is BenchmarkDecide without revocations and
// with a live set of 10,000 (none of which covers the token): what the
// revocation step adds to the hot path, measured in one run.
func BenchmarkDecideRevocations(b *testing.B) {
	now := time.Now()
	feed := revocation.Feed{Version: 10_000, Full: true}
	for k := range 10_000 {
		e := revocation.Entry{Seq: int64(k + 1), Kind: revocation.KindToken, Subject: fmt.Sprintf("revoked-jti-%d", k), Expires: now.Add(time.Hour).Unix()}
		if k%2 == 1 {
			e.Kind, e.Subject, e.Before = revocation.KindClient, fmt.Sprintf("revoked-client-%d", k), now.Unix()+60
		}
		feed.Entries = append(feed.Entries, e)
	}
	set := revocation.Empty().Apply(feed)
	b.Run("none", func(b *testing.B) { benchHotPath(b, func(*DeciderConfig) {}) })
	b.Run("10000", func(b *testing.B) { benchHotPath(b, func(c *DeciderConfig) { c.Revocations = staticRevocations{set} }) })
}

// benchHotPath measures the hot path's decision with the Decider's
// configuration changed by configure.
func benchHotPath(b *testing.B, configure func(*DeciderConfig)) {
	d, tok := benchDecider(b)
	configure(&d.cfg)
	req := hotRequest(b, d, tok)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d.Decide(ctx, req)
	}
}

// BenchmarkCheckGRPC is a full Check over loopback gRPC with a real client.
func BenchmarkCheckGRPC(b *testing.B) {
	ec := newSigningKey(b, "ec-1", jwa.ES256)
	jwks := newJWKSServer(b, ec)
	cfg := testConfig(b, jwks.URL)
	az := startAuthz(b, cfg, SystemClock{})
	az.waitReady(b)
	tok := sign(b, ec, nil, claims(time.Now()))
	req := NewCheckRequest("GET", "/v1/accounts/42", "api.example.com", [][2]string{
		{":authority", "api.example.com"}, {":method", "GET"}, {":path", "/v1/accounts/42"}, {":scheme", "https"},
		{"authorization", "Bearer " + tok}, {"x-on-behalf-of", "user 42"}, {"x-request-id", "bench"},
		{"user-agent", "bench/1.0"}, {"accept", "application/json"},
	}, false)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := az.client.Check(ctx, req)
			if err != nil || resp.GetOkResponse() == nil {
				b.Fatalf("%v %v", err, resp.GetStatus())
			}
		}
	})
}

// BenchmarkRequestFromCheck reads a CheckRequest shaped as Envoy sends one
// (pseudo-headers and a browser's worth of headers): the per-request cost
// of the proto adapter, including the scan for underscore spellings of
// trusted headers.
func BenchmarkRequestFromCheck(b *testing.B) {
	headers := [][2]string{{":authority", "api.example.com"}, {":method", "GET"}, {":path", "/v1/accounts/42"}, {":scheme", "https"},
		{"authorization", "Bearer x.y.z"}, {"x-request-id", "req-1"}, {"user-agent", "client/1.0"}, {"accept", "application/json"},
		{"accept-encoding", "gzip"}, {"x-forwarded-for", "203.0.113.9"}, {"x-forwarded-proto", "https"}, {"x-envoy-external-address", "203.0.113.9"},
		{"content-type", "application/json"}, {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {"x-on-behalf-of", "user 42"}}
	for _, raw := range []bool{false, true} {
		req := NewCheckRequest("GET", "/v1/accounts/42", "api.example.com", headers, raw)
		b.Run(map[bool]string{false: "headers", true: "header_map"}[raw], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r Request
				requestFromCheck(req, &r)
			}
		})
	}
}

// BenchmarkDecideShadow is BenchmarkDecide without and with a shadow
// policy (one that disagrees on this request): the cost of shadow mode.
func BenchmarkDecideShadow(b *testing.B) {
	shadow, err := policy.Load(shadowPolicy(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("none", func(b *testing.B) { benchHotPath(b, func(*DeciderConfig) {}) })
	b.Run("shadow", func(b *testing.B) { benchHotPath(b, func(c *DeciderConfig) { c.Shadow = staticPolicy{shadow} }) })
}

// BenchmarkVerifyNewToken is the miss path: every verification a token
// never seen, as when a client has just fetched one. Beside it, the bare
// signature check of the same algorithm over decoded input (the part no
// verifier can avoid), so the ratio is measured in one run.
func BenchmarkVerifyNewToken(b *testing.B) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256, jwa.EdDSA} {
		key := newSigningKey(b, "k-1", alg)
		f := newDeciderFixture(b, []string{alg.String()}, key)
		const n = 4096
		tokens := make([]string, n)
		now := time.Now()
		for i := range tokens {
			cl := claims(now)
			cl["jti"] = fmt.Sprint("jti-", i)
			tokens[i] = sign(b, key, nil, cl)
		}
		b.Run(alg.String(), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// Tokens come back after n: far more than the cache keeps warm
				// between rounds is not needed, a fresh verifier per round is.
				if i%n == 0 {
					b.StopTimer()
					f.verifier.Close()
					v, err := NewVerifier(f.verifier.cfg, f.verifier.keys, SystemClock{}, f.metrics)
					if err != nil {
						b.Fatal(err)
					}
					f.verifier = v
					b.StartTimer()
				}
				if _, err := f.verifier.Verify(ctx, tokens[i%n]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(alg.String()+"-signature-only", func(b *testing.B) {
			type signed struct{ input, sig []byte }
			inputs := make([]signed, n)
			for i, tok := range tokens {
				dot := strings.LastIndexByte(tok, '.')
				sig, err := decodeB64(tok[dot+1:])
				if err != nil {
					b.Fatal(err)
				}
				inputs[i] = signed{[]byte(tok[:dot]), sig}
			}
			var raw any
			if err := key.public(b).Raw(&raw); err != nil {
				b.Fatal(err)
			}
			verifier, err := jws.NewVerifier(alg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				in := inputs[i%n]
				if err := verifier.Verify(in.input, in.sig, raw); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkHTTPHandler is the HTTP adapter's hot path (mode forward-auth,
// a cached token acting for a cached user) in process, beside a handler
// that answers every request 200 with an allow's headers: what the adapter
// and the decision add to a request net/http has already parsed. The
// request's context is cancellable, as net/http's are.
func BenchmarkHTTPHandler(b *testing.B) {
	a := newHTTPAuthz(b, HTTPModeForwardAuth, nil)
	tok := sign(b, a.ec, nil, claims(time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	for name, v := range map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/v1/accounts/42?expand=owner",
		"Authorization": "Bearer " + tok, "X-On-Behalf-Of": "user 42", "X-Request-Id": "bench", "User-Agent": "bench/1.0", "Accept": "application/json"} {
		req.Header.Set(name, v)
	}
	floor := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["X-Auth-Client-Id"] = []string{"client"}
		h["X-Auth-Scopes"] = []string{"a b"}
		h["Cache-Control"] = []string{"no-store"}
		w.WriteHeader(http.StatusOK)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"floor", floor}, {"authz", a.az.srv.httpHandler}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardResponse{header: http.Header{}}
			bc.h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// discardResponse is a ResponseWriter that keeps the status only.
type discardResponse struct {
	header http.Header
	status int
}

func (w *discardResponse) Header() http.Header         { return w.header }
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardResponse) WriteHeader(status int)      { w.status = status }
