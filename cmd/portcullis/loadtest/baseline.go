package loadtest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portcullis/portcullis/authz"
)

// alwaysOK answers every Check with the same OK response, shaped like an
// authz allow (a few headers set, a few removed): the floor of what any
// ext_authz server on this gRPC stack can cost.
type alwaysOK struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (a *alwaysOK) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return a.resp, nil
}

// ServeBaseline serves the always-OK server on ln until ctx ends, and its
// Go runtime metrics (GC CPU and live heap, as authz exports them) and a
// CPU profiler on metrics when it is not nil. overHTTP serves the
// always-200 HTTP authorization server instead of the gRPC one.
func ServeBaseline(ctx context.Context, ln, metrics net.Listener, overHTTP bool) error {
	if metrics != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(authz.GoRuntimeCollector())
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc(ProfilePath, pprof.Profile)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(metrics)
		defer srv.Close()
	}
	if overHTTP {
		srv := authz.HTTPServer(http.HandlerFunc(alwaysOKHTTP), authz.DefaultConfig().HTTP.MaxHeaderBytes, slog.New(slog.NewTextHandler(os.Stderr, nil)))
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	set := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD, Append: wrapperspb.Bool(false)}
	}
	srv := grpc.NewServer(authz.GRPCServerOptions()...)
	authv3.RegisterAuthorizationServer(srv, &alwaysOK{resp: &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         []*corev3.HeaderValueOption{set("x-auth-client-id", "client"), set("x-auth-scopes", "a b")},
			HeadersToRemove: []string{"x-on-behalf-of"},
		}},
	}})
	go func() { <-ctx.Done(); srv.Stop() }()
	return srv.Serve(ln)
}
