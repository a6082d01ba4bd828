package loadtest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// httpCheckClient asks a server's HTTP authorization listener what a
// CheckRequest asks, as Caddy's forward_auth would (mode forward-auth):
// a GET with the client's headers and X-Forwarded-Method and -Uri. The
// answer is read back into a CheckResponse, so the load tool drives and
// counts both transports alike.
type httpCheckClient struct {
	url    string
	client *http.Client
	// headers holds each CheckRequest's headers, built once: they are
	// only read while requests are sent.
	headers sync.Map // *authv3.CheckRequest → http.Header
}

var _ authv3.AuthorizationClient = (*httpCheckClient)(nil)

func newHTTPCheckClient(addr string, connections int) *httpCheckClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost, t.MaxConnsPerHost = connections, connections
	return &httpCheckClient{url: "http://" + addr + "/check", client: &http.Client{Transport: t}}
}

// Check sends the request, bounded by ctx.
func (c *httpCheckClient) Check(ctx context.Context, in *authv3.CheckRequest, _ ...grpc.CallOption) (*authv3.CheckResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = c.headersOf(in)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		ok := &authv3.OkHttpResponse{}
		for name, v := range resp.Header {
			if strings.HasPrefix(name, "X-Auth-") {
				ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: strings.ToLower(name), Value: v[0]}})
			}
		}
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(resp.StatusCode)}, Body: string(body),
		}},
	}, nil
}

// headersOf is what the proxy would send for in: the client's headers and
// the original method and URI.
func (c *httpCheckClient) headersOf(in *authv3.CheckRequest) http.Header {
	if h, ok := c.headers.Load(in); ok {
		return h.(http.Header)
	}
	attrs := in.GetAttributes().GetRequest().GetHttp()
	h := http.Header{}
	for name, v := range attrs.GetHeaders() {
		if !strings.HasPrefix(name, ":") {
			h.Add(name, v)
		}
	}
	for _, hv := range attrs.GetHeaderMap().GetHeaders() {
		if !strings.HasPrefix(hv.GetKey(), ":") {
			h.Add(hv.GetKey(), hv.GetValue())
		}
	}
	h.Set("X-Forwarded-Method", attrs.GetMethod())
	h.Set("X-Forwarded-Uri", attrs.GetPath())
	c.headers.Store(in, h)
	return h
}

// alwaysOKHTTP answers every HTTP authorization request 200 with headers
// shaped like an allow: the floor of what any HTTP authorization server on
// this HTTP server can cost.
func alwaysOKHTTP(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["X-Auth-Client-Id"] = []string{"client"}
	h["X-Auth-Scopes"] = []string{"a b"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusOK)
}

// closeIdle ends the client's idle connections.
func (c *httpCheckClient) closeIdle() { c.client.CloseIdleConnections() }
