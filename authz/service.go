package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/portcullis/portcullis/policy"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Service is the envoy.service.auth.v3.Authorization gRPC server. It only
// translates: CheckRequest → Request, Decision → CheckResponse. Expected
// denials are CheckResponses; it returns no gRPC error of its own.
type Service struct {
	authv3.UnimplementedAuthorizationServer
	decider *Decider
	cfg     ServiceConfig
	log     *slog.Logger
	metrics *metrics
	denials *denialLogLimiter
	// shadowLog limits the log lines of shadow disagreements, per live
	// reason.
	shadowLog *denialLogLimiter
	// traceFields are the headers the propagator reads, lower-cased (nil
	// with tracing off).
	traceFields []string
}

var _ authv3.AuthorizationServer = (*Service)(nil)

// ServiceConfig configures the gRPC service around the decision.
type ServiceConfig struct {
	// CheckTimeout bounds each decision; past it the check is denied with
	// 503. Zero means no bound of its own.
	CheckTimeout time.Duration
	// AllowSampleRate is the share of allows logged (0 to 1).
	AllowSampleRate float64
	// DenialsPerInterval is how many denials of one reason are logged per
	// DenialInterval; the rest are counted in a summary line. 0 logs all.
	DenialsPerInterval int
	DenialInterval     time.Duration
	// Tracer, when set, makes a span per Check that continues the trace
	// Envoy started, read from the request's headers by Propagator. Nil:
	// tracing is off and Check does not even look for trace headers.
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
}

// NewService returns the gRPC service around decider.
func NewService(decider *Decider, cfg ServiceConfig, clock Clock, log *slog.Logger, m *metrics) *Service {
	s := &Service{decider: decider, cfg: cfg, log: log, metrics: m,
		denials:   newDenialLogLimiter(cfg.DenialsPerInterval, cfg.DenialInterval, clock, log),
		shadowLog: newDenialLogLimiter(cfg.DenialsPerInterval, cfg.DenialInterval, clock, log)}
	if cfg.Tracer != nil {
		for _, f := range cfg.Propagator.Fields() {
			s.traceFields = append(s.traceFields, strings.ToLower(f))
		}
	}
	return s
}

// RunLogFlusher reports suppressed denial log lines once their interval is
// over, until ctx ends.
func (s *Service) RunLogFlusher(ctx context.Context) { s.denials.run(ctx) }

// Check implements the Authorization service for a decoded message.
// authz's own gRPC server reads CheckRequests and encodes the answers
// itself (checkHandler); the CheckResponse built here is what that encoding
// is held to.
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return check(s, ctx, decodedCheck{req}, func(s *Service, dec Decision) *authv3.CheckResponse { return s.response(&dec) }), nil
}

// checkInput is a request to decide as an adapter received it: a decoded
// CheckRequest, one read from its wire bytes (wireCheck), or an HTTP
// authorization request (httpCheck).
type checkInput interface {
	// traceCarrier holds the trace headers the request carried.
	traceCarrier() propagation.TextMapCarrier
	// read fills r with what the decision reads. A reason other than ""
	// refuses the request before the decision, for cause: what the adapter
	// received cannot be decided.
	read(r *Request) (Reason, error)
}

// decodedCheck is a decoded CheckRequest to decide.
type decodedCheck struct{ req *authv3.CheckRequest }

func (c decodedCheck) traceCarrier() propagation.TextMapCarrier { return checkCarrier(c) }

func (c decodedCheck) read(r *Request) (Reason, error) {
	if !requestFromCheck(c.req, r) {
		return ReasonInvalidPath, errNoHTTPAttributes
	}
	return "", nil
}

var errNoHTTPAttributes = errors.New("CheckRequest has no HTTP attributes")

