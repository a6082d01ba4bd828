package authz

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/policy"
)

// wireCheckCases are CheckRequests in the shapes Envoy sends and in the
// shapes protobuf allows but Envoy does not send, each as wire bytes.
func wireCheckCases(t testing.TB) map[string][]byte {
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	browser := [][2]string{
		{":authority", "api.example.com"}, {":method", "GET"}, {":path", "/v1/accounts/42?x=1"}, {":scheme", "https"},
		{"authorization", "Bearer a.b.c"}, {"x-on-behalf-of", "user 42"}, {"x-request-id", "req-1"},
		{"user-agent", "client/1.0"}, {"accept", "application/json"}, {"x_auth_user_id", "7"}, {"X_On_Behalf_Of", "user 9"},
	}
	// http wraps HttpRequest bytes in the messages around them.
	http := func(fields ...[]byte) []byte {
		h := slices.Concat(fields...)
		req := protowire.AppendBytes(protowire.AppendTag(nil, fieldRequestHTTP, protowire.BytesType), h)
		attrs := protowire.AppendBytes(protowire.AppendTag(nil, fieldContextRequest, protowire.BytesType), req)
		return protowire.AppendBytes(protowire.AppendTag(nil, fieldCheckAttributes, protowire.BytesType), attrs)
	}
	str := func(num protowire.Number, v string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	entry := func(k, v string) []byte {
		return str(fieldHTTPHeaders, string(slices.Concat(str(fieldMapKey, k), str(fieldMapValue, v))))
	}
	listed := func(hvs ...*corev3.HeaderValue) []byte {
		return str(fieldHTTPHeaderMap, string(marshal(&corev3.HeaderMap{Headers: hvs})))
	}
	return map[string][]byte{
		"headers map":          marshal(NewCheckRequest("GET", "/v1/accounts/42", "api.example.com", browser, false)),
		"header_map raw":       marshal(NewCheckRequest("POST", "/v1/accounts/42", "api.example.com", browser, true)),
		"no http":              marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}}),
		"empty":                nil,
		"empty http":           http(),
		"peers and extensions": marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Principal: "spiffe://a"}, ContextExtensions: map[string]string{"k": "v"}, Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/"}}}}),
		"pseudo-headers only":  marshal(NewCheckRequest("", "", "api.example.com", [][2]string{{":method", "DELETE"}, {":path", "/v1/x"}}, false)),
		"listed pseudo-headers": http(listed(&corev3.HeaderValue{Key: ":method", Value: ""}, &corev3.HeaderValue{Key: ":METHOD", Value: "PUT"},
			&corev3.HeaderValue{Key: ":path", RawValue: []byte("/raw")}, &corev3.HeaderValue{Key: ":Path", Value: "/second"})),
		"two authorizations listed": http(listed(&corev3.HeaderValue{Key: "Authorization", Value: "Bearer one"}, &corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer two")})),
		"listed and mapped":         http(listed(&corev3.HeaderValue{Key: "x-request-id", Value: ""}), entry("authorization", "Bearer m"), entry("x-request-id", "mapped")),
		"value beats raw_value":     http(listed(&corev3.HeaderValue{Key: "x-on-behalf-of", Value: "user 1", RawValue: []byte("user 2")})),
		"map key repeated":          http(entry("authorization", "Bearer first"), entry("authorization", "Bearer last"), entry("a_b", "1"), entry("A_B", "2")),
		"map entry without value":   http(str(fieldHTTPHeaders, string(str(fieldMapKey, "authorization")))),
		"scalar repeated":           http(str(fieldHTTPPath, "/first"), str(fieldHTTPPath, "/last"), str(fieldHTTPMethod, "GET")),
		"message repeated": slices.Concat(http(str(fieldHTTPPath, "/a"), entry("x-request-id", "1")),
			http(str(fieldHTTPMethod, "POST"), listed(&corev3.HeaderValue{Key: "authorization", Value: "Bearer z"}))),
		"path as varint":        http(protowire.AppendVarint(protowire.AppendTag(nil, fieldHTTPPath, protowire.VarintType), 7), str(fieldHTTPMethod, "GET")),
		"attributes as varint":  protowire.AppendVarint(protowire.AppendTag(nil, fieldCheckAttributes, protowire.VarintType), 0),
		"unknown fields":        http(str(99, "x"), protowire.AppendFixed32(protowire.AppendTag(nil, 98, protowire.Fixed32Type), 1), str(fieldHTTPPath, "/u")),
		"invalid UTF-8 path":    http(str(fieldHTTPPath, "/\xff")),
		"invalid UTF-8 host":    http(str(fieldHTTPHost, "\xc0")),
		"invalid UTF-8 raw":     http(listed(&corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer \xff")})),
		"folded non-ASCII name": http(listed(&corev3.HeaderValue{Key: "AUTHORİZATİON", Value: "Bearer t"}, &corev3.HeaderValue{Key: "x-reque\u017ft-id", Value: "s"})),
		"truncated":             marshal(NewCheckRequest("GET", "/v1/accounts/42", "h", browser, false))[:40],
		"trace headers mapped":  http(entry("traceparent", "00-a-b-01"), entry("TraceParent", "upper"), entry("x-b3-traceid", "1"), entry("x-b3-traceid", "2"), entry("baggage", "k=v")),
		"trace headers listed": http(listed(&corev3.HeaderValue{Key: "TraceParent", Value: "00-c-d-01"}, &corev3.HeaderValue{Key: "traceparent", Value: "second"},
			&corev3.HeaderValue{Key: "b3", RawValue: []byte("1-2-1")}, &corev3.HeaderValue{Key: "X-B3-SPANİD", Value: "folded"}), entry("traceparent", "mapped wins")),
	}
}

// TestWireCheckRequestMatchesDecoded holds the Check handler's own decoder
// to the generated one: whatever protobuf accepts reads as the same Request.
func TestWireCheckRequestMatchesDecoded(t *testing.T) {
	t.Parallel()
	for name, b := range wireCheckCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			compareWireCheck(t, b)
		})
	}
}

