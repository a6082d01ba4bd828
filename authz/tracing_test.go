package authz

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portcullis/portcullis/internal/telemetry"
)

// tracedAuthz is the Check service with tracing into an in-memory
// exporter, over real gRPC on loopback.
type tracedAuthz struct {
	client   authv3.AuthorizationClient
	exporter *tracetest.InMemoryExporter
	key      signingKey
	fixture  *fixture
}

func newTracedAuthz(t *testing.T) *tracedAuthz {
	t.Helper()
	key := newSigningKey(t, "ec-1", jwa.ES256)
	f := newDeciderFixture(t, []string{"ES256"}, key)
	exporter := tracetest.NewInMemoryExporter()
	provider := telemetry.NewProvider(sdktrace.NewSimpleSpanProcessor(exporter), 0, nil)
	t.Cleanup(func() { provider.Shutdown(context.Background()) })
	svc := NewService(f.decider, ServiceConfig{Tracer: provider.Tracer(tracerName), Propagator: telemetry.Propagator()}, SystemClock{}, discard(), f.metrics)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newGRPCServer(svc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &tracedAuthz{client: authv3.NewAuthorizationClient(conn), exporter: exporter, key: key, fixture: f}
}

func (a *tracedAuthz) check(t *testing.T, headers ...[2]string) {
	t.Helper()
	a.checkAs(t, false, headers...)
}

// checkAs sends the headers in header_map when raw, as Envoy does with
// encode_raw_headers.
func (a *tracedAuthz) checkAs(t *testing.T, raw bool, headers ...[2]string) {
	t.Helper()
	all := append([][2]string{{":method", "GET"}, {":path", "/v1/accounts/42"}}, headers...)
	if _, err := a.client.Check(context.Background(), NewCheckRequest("GET", "/v1/accounts/42", "api.example.com", all, raw)); err != nil {
		t.Fatal(err)
	}
}

// spans returns the exported spans by name, and forgets them.
func (a *tracedAuthz) spans() map[string]tracetest.SpanStub {
	out := map[string]tracetest.SpanStub{}
	for _, s := range a.exporter.GetSpans() {
		out[s.Name] = s
	}
	a.exporter.Reset()
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

const (
	envoyTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	envoySpanID  = "00f067aa0ba902b7"
)

func TestTracingContinuesEnvoysTrace(t *testing.T) {
	t.Parallel()
	a := newTracedAuthz(t)
	token := sign(t, a.key, nil, claims(time.Now()))
	sampled := [2]string{"traceparent", "00-" + envoyTraceID + "-" + envoySpanID + "-01"}

	// A new token, on behalf of a user not yet cached: the Check, the
	// verification and the lookup, in one trace under Envoy's span.
	a.check(t, sampled, bearer(token), obo("user 42"))
	spans := a.spans()
	check, ok := spans["authz.Check"]
	if !ok {
		t.Fatalf("no Check span; got %v", keys(spans))
	}
	if got := check.SpanContext.TraceID().String(); got != envoyTraceID {
		t.Errorf("Check span in trace %s, want Envoy's %s", got, envoyTraceID)
	}
	if got := check.Parent.SpanID().String(); got != envoySpanID || !check.Parent.IsRemote() {
		t.Errorf("Check span's parent is %s, want Envoy's span %s", got, envoySpanID)
	}
	if check.SpanKind != trace.SpanKindServer {
		t.Errorf("Check span kind %s, want server", check.SpanKind)
	}
	for key, want := range map[string]string{"authz.reason": "allowed", "authz.client_id": "client-1", "authz.tenant_id": "acme", "http.response.status_code": "200"} {
		if got := attr(check, key); got != want {
			t.Errorf("Check span %s = %q, want %q", key, got, want)
		}
	}
	if route := attr(check, "authz.route"); route == "" || route == "(none)" {
		t.Errorf("Check span names no route: %q", route)
	}
	for _, name := range []string{"authz.VerifyToken", "authz.LookupUser"} {
		s, ok := spans[name]
		if !ok {
			t.Fatalf("no %s span; got %v", name, keys(spans))
		}
		if s.Parent.SpanID() != check.SpanContext.SpanID() || s.SpanContext.TraceID() != check.SpanContext.TraceID() {
			t.Errorf("%s is not a child of the Check span", name)
		}
	}
	if got := attr(spans["authz.VerifyToken"], "token.alg"); got != "ES256" {
		t.Errorf("VerifyToken token.alg = %q", got)
	}
	assertNoSecrets(t, spans, token)

	// The cached path: the Check span alone.
	a.check(t, sampled, bearer(token), obo("user 42"))
	if spans := a.spans(); len(spans) != 1 {
		t.Errorf("a cached token and user made spans %v, want the Check span alone", keys(spans))
	}

	// Envoy did not sample: nothing is recorded.
	a.check(t, [2]string{"traceparent", "00-" + envoyTraceID + "-" + envoySpanID + "-00"}, bearer(token))
	if spans := a.spans(); len(spans) != 0 {
		t.Errorf("an unsampled trace recorded %v", keys(spans))
	}

	// B3, as Envoy's Zipkin tracer sends it.
	a.check(t, [2]string{"x-b3-traceid", envoyTraceID}, [2]string{"x-b3-spanid", envoySpanID}, [2]string{"x-b3-sampled", "1"}, bearer(token))
	if b3 := a.spans()["authz.Check"]; b3.SpanContext.TraceID().String() != envoyTraceID || b3.Parent.SpanID().String() != envoySpanID {
		t.Errorf("a B3 trace was not continued: trace %s, parent %s", b3.SpanContext.TraceID(), b3.Parent.SpanID())
	}

	// In header_map, its name in any case.
	a.checkAs(t, true, [2]string{"TraceParent", sampled[1]}, bearer(token))
	if raw := a.spans()["authz.Check"]; raw.SpanContext.TraceID().String() != envoyTraceID || raw.Parent.SpanID().String() != envoySpanID {
		t.Errorf("a trace in header_map was not continued: trace %s, parent %s", raw.SpanContext.TraceID(), raw.Parent.SpanID())
	}
}

func TestTracingAJWKSFetchAndARefusal(t *testing.T) {
	t.Parallel()
	a := newTracedAuthz(t)
	unknown := newSigningKey(t, "not-published", jwa.ES256)
	token := sign(t, unknown, nil, claims(time.Now()))
	a.check(t, [2]string{"traceparent", "00-" + envoyTraceID + "-" + envoySpanID + "-01"}, bearer(token))
	spans := a.spans()
	check, verify, fetch := spans["authz.Check"], spans["authz.VerifyToken"], spans["authz.FetchJWKS"]
	if fetch.Name == "" || verify.Name == "" {
		t.Fatalf("an unknown kid made spans %v, want a JWKS fetch under the verification", keys(spans))
	}
	if fetch.Parent.SpanID() != verify.SpanContext.SpanID() || verify.Parent.SpanID() != check.SpanContext.SpanID() {
		t.Error("the JWKS fetch is not under the verification, or the verification not under the Check")
	}
	if attr(check, "authz.reason") != "invalid-token" || attr(check, "http.response.status_code") != "401" || attr(verify, "authz.reason") != "invalid-token" {
		t.Errorf("the refusal is not on the spans: Check %q %q, VerifyToken %q", attr(check, "authz.reason"), attr(check, "http.response.status_code"), attr(verify, "authz.reason"))
	}
	if attr(check, "authz.client_id") != "" {
		t.Error("a refused token's client is on the Check span")
	}
	assertNoSecrets(t, spans, token)
}

// assertNoSecrets fails when any span attribute, event or status carries the
// token, a part of it, or an Authorization value.
func assertNoSecrets(t *testing.T, spans map[string]tracetest.SpanStub, token string) {
	t.Helper()
	parts := append(strings.Split(token, "."), "Bearer")
	for name, s := range spans {
		values := []string{s.Status.Description}
		for _, kv := range s.Attributes {
			values = append(values, kv.Value.Emit())
		}
		for _, e := range s.Events {
			for _, kv := range e.Attributes {
				values = append(values, kv.Value.Emit())
			}
		}
		for _, v := range values {
			for _, p := range parts {
				if len(p) > 8 && strings.Contains(v, p) {
					t.Errorf("span %s carries part of the token: %q", name, v)
				}
			}
		}
	}
}

func keys(m map[string]tracetest.SpanStub) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