// check decides one request, whichever adapter received it, and answers
// with respond's response: a CheckResponse message, one already encoded
// (encodeResponse), or an HTTP answer written. The decision is handed to
// respond by value: through a pointer, it escaped to the heap on every
// request.
func check[R any](s *Service, ctx context.Context, in checkInput, respond func(*Service, Decision) R) (resp R) {
	start := time.Now()
	var dec Decision
	var r Request
	var span trace.Span
	if s.cfg.Tracer != nil {
		ctx = s.cfg.Propagator.Extract(ctx, in.traceCarrier())
		ctx, span = s.cfg.Tracer.Start(ctx, "authz.Check", trace.WithSpanKind(trace.SpanKindServer))
	}
	defer func() {
		// A panic anywhere in the decision fails closed, as a 503 denial.
		if p := recover(); p != nil {
			s.log.Error("panic in Check; denied", "reason", ReasonUnavailable, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			dec = Decision{Reason: ReasonUnavailable, Denial: s.decider.denials.get(ReasonUnavailable)}
			resp = respond(s, dec)
		}
		s.observe(&r, &dec, time.Since(start))
		if span != nil {
			s.endCheckSpan(span, &dec)
		}
	}()
	if refusal, cause := in.read(&r); refusal != "" {
		dec = Decision{Reason: refusal, Denial: s.decider.denials.get(refusal), Cause: cause}
		return respond(s, dec)
	}
	// Envoy sends a deadline with every Check (the ext_authz filter's
	// timeout), normally sooner than check_timeout: a second one would cost
	// a timer per request and change nothing.
	if deadline, ok := ctx.Deadline(); s.cfg.CheckTimeout > 0 && (!ok || deadline.After(start.Add(s.cfg.CheckTimeout))) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.CheckTimeout)
		defer cancel()
	}
	dec = s.decider.Decide(ctx, &r)
	if dec.Denial != nil && dec.Reason == ReasonUnavailable && ctx.Err() != nil {
		dec.Cause = fmt.Errorf("%w (check deadline: %v)", dec.Cause, ctx.Err())
	}
	return respond(s, dec)
}

// endCheckSpan records the decision on the Check's span and ends it.
func (s *Service) endCheckSpan(span trace.Span, dec *Decision) {
	if span.IsRecording() {
		status := http.StatusOK
		if !dec.Allowed() && dec.Denial != nil {
			status = dec.Denial.Status
		}
		span.SetAttributes(checkSpanAttributes(dec, status)...)
		if status >= 500 {
			span.SetStatus(otelcodes.Error, string(dec.Reason))
		}
	}
	span.End()
}

// requestFromCheck reads method, path and the headers the decision needs.
// Envoy sends headers in the headers map (duplicates comma-merged) or, with
// raw header encoding, in header_map (duplicates listed separately, values
// possibly in raw_value). Both are read.
func requestFromCheck(req *authv3.CheckRequest, r *Request) bool {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return false
	}
	r.Method, r.Path = h.GetMethod(), h.GetPath()
	if hm := h.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		for _, hv := range hm {
			noteUnderscored(r, hv.GetKey())
			switch strings.ToLower(hv.GetKey()) {
			case "authorization":
				r.Authorization.Add(headerValue(hv))
			case OnBehalfOfHeader:
				r.OnBehalfOf.Add(headerValue(hv))
			case "x-request-id":
				r.RequestID = headerValue(hv)
			case ":method":
				if r.Method == "" {
					r.Method = headerValue(hv)
				}
			case ":path":
				if r.Path == "" {
					r.Path = headerValue(hv)
				}
			}
		}
	}
	headers := h.GetHeaders()
	for name := range headers {
		noteUnderscored(r, name)
	}
	if v, ok := headers["authorization"]; ok && r.Authorization.Count == 0 {
		r.Authorization.Add(v)
	}
	if v, ok := headers[OnBehalfOfHeader]; ok && r.OnBehalfOf.Count == 0 {
		r.OnBehalfOf.Add(v)
	}
	if r.RequestID == "" {
		r.RequestID = headers["x-request-id"]
	}
	if r.Method == "" {
		r.Method = headers[":method"]
	}
	if r.Path == "" {
		r.Path = headers[":path"]
	}
	return true
}