func FuzzWireCheckRequest(f *testing.F) {
	for _, b := range wireCheckCases(f) {
		f.Add(b)
	}
	f.Fuzz(compareWireCheck)
}

// compareWireCheck checks that b reads the same through decodeCheckRequest
// as through proto.Unmarshal and requestFromCheck, when protobuf accepts it.
func compareWireCheck(t *testing.T, b []byte) {
	var w wireCheck
	var fields []string
	for _, f := range telemetry.Propagator().Fields() {
		fields = append(fields, strings.ToLower(f))
	}
	w.trace.prepare(fields)
	werr := decodeCheckRequest(b, &w)
	var msg authv3.CheckRequest
	if perr := proto.Unmarshal(b, &msg); perr != nil {
		return // Laxer is allowed in what the decision does not read.
	}
	if werr != nil {
		t.Fatalf("protobuf reads it, the wire decoder refuses it: %v", werr)
	}
	var want Request
	wantHTTP := requestFromCheck(&msg, &want)
	if w.hasHTTP != wantHTTP {
		t.Fatalf("HTTP attributes: wire %v, decoded %v", w.hasHTTP, wantHTTP)
	}
	for _, f := range fields {
		if got, want := w.trace.Get(f), (checkCarrier{&msg}).Get(f); got != want {
			t.Errorf("trace header %s: wire %q, decoded %q", f, got, want)
		}
	}
	got := w.request
	// The order of names from the headers map is the map's, which is
	// random: compare the names as a set.
	if g, w := underscoredSet(got.Underscored), underscoredSet(want.Underscored); g != w {
		t.Errorf("underscored names: wire %s, decoded %s", g, w)
	}
	got.Underscored, want.Underscored = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("wire reads\n%+v\ndecoded reads\n%+v", got, want)
	}
}

func underscoredSet(names []string) string {
	lower := make([]string, len(names))
	for i, n := range names {
		lower[i] = strings.ToLower(n)
	}
	slices.Sort(lower)
	return fmt.Sprint(slices.Compact(lower))
}

