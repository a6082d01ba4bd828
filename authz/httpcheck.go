package authz

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"go.opentelemetry.io/otel/propagation"
)

// HTTPHandler serves the Check decision over HTTP, for proxies that ask
// that way (HTTPMode). Like Service it only translates: an authorization
// request → Request, Decision → an HTTP answer. The decision, its metrics,
// decision log, tracing and shadow policy are the gRPC Check's own (check).
//
// Allowed: 200 with the trusted headers for the proxy to copy upstream.
// Denied: the denial's status, JSON body and headers, as Envoy would send
// them to the client; in mode nginx, whose auth_request passes 401 and 403
// only, every denial is answered 403 and named in DenialHeader, for the
// proxy's error_page to fetch from DenialsPath.
type HTTPHandler struct {
	svc     *Service
	mode    HTTPMode
	trusted []netip.Prefix
	prefix  string
	// methodHeader and uriHeader describe the original request (modes
	// nginx and forward-auth).
	methodHeader, uriHeader string
	// canonical spells each header name authz answers with as Go's HTTP
	// server would, without working it out per request.
	canonical map[string]string
}

// DenialHeader names, in mode nginx, the reason of a denial answered 403
// to the auth_request subrequest.
const DenialHeader = "X-Portcullis-Denial"

// DenialsPath serves, in mode nginx, each denial as the client must see it
// (DenialsPath + reason): its status, body and headers but the challenge,
// which differs per request and is copied by the proxy from the subrequest.
const DenialsPath = "/denials/"

// envoyHeadersToRemove is how an http_service answer tells Envoy to remove
// headers from the request it lets through.
const envoyHeadersToRemove = "x-envoy-auth-headers-to-remove"

// NewHTTPHandler returns the HTTP adapter over svc, as cfg configures it
// (validated).
func NewHTTPHandler(svc *Service, cfg HTTPConfig) (*HTTPHandler, error) {
	trusted, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("http.trusted_proxies: %w", err)
	}
	h := &HTTPHandler{svc: svc, mode: cfg.Mode, trusted: trusted, prefix: cfg.PathPrefix, canonical: map[string]string{}}
	switch cfg.Mode {
	case HTTPModeNginx:
		h.methodHeader, h.uriHeader = "X-Original-Method", "X-Original-Uri"
	case HTTPModeForwardAuth:
		h.methodHeader, h.uriHeader = "X-Forwarded-Method", "X-Forwarded-Uri"
	case HTTPModeEnvoy:
	default:
		return nil, fmt.Errorf("http.mode: %q is not envoy, nginx or forward-auth", cfg.Mode)
	}
	n := svc.decider.mutations.names
	for _, name := range []string{n.ClientID, n.Scopes, n.TenantID, n.UserID, "content-type", "cache-control", "www-authenticate", "retry-after", envoyHeadersToRemove} {
		h.canonical[name] = http.CanonicalHeaderKey(name)
	}
	return h, nil
}

// ServeHTTP decides the request the proxy asks about.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.mode == HTTPModeNginx && strings.HasPrefix(r.URL.Path, DenialsPath) {
		h.serveDenial(w, r)
		return
	}
	in := httpCheck{h: h, r: r}
	check(h.svc, r.Context(), &in, func(s *Service, dec Decision) struct{} {
		h.answer(w, &dec)
		return struct{}{}
	})
}

// httpCheck is an HTTP authorization request to decide.
type httpCheck struct {
	h *HTTPHandler
	r *http.Request
}

func (c *httpCheck) traceCarrier() propagation.TextMapCarrier {
	return propagation.HeaderCarrier(c.r.Header)
}

