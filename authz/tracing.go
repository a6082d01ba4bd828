package authz

import (
	"context"
	"errors"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName names authz's spans' instrumentation scope.
const tracerName = "github.com/portcullis/portcullis/authz"

// childSpan starts a span under the one in ctx, from the provider of that
// span. The Check span is the only one made with authz's own tracer; the
// steps below it (token verification, a JWKS fetch, a user lookup) find it
// in their context, and run only on cache misses. Under a parent that is
// not recorded (tracing off, or a trace not sampled) the child would not be
// either, so none is made: a span and a context value are an eighth of what
// a new token costs beside its signature.
func childSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noop.Span{}
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, name)
}

// endSpan ends a child span, marking it failed with err's reason (never its
// message, which may quote a claim).
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		if err != nil {
			reason := "error"
			var te *TokenError
			if errors.As(err, &te) {
				reason = string(te.Reason)
			}
			span.SetAttributes(attribute.String("authz.reason", reason))
			span.SetStatus(codes.Error, reason)
		}
	}
	span.End()
}

// checkCarrier reads trace context (traceparent, b3...) from the headers
// Envoy sent in a CheckRequest, in headers or header_map.
type checkCarrier struct{ req *authv3.CheckRequest }

var _ propagation.TextMapCarrier = checkCarrier{}

func (c checkCarrier) Get(key string) string {
	http := c.req.GetAttributes().GetRequest().GetHttp()
	key = strings.ToLower(key)
	if v, ok := http.GetHeaders()[key]; ok {
		return v
	}
	for _, h := range http.GetHeaderMap().GetHeaders() {
		if strings.ToLower(h.GetKey()) == key {
			return headerValue(h)
		}
	}
	return ""
}

func (c checkCarrier) Keys() []string {
	http := c.req.GetAttributes().GetRequest().GetHttp()
	keys := make([]string, 0, len(http.GetHeaders()))
	for k := range http.GetHeaders() {
		keys = append(keys, k)
	}
	for _, h := range http.GetHeaderMap().GetHeaders() {
		keys = append(keys, strings.ToLower(h.GetKey()))
	}
	return keys
}

// Set is never used: authz reads trace context, it does not send it.
func (checkCarrier) Set(string, string) {}

// checkSpanAttributes are what a Check span says of the decision: reason,
// route, client and status. Never the token, the path (its query may carry
// anything) or a header's value.
func checkSpanAttributes(dec *Decision, status int) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("authz.reason", string(dec.Reason)),
		attribute.Int("http.response.status_code", status),
	}
	if dec.Route != nil {
		attrs = append(attrs, attribute.String("authz.route", routeLabel(dec.Route)))
	}
	if dec.ClientID != "" {
		attrs = append(attrs, attribute.String("authz.client_id", dec.ClientID))
	}
	if dec.TenantID != "" {
		attrs = append(attrs, attribute.String("authz.tenant_id", dec.TenantID))
	}
	return attrs
}
