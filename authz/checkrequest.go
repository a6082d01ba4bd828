package authz

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// NewCheckRequest builds a CheckRequest as Envoy does: lower-case header
// names, pseudo-headers, the path with its query, duplicates comma-merged in
// headers, or listed one by one in header_map when raw is set.
func NewCheckRequest(method, path, authority string, headers [][2]string, raw bool) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{
		Id: fmt.Sprint(time.Now().UnixNano()), Method: method, Path: path, Host: authority, Scheme: "https", Protocol: "HTTP/1.1",
	}
	if raw {
		h.HeaderMap = &corev3.HeaderMap{}
		for _, kv := range headers {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
		}
	} else {
		h.Headers = map[string]string{}
		for _, kv := range headers {
			if prev, ok := h.Headers[kv[0]]; ok {
				h.Headers[kv[0]] = prev + "," + kv[1]
			} else {
				h.Headers[kv[0]] = kv[1]
			}
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}
