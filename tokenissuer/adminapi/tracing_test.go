package adminapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// TestIssuerTracesTokenRequestsAndAdminCalls: with tracing on, a token
// request and an admin call each make a server span that continues the
// caller's trace, named by the route, with the outcome and the client — and
// neither the secret nor the token appears in any span.
func TestIssuerTracesTokenRequestsAndAdminCalls(t *testing.T) {
	t.Parallel()
	exporter := tracetest.NewInMemoryExporter()
	provider := telemetry.NewProvider(sdktrace.NewSimpleSpanProcessor(exporter), 1, nil)
	t.Cleanup(func() { provider.Shutdown(context.Background()) })
	e := startWith(t, "sqlite", func(s *server.Server) { s.Tracing = telemetry.WithProvider(provider) })
	_, secret, err := e.operate.CreateClient(tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true}), tokenissuer.NewClient{ID: "platform-ops", Scopes: []string{"portcullis.admin"}})
	if err != nil {
		t.Fatal(err)
	}
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	post := func(id, secret string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		req, _ := http.NewRequest("POST", e.public+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	status, body := post("platform-ops", secret)
	if status != 200 {
		t.Fatalf("token: %d %s", status, body)
	}
	token := e.mustToken("platform-ops", secret)
	if status, _ := post("platform-ops", "wrong-"+secret); status != 401 {
		t.Fatalf("a wrong secret got %d", status)
	}
	if r := e.call("GET", "/admin/v1/clients", token, ""); r.status != 200 {
		t.Fatalf("admin call: %d %s", r.status, r.raw)
	}

	spans := exporter.GetSpans()
	var issued, refused, admin *tracetest.SpanStub
	for i := range spans {
		s := &spans[i]
		switch {
		case s.Name == "POST /oauth2/token" && attr(s, "oauth2.outcome") == "issued" && s.SpanContext.TraceID().String() == traceID:
			issued = s
		case s.Name == "POST /oauth2/token" && attr(s, "oauth2.outcome") == "invalid_client":
			refused = s
		case strings.HasPrefix(s.Name, "GET /admin/"):
			admin = s
		}
	}
	if issued == nil || refused == nil || admin == nil {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name+" "+attr(&s, "oauth2.outcome"))
		}
		t.Fatalf("missing spans (issued %v, refused %v, admin %v) among %v", issued != nil, refused != nil, admin != nil, names)
	}
	if issued.Parent.SpanID().String() != parentID || !issued.Parent.IsRemote() || issued.SpanKind != trace.SpanKindServer {
		t.Errorf("the token request's span does not continue the caller's trace: parent %s", issued.Parent.SpanID())
	}
	if attr(issued, "oauth2.client_id") != "platform-ops" || attr(issued, "http.response.status_code") != "200" || attr(issued, "http.route") != "/oauth2/token" {
		t.Errorf("issued token span attributes: %v", issued.Attributes)
	}
	if attr(refused, "oauth2.client_id") != "" || attr(refused, "http.response.status_code") != "401" {
		t.Errorf("a refused request's span names the client it claimed, or not its status: %v", refused.Attributes)
	}
	if attr(admin, "http.response.status_code") != "200" {
		t.Errorf("admin call span attributes: %v", admin.Attributes)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			v := kv.Value.Emit()
			for _, secretPart := range append([]string{secret}, strings.Split(token, ".")...) {
				if len(secretPart) > 8 && strings.Contains(v, secretPart) {
					t.Errorf("span %s attribute %s carries a secret or token: %q", s.Name, kv.Key, v)
				}
			}
		}
	}
}

func attr(s *tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