// read believes the original request's method and URI from a trusted
// proxy only, each from exactly one header, and reads the headers the
// decision reads as Envoy's CheckRequest would carry them.
func (c *httpCheck) read(req *Request) (Reason, error) {
	h, r := c.h, c.r
	if !h.trusts(r.RemoteAddr) {
		return ReasonUntrustedProxy, fmt.Errorf("%s is not in http.trusted_proxies", r.RemoteAddr)
	}
	switch h.mode {
	case HTTPModeEnvoy:
		req.Method = r.Method
		uri, ok := strings.CutPrefix(r.RequestURI, h.prefix)
		if !ok || !strings.HasPrefix(uri, "/") {
			return ReasonInvalidPath, fmt.Errorf("request URI does not start with http.path_prefix %q and a /", h.prefix)
		}
		req.Path = uri
	default:
		var err error
		if req.Method, err = single(r.Header, h.methodHeader); err != nil {
			return ReasonInvalidPath, err
		}
		if req.Path, err = single(r.Header, h.uriHeader); err != nil {
			return ReasonInvalidPath, err
		}
		// Neither nginx nor Caddy nor Traefik can be told to remove a
		// header it did not set.
		req.CannotRemove = true
	}
	for name, values := range r.Header {
		noteUnderscored(req, name)
		switch name {
		case "Authorization":
			for _, v := range values {
				req.Authorization.Add(v)
			}
		case "X-On-Behalf-Of":
			for _, v := range values {
				req.OnBehalfOf.Add(v)
			}
		case "X-Request-Id":
			req.RequestID = values[0]
		}
	}
	return "", nil
}

// single is the one value of a header that must appear exactly once.
func single(header http.Header, name string) (string, error) {
	switch v := header[name]; len(v) {
	case 1:
		return v[0], nil
	case 0:
		return "", fmt.Errorf("no %s header: the proxy must send the original request's (see the proxy's configuration in the docs)", name)
	default:
		return "", fmt.Errorf("%d %s headers", len(v), name)
	}
}

// trusts reports whether the peer at addr (host:port) may ask.
func (h *HTTPHandler) trusts(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// answer writes the decision: 200 and the trusted headers, or the denial.
func (h *HTTPHandler) answer(w http.ResponseWriter, dec *Decision) {
	hdr := w.Header()
	if dec.Allowed() {
		var buf [6]Header
		set, remove := h.svc.decider.UpstreamHeaders(dec, buf[:0])
		set = append(set, Header{Name: "cache-control", Value: "no-store"})
		if h.mode == HTTPModeEnvoy {
			set = append(set, Header{Name: envoyHeadersToRemove, Value: strings.Join(remove, ", ")})
		}
		h.setHeaders(hdr, set, "")
		w.WriteHeader(http.StatusOK)
		return
	}
	d := dec.Denial
	if d == nil { // unreachable by construction; never let it become an allow
		d = h.svc.decider.denials.get(ReasonUnavailable)
	}
	var buf [4]Header
	h.setHeaders(hdr, denialHeaders(d, buf[:0]), "")
	status := d.Status
	if h.mode == HTTPModeNginx {
		// auth_request passes 401 and 403 and takes anything else for its
		// own failure (500); it copies a 401's challenge itself, where the
		// proxy's configuration copies it once for every denial. The
		// proxy's error_page turns this 403 into the denial's own answer,
		// fetched by its name.
		hdr[DenialHeader] = []string{string(d.Reason)}
		status = http.StatusForbidden
	}
	w.WriteHeader(status)
	w.Write(d.Body)
}

// serveDenial answers DenialsPath + reason with the denial as the client
// must see it, but the challenge: the proxy copies the one of the
// subrequest's answer, which may name the scopes a route requires. An
// unknown reason is answered as unavailable, never as an allow.
func (h *HTTPHandler) serveDenial(w http.ResponseWriter, r *http.Request) {
	if !h.trusts(r.RemoteAddr) {
		h.answer(w, &Decision{Reason: ReasonUntrustedProxy, Denial: h.svc.decider.denials.get(ReasonUntrustedProxy)})
		return
	}
	d := h.svc.decider.denials.get(Reason(strings.TrimPrefix(r.URL.Path, DenialsPath)))
	if d == nil {
		d = h.svc.decider.denials.get(ReasonUnavailable)
	}
	var buf [4]Header
	h.setHeaders(w.Header(), denialHeaders(d, buf[:0]), "www-authenticate")
	w.WriteHeader(d.Status)
	w.Write(d.Body)
}

// setHeaders sets each of headers but the one named except in hdr, their
// values in one allocation (each its own full slice, so an append cannot
// reach the next).
func (h *HTTPHandler) setHeaders(hdr http.Header, headers []Header, except string) {
	values := make([]string, len(headers))
	for i, dh := range headers {
		if dh.Name != except {
			values[i] = dh.Value
			hdr[h.canonical[dh.Name]] = values[i : i+1 : i+1]
		}
	}
}
