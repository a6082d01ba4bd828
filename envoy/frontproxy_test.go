package envoy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// frontProxy is a test-only stand-in for Envoy configured as envoy.yaml is:
// it normalizes the path, strips the trusted headers, asks authz with a
// CheckRequest shaped as Envoy builds one, applies the CheckResponse as Envoy
// does, and forwards to the issuer or the upstream.
type frontProxy struct {
	authz         authv3.AuthorizationClient
	timeout       time.Duration
	statusOnError int
	rawHeaders    bool
	// allowUnderscores lets header names with underscores through, as
	// Envoy's default (ALLOW) does; envoy.yaml sets REJECT_REQUEST.
	allowUnderscores bool
	strip            []string
	issuer           *url.URL
	upstream         *url.URL
	requestIDs       atomic.Int64
}

func (p *frontProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rawPath, query, _ := strings.Cut(r.RequestURI, "?")
	path, ok := normalizePath(rawPath)
	if !ok {
		// path_with_escaped_slashes_action: REJECT_REQUEST
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	fullPath := path
	if query != "" {
		fullPath += "?" + query
	}
	// headers_with_underscores_action: REJECT_REQUEST answers 400.
	if !p.allowUnderscores {
		for name := range r.Header {
			if strings.Contains(name, "_") {
				http.Error(w, "Bad Request", http.StatusBadRequest)
				return
			}
		}
	}
	// early_header_mutation_extensions: strip the trusted headers.
	for _, h := range p.strip {
		r.Header.Del(h)
	}
	// generate_request_id without preserve_external_request_id.
	r.Header.Set("X-Request-Id", fmt.Sprintf("req-%d", p.requestIDs.Add(1)))
	r.Header.Set("X-Forwarded-Proto", "http")

	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	resp, err := p.authz.Check(ctx, p.checkRequest(r, fullPath))
	if err != nil {
		// A gRPC error or timeout: status_on_error, failure_mode_allow false.
		w.WriteHeader(p.statusOnError)
		return
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetOkResponse() == nil {
		denied := resp.GetDeniedResponse()
		status := int(denied.GetStatus().GetCode())
		if status == 0 {
			status = http.StatusForbidden // Envoy's default for a denial without a status
		}
		for _, h := range denied.GetHeaders() {
			applyHeader(w.Header(), h)
		}
		w.WriteHeader(status)
		io.WriteString(w, denied.GetBody())
		return
	}
	allowed := resp.GetOkResponse()
	for _, h := range allowed.GetHeaders() {
		applyHeader(r.Header, h)
	}
	// Envoy applies removals after the sets.
	for _, name := range allowed.GetHeadersToRemove() {
		r.Header.Del(name)
	}
	target := p.upstream
	if path == "/oauth2/token" || path == "/oauth2/revoke" || strings.HasPrefix(path, "/.well-known/") {
		target = p.issuer
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = path, "", query
		pr.Out.Header = pr.In.Header.Clone()
	}}
	rp.ServeHTTP(w, r)
}

// applyHeader follows HeaderValueOption semantics: the deprecated append
// flag when set, else append_action.
func applyHeader(h http.Header, o *corev3.HeaderValueOption) {
	name, value := o.GetHeader().GetKey(), o.GetHeader().GetValue()
	if v := o.GetHeader().GetRawValue(); value == "" && len(v) > 0 {
		value = string(v)
	}
	action := o.GetAppendAction()
	if o.GetAppend() != nil {
		action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if o.GetAppend().GetValue() {
			action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
	}
	switch action {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		h.Add(name, value)
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if h.Get(name) == "" {
			h.Set(name, value)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if h.Get(name) != "" {
			h.Set(name, value)
		}
	default:
		h.Set(name, value)
	}
}

// checkRequest builds the CheckRequest as Envoy's ext_authz filter does.
func (p *frontProxy) checkRequest(r *http.Request, fullPath string) *authv3.CheckRequest {
	pseudo := [][2]string{{":authority", r.Host}, {":method", r.Method}, {":path", fullPath}, {":scheme", "http"}}
	http1 := &authv3.AttributeContext_HttpRequest{
		Id: r.Header.Get("X-Request-Id"), Method: r.Method, Path: fullPath, Host: r.Host,
		Scheme: "http", Protocol: r.Proto, Size: r.ContentLength,
	}
	if p.rawHeaders {
		hm := &corev3.HeaderMap{}
		for _, kv := range pseudo {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
		}
		for name, values := range r.Header {
			for _, v := range values {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: strings.ToLower(name), RawValue: []byte(v)})
			}
		}
		http1.HeaderMap = hm
	} else {
		m := map[string]string{}
		for _, kv := range pseudo {
			m[kv[0]] = kv[1]
		}
		for name, values := range r.Header {
			m[strings.ToLower(name)] = strings.Join(values, ",")
		}
		http1.Headers = m
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      peer(r.RemoteAddr),
		Destination: peer(r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()),
		Request:     &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: http1},
	}}
}

func peer(addr string) *authv3.AttributeContext_Peer {
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}},
	}}}
}

// normalizePath does what normalize_path, merge_slashes and
// path_with_escaped_slashes_action: REJECT_REQUEST do: reject %2F and %5C,
// turn backslashes into slashes, merge slashes, and resolve "." and ".."
// segments (also when written %2E).
func normalizePath(raw string) (string, bool) {
	lower := strings.ToLower(raw)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "", false
	}
	raw = strings.ReplaceAll(raw, "\\", "/")
	var out []string
	segments := strings.Split(raw, "/")
	for i, seg := range segments {
		switch strings.ToLower(seg) {
		case "":
			if i == len(segments)-1 && i > 0 {
				out = append(out, "") // keep a trailing slash
			}
		case ".", "%2e":
		case "..", "%2e%2e", ".%2e", "%2e.":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/"), true
}