// headerValue is a header_map entry's value: Envoy sets value or, with
// encode_raw_headers, raw_value. Only the headers the decision reads are
// converted, so the others cost no allocation.
func headerValue(hv *corev3.HeaderValue) string {
	if v := hv.GetValue(); v != "" || len(hv.GetRawValue()) == 0 {
		return v
	}
	return string(hv.GetRawValue())
}

// underscoredScan is how many underscored names are compared one by one;
// past it they are found through a map.
const underscoredScan = 16

// noteUnderscored remembers a header name holding an underscore, once. A
// request with a few such names (the usual: none) compares them in turn;
// one with many, which only an attacker sends, goes through a map of
// folded names, so the work stays linear (an 869 KB request of underscored
// names cost 12 s of CPU when each was compared with all before it).
func noteUnderscored(r *Request, name string) {
	if strings.IndexByte(name, '_') < 0 {
		return
	}
	if len(r.Underscored) < underscoredScan {
		for _, seen := range r.Underscored {
			if strings.EqualFold(seen, name) {
				return
			}
		}
		r.Underscored = append(r.Underscored, name)
		return
	}
	if r.underscoredSeen == nil {
		r.underscoredSeen = make(map[string]struct{}, 4*underscoredScan)
		for _, seen := range r.Underscored {
			r.underscoredSeen[strings.ToLower(seen)] = struct{}{}
		}
	}
	key := strings.ToLower(name)
	if _, ok := r.underscoredSeen[key]; ok {
		return
	}
	r.underscoredSeen[key] = struct{}{}
	r.Underscored = append(r.Underscored, name)
}

var (
	okStatus    = &rpcstatus.Status{Code: int32(codes.OK)}
	appendFalse = wrapperspb.Bool(false)
)

// headerOptions sets headers.
func headerOptions(set []Header) []*corev3.HeaderValueOption {
	opts := make([]*corev3.HeaderValueOption, len(set))
	for i, h := range set {
		// Overwrite, never append, and say so both ways: Envoy's default
		// for an unset append has changed between releases.
		opts[i] = &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			Append:       appendFalse,
		}
	}
	return opts
}

func (s *Service) response(dec *Decision) *authv3.CheckResponse {
	if dec.Allowed() {
		var buf [4]Header
		set, remove := s.decider.UpstreamHeaders(dec, buf[:0])
		return &authv3.CheckResponse{
			Status: okStatus,
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers:         headerOptions(set),
				HeadersToRemove: remove,
			}},
			DynamicMetadata: s.metadata(dec),
		}
	}
	d := dec.Denial
	if d == nil { // unreachable by construction; never let it become an allow
		d = s.decider.denials.get(ReasonUnavailable)
	}
	var buf [4]Header
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(d.GRPCCode), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headerOptions(denialHeaders(d, buf[:0])),
			Body:    string(d.Body),
		}},
		DynamicMetadata: s.metadata(dec),
	}
}

// metadata is returned to Envoy for its access logs (namespace
// envoy.filters.http.ext_authz).
func (s *Service) metadata(dec *Decision) *structpb.Struct {
	var buf [5]Header
	fields := metadataFields(dec, buf[:0])
	byName := make(map[string]*structpb.Value, len(fields))
	for _, f := range fields {
		byName[f.Name] = structpb.NewStringValue(f.Value)
	}
	return &structpb.Struct{Fields: byName}
}

// metadataFields appends to fields what a decision's dynamic metadata
// says: its reason, route, client, user and, for a revoked token, which
// revocation refused it.
func metadataFields(dec *Decision, fields []Header) []Header {
	fields = append(fields, Header{Name: "reason", Value: string(dec.Reason)})
	if dec.Route != nil {
		fields = append(fields, Header{Name: "route", Value: dec.Route.Name})
	}
	if dec.ClientID != "" {
		fields = append(fields, Header{Name: "client_id", Value: dec.ClientID})
	}
	if dec.UserID != "" {
		fields = append(fields, Header{Name: "user_id", Value: dec.UserID})
	}
	if dec.Reason == ReasonTokenRevoked && dec.Cause != nil {
		// Which revocation refused it: for access logs and `authz check`.
		fields = append(fields, Header{Name: "revocation", Value: dec.Cause.Error()})
	}
	return fields
}