// BenchmarkWireCheckRequest reads the CheckRequest of
// BenchmarkRequestFromCheck from its wire bytes, as authz's server does;
// BenchmarkRequestFromCheckUnmarshal does it with the generated decoder, as
// gRPC's generated handler would.
func BenchmarkWireCheckRequest(b *testing.B) {
	wire := benchCheckRequestBytes(b)
	b.ReportAllocs()
	for b.Loop() {
		var w wireCheck
		if err := decodeCheckRequest(wire, &w); err != nil || !w.hasHTTP {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestFromCheckUnmarshal(b *testing.B) {
	wire := benchCheckRequestBytes(b)
	b.ReportAllocs()
	for b.Loop() {
		var msg authv3.CheckRequest
		if err := proto.Unmarshal(wire, &msg); err != nil {
			b.Fatal(err)
		}
		var r Request
		if !requestFromCheck(&msg, &r) {
			b.Fatal("no HTTP attributes")
		}
	}
}

func benchCheckRequestBytes(b *testing.B) []byte {
	headers := [][2]string{{":authority", "api.example.com"}, {":method", "GET"}, {":path", "/v1/accounts/42"}, {":scheme", "https"},
		{"authorization", "Bearer x.y.z"}, {"x-request-id", "req-1"}, {"user-agent", "client/1.0"}, {"accept", "application/json"},
		{"accept-encoding", "gzip, deflate, br"}, {"accept-language", "en-GB,en;q=0.9"}, {"x-forwarded-for", "203.0.113.7"},
		{"x-forwarded-proto", "https"}, {"x-envoy-expected-rq-timeout-ms", "1000"}, {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	wire, err := proto.Marshal(NewCheckRequest("GET", "/v1/accounts/42", "api.example.com", headers, false))
	if err != nil {
		b.Fatal(err)
	}
	return wire
}

// TestWireCheckRequestRefuses: what protobuf refuses in the HTTP attributes,
// the wire decoder refuses too (gRPC answers with an error, and Envoy
// denies).
func TestWireCheckRequestRefuses(t *testing.T) {
	t.Parallel()
	cases := wireCheckCases(t)
	for _, name := range []string{"invalid UTF-8 path", "invalid UTF-8 host", "truncated"} {
		var w wireCheck
		if err := decodeCheckRequest(cases[name], &w); err == nil {
			t.Errorf("%s: read as %+v, want an error", name, w.request)
		}
		if err := proto.Unmarshal(cases[name], &authv3.CheckRequest{}); err == nil {
			t.Errorf("%s: protobuf reads it; the case is not one protobuf refuses", name)
		}
	}
}

// rawCodec sends a request's bytes as they are, so a test can put on the
// wire what a generated client would refuse to marshal.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// TestCheckReadsTheWire sends CheckRequests as bytes to authz's gRPC
// server: what Envoy may send is decided as the decoded message would be,
// and what protobuf refuses is a gRPC error, which Envoy denies.
func TestCheckReadsTheWire(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	az := startAuthz(t, testConfig(t, f.jwks.URL), SystemClock{})
	az.waitReady(t)
	cases := wireCheckCases(t)
	send := func(b []byte) (*authv3.CheckResponse, error) {
		var resp authv3.CheckResponse
		err := az.conn.Invoke(context.Background(), authv3.Authorization_Check_FullMethodName, b, &resp, grpc.ForceCodecV2(rawCodec{}))
		return &resp, err
	}
	tok := f.token(t, nil)
	for _, tc := range []struct {
		name   string
		wire   []byte
		status int32
		reason Reason
	}{
		{"no HTTP attributes", cases["no http"], 400, ReasonInvalidPath},
		{"two Authorization headers listed", mustMarshal(t, NewCheckRequest("GET", "/v1/accounts/42", "api.example.com",
			[][2]string{{"authorization", "Bearer " + tok}, {"Authorization", "Bearer " + tok}}, true)), 401, ReasonMalformedToken},
		{"pseudo-headers in header_map only", cases["listed pseudo-headers"], 401, ReasonMissingToken},
		{"token read from raw_value", mustMarshal(t, NewCheckRequest("GET", "/v1/accounts/42", "api.example.com",
			[][2]string{{":method", "GET"}, {":path", "/v1/accounts/42"}, {"authorization", "Bearer " + tok}}, true)), 0, ReasonAllowed},
	} {
		resp, err := send(tc.wire)
		if err != nil {
			t.Errorf("%s: gRPC error %v", tc.name, err)
			continue
		}
		got, status := Reason(resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()), int32(resp.GetDeniedResponse().GetStatus().GetCode())
		if got != tc.reason || status != tc.status {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, got, tc.status, tc.reason)
		}
	}
	for _, name := range []string{"invalid UTF-8 path", "truncated"} {
		resp, err := send(cases[name])
		if status.Code(err) != codes.Internal {
			t.Errorf("%s: answered %v, %v; want gRPC error Internal (Envoy denies)", name, resp, err)
		}
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameAnswerDecoded checks that authz's gRPC server, which reads the
// request's wire bytes and encodes its answer itself, answers a request as
// Service.Check does for the decoded message.
func (ta *testAuthz) sameAnswerDecoded(t *testing.T, method, path string, raw bool, headers ...[2]string) {
	t.Helper()
	all := append([][2]string{{":authority", "api.example.com"}, {":method", method}, {":path", path}, {":scheme", "https"}}, headers...)
	req := NewCheckRequest(method, path, "api.example.com", all, raw)
	overWire, err := ta.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := ta.srv.Service.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(overWire, decoded) {
		t.Errorf("over the wire:\n%v\ndecoded:\n%v", overWire, decoded)
	}
}

// TestEncodedResponseMatches compares the encoded answer to every denial,
// with everything its metadata may say, to the CheckResponse message
// response builds. (Allows are compared end to end in TestDecisionTable.)
func TestEncodedResponseMatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc := f.az.srv.Service
	route := &policy.Route{Name: "accounts.read"}
	for _, reason := range reasonsWithDenials() {
		for _, dec := range []Decision{
			{Reason: reason, Denial: svc.decider.denials.get(reason)},
			{Reason: reason, Denial: svc.decider.denials.get(reason), Route: route, ClientID: "c-1", UserID: "42", Cause: errors.New("jti j-1")},
			{Reason: reason}, // no denial: answered as unavailable, never allowed
		} {
			enc := svc.encodeResponse(&dec)
			var got authv3.CheckResponse
			if err := proto.Unmarshal(enc.buf.ReadOnlyData(), &got); err != nil {
				t.Fatalf("%s: %v", reason, err)
			}
			enc.buf.Free()
			if want := svc.response(&dec); !proto.Equal(&got, want) {
				t.Errorf("%s: encoded\n%v\nbuilt\n%v", reason, &got, want)
			}
		}
	}
}
