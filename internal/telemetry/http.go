package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPHandler wraps h so that each request continues its caller's trace in
// a server span named by the method and the route the ServeMux matched —
// never the raw path or query, which may carry anything. With tracing off it
// returns h itself.
func (t *Tracing) HTTPHandler(scope string, h http.Handler) http.Handler {
	if !t.Enabled {
		return h
	}
	tracer := t.Provider.Tracer(scope)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		h.ServeHTTP(rec, r)
		// The mux records the pattern it matched on the request it routed,
		// with its method when the pattern names one ("GET /admin/v1/...").
		route := r.Pattern
		if _, path, ok := strings.Cut(route, " "); ok {
			route = path
		}
		if route == "" {
			route = "(unmatched)"
		}
		span.SetName(r.Method + " " + route)
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route),
			attribute.Int("http.response.status_code", rec.status),
		)
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	})
}

// WithProvider is tracing on, through provider: for tests with an
// in-memory exporter.
func WithProvider(provider trace.TracerProvider) *Tracing {
	return &Tracing{Provider: provider, Propagator: Propagator(), Enabled: true, shutdown: noShutdown}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(status int) {
	if !s.wrote {
		s.status, s.wrote = status, true
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (the
// revocation feed's long poll sets its own write deadline).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