// denialHeaders appends to headers those of a denial's response.
func denialHeaders(d *Denial, headers []Header) []Header {
	headers = append(headers, Header{Name: "content-type", Value: "application/json"}, Header{Name: "cache-control", Value: "no-store"})
	if d.WWWAuthenticate != "" {
		headers = append(headers, Header{Name: "www-authenticate", Value: d.WWWAuthenticate})
	}
	if d.RetryAfter != "" {
		headers = append(headers, Header{Name: "retry-after", Value: d.RetryAfter})
	}
	return headers
}

// observe records the decision in metrics and the decision log: every
// denial, and allows at the configured sample rate. Never the token.
func (s *Service) observe(r *Request, dec *Decision, took time.Duration) {
	outcome := outcomeOf(dec.Reason)
	if !dec.Allowed() {
		outcome = "deny" // never count or log a denial as an allow
	}
	s.metrics.check(dec.Reason)
	s.metrics.latency.Observe(took.Seconds())
	if dec.ShadowReason != "" && dec.ShadowReason != dec.Reason {
		s.shadowDisagrees(r, dec)
	}
	if outcome == "allow" && (s.cfg.AllowSampleRate <= 0 || rand.Float64() >= s.cfg.AllowSampleRate) {
		return
	}
	level := slog.LevelInfo
	if dec.Reason == ReasonUnavailable {
		level = slog.LevelError
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	if outcome == "deny" && !s.denials.allow(dec.Reason) {
		return
	}
	route := ""
	if dec.Route != nil {
		route = dec.Route.Name
	}
	status := 200
	if dec.Denial != nil {
		status = dec.Denial.Status
	}
	attrs := []slog.Attr{
		slog.String("decision", outcome),
		slog.String("reason", string(dec.Reason)),
		slog.Int("status", status),
		slog.String("route", route),
		slog.String("client_id", dec.ClientID),
		slog.String("user_id", dec.UserID),
		slog.String("decision_id", r.RequestID),
		slog.String("method", r.Method),
		slog.String("path", loggablePath(r.Path)),
		slog.Duration("latency", took),
	}
	if dec.Cause != nil {
		attrs = append(attrs, slog.String("cause", dec.Cause.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "check", attrs...)
}

// shadowDisagrees counts, and logs (rate limited), a check the shadow
// policy would have decided otherwise, naming both routes.
func (s *Service) shadowDisagrees(r *Request, dec *Decision) {
	s.metrics.shadowDisagreements.WithLabelValues(string(dec.Reason), string(dec.ShadowReason)).Inc()
	if !s.log.Enabled(context.Background(), slog.LevelInfo) || !s.shadowLog.allow(dec.Reason) {
		return
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "shadow policy disagrees",
		slog.String("live_reason", string(dec.Reason)), slog.String("shadow_reason", string(dec.ShadowReason)),
		slog.String("live_route", routeLabel(dec.Route)), slog.String("shadow_route", routeLabel(dec.ShadowRoute)),
		slog.String("client_id", dec.ClientID), slog.String("decision_id", r.RequestID),
		slog.String("method", r.Method), slog.String("path", loggablePath(r.Path)))
}

// routeLabel names a route and where it is defined, for logs.
func routeLabel(r *policy.Route) string {
	if r == nil {
		return "(none)"
	}
	return r.Name + " (" + r.Source.String() + ")"
}

// loggablePath drops the query (it may carry personal data) and bounds
// the length of what is logged.
func loggablePath(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if len(p) > 256 {
		p = p[:256] + "…"
	}
	return p
}
