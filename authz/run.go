package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/portcullis/portcullis/internal/buildinfo"
	"github.com/portcullis/portcullis/internal/telemetry"
	"github.com/portcullis/portcullis/policy"
	"github.com/portcullis/portcullis/revocation"
)

// Server is a running authz: the gRPC Check service, its health service, and
// the admin HTTP endpoints, wired from a Config.
type Server struct {
	cfg      Config
	log      *slog.Logger
	Policies *policy.Watcher
	// Shadow is the candidate policy (nil when none).
	Shadow   *policy.Watcher
	Keys     *JWKSSource
	Verifier *Verifier
	Users    *CachedDirectory
	// Revocations follows the issuer's revocation feed; nil when disabled.
	Revocations *RevocationFollower
	fileDir     *FileDirectory
	Service     *Service
	health      *health.Server
	registry    *prometheus.Registry
	tracing     *telemetry.Tracing

	grpcListener  net.Listener
	adminListener net.Listener
	// httpListener serves the decision over HTTP (nil when http.listen is
	// empty).
	httpListener net.Listener
	httpHandler  *HTTPHandler
}

// NewServer validates cfg, loads the policy and the user directory, and binds
// both listeners, so that every configuration problem surfaces at start-up.
func NewServer(cfg Config, clock Clock, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(GoRuntimeCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector("authz"))
	m := newMetrics(reg)
	s := &Server{cfg: cfg, log: log, registry: reg}

	var err error
	if s.Policies, err = policy.NewWatcher(cfg.Policy, log, reg); err != nil {
		return nil, fmt.Errorf("policy %s:\n%w", cfg.Policy, err)
	}
	s.Keys = NewJWKSSource(JWKSConfig{
		Issuer: cfg.Token.Issuer, URL: cfg.Token.JWKSURL,
		RefreshInterval:    cfg.Token.JWKSRefreshInterval,
		MinRefetchInterval: cfg.Token.JWKSMinRefetchInterval,
		FetchTimeout:       cfg.Token.JWKSFetchTimeout,
		MaxBytes:           cfg.Token.JWKSMaxBytes,
	}, clock, log, m)
	s.Verifier, err = NewVerifier(VerifierConfig{
		Issuer: cfg.Token.Issuer, Audience: cfg.Token.Audience, Algorithms: cfg.Token.Algorithms,
		AcceptJWTType: cfg.Token.AcceptJWTType, ClockSkew: cfg.Token.ClockSkew, CacheMaxTokens: cfg.Token.CacheMaxTokens,
		MaxConcurrentVerifications: cfg.Token.MaxConcurrentVerifications, VerificationQueue: cfg.Token.VerificationQueue,
		RefusalDelay: cfg.Token.RefusalDelay,
	}, s.Keys, clock, m)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var source UserDirectory
	switch cfg.Users.Source {
	case "file":
		if s.fileDir, err = NewFileDirectory(cfg.Users.File, log); err != nil {
			return nil, err
		}
		source = s.fileDir
	case "http":
		if source, err = NewHTTPDirectory(cfg.Users.URL, cfg.Users.Timeout, cfg.Users.MaxResponseBytes, log); err != nil {
			return nil, err
		}
	}
	if s.Users, err = NewCachedDirectory(source, CacheConfig{TTL: cfg.Users.CacheTTL, MaxStale: cfg.Users.MaxStale, MaxUsers: cfg.Users.CacheMaxUsers}, clock, m); err != nil {
		return nil, err
	}
	registerCacheMetrics(reg, s.Verifier, s.Users)
	dcfg := DeciderConfig{Headers: cfg.Headers, Realm: cfg.Realm, AllowTenantlessClients: cfg.Users.AllowTenantlessClients}
	if cfg.ShadowPolicy != "" {
		// Its reload metrics would clash with the live policy's: the
		// shadow's reloads are logged, its disagreements counted.
		if s.Shadow, err = policy.NewWatcher(cfg.ShadowPolicy, log.With("policy", "shadow"), prometheus.NewRegistry()); err != nil {
			return nil, fmt.Errorf("shadow_policy %s:\n%w", cfg.ShadowPolicy, err)
		}
		dcfg.Shadow = s.Shadow
	}
	if cfg.Revocation.Enabled {
		rc := cfg.Revocation
		base := strings.TrimSuffix(cfg.Token.Issuer, "/")
		if rc.FeedURL == "" {
			rc.FeedURL = base + revocation.FeedPath
		}
		if rc.TokenURL == "" {
			rc.TokenURL = base + "/oauth2/token"
		}
		if s.Revocations, err = NewRevocationFollower(rc, clock, log); err != nil {
			return nil, err
		}
		dcfg.Revocations = s.Revocations
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "portcullis_authz_revocation_staleness_seconds",
			Help: "Seconds since the revocation feed last answered (0 before the first answer).",
		}, func() float64 { return s.Revocations.Staleness().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "portcullis_authz_revocation_entries",
				Help: "Revocations in the live set.",
			}, func() float64 { return float64(s.Revocations.Current().Len()) }))
	}
	decider := NewDecider(s.Policies, s.Verifier, s.Users, dcfg)
	if s.tracing, err = telemetry.Start(context.Background(), cfg.Tracing, "portcullis-authz", log); err != nil {
		return nil, err
	}
	scfg := ServiceConfig{
		CheckTimeout: cfg.CheckTimeout, AllowSampleRate: cfg.DecisionLog.AllowSampleRate,
		DenialsPerInterval: cfg.DecisionLog.DenialsPerInterval, DenialInterval: cfg.DecisionLog.Interval,
	}
	if s.tracing.Enabled {
		scfg.Tracer, scfg.Propagator = s.tracing.Provider.Tracer(tracerName), s.tracing.Propagator
	}
	s.Service = NewService(decider, scfg, clock, log, m)

	if s.grpcListener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if s.adminListener, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		s.grpcListener.Close()
		return nil, fmt.Errorf("admin_listen: %w", err)
	}
	if cfg.HTTP.Listen != "" {
		if s.httpHandler, err = NewHTTPHandler(s.Service, cfg.HTTP); err == nil {
			s.httpListener, err = net.Listen("tcp", cfg.HTTP.Listen)
		}
		if err != nil {
			s.grpcListener.Close()
			s.adminListener.Close()
			return nil, fmt.Errorf("http.listen: %w", err)
		}
	}
	return s, nil
}

// registerCacheMetrics exposes the caches' hits and misses as counters, so a
// hit rate over any window is rate(hits) / (rate(hits) + rate(misses)).
func registerCacheMetrics(reg prometheus.Registerer, v *Verifier, d *CachedDirectory) {
	counter := func(name, help string, stats func() (uint64, uint64), hits bool) prometheus.CounterFunc {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			h, m := stats()
			if hits {
				return float64(h)
			}
			return float64(m)
		})
	}
	reg.MustRegister(
		counter("portcullis_authz_token_cache_hits_total", "Verified-token cache lookups that found the token.", v.CacheStats, true),
		counter("portcullis_authz_token_cache_misses_total", "Verified-token cache lookups that did not.", v.CacheStats, false),
		counter("portcullis_authz_user_cache_hits_total", "User cache lookups that found the user.", d.CacheStats, true),
		counter("portcullis_authz_user_cache_misses_total", "User cache lookups that did not.", d.CacheStats, false),
	)
}

// GRPCAddr is the address of the Check service.
func (s *Server) GRPCAddr() net.Addr { return s.grpcListener.Addr() }

// AdminAddr is the address of the admin HTTP server.
func (s *Server) AdminAddr() net.Addr { return s.adminListener.Addr() }

// HTTPAddr is the address of the HTTP authorization listener, nil when
// it is off.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpListener == nil {
		return nil
	}
	return s.httpListener.Addr()
}

// Ready reports whether authz can decide: a policy and the issuer's keys
// are loaded, and the revocation live set has arrived (and, with on_stale:
// not-ready, is fresh enough).
func (s *Server) Ready() bool {
	return s.Policies.Current() != nil && s.Keys.Ready() && (s.Revocations == nil || s.Revocations.Ready())
}

// Run serves until ctx ends, then stops gracefully: it reports NOT_SERVING,
// lets in-flight checks finish (within shutdown_timeout) and closes.
func (s *Server) Run(ctx context.Context) error {
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	defer s.Verifier.Close()
	defer s.Users.Close()
	s.Keys.Start(bg)
	go s.Policies.Run(bg)
	if s.Shadow != nil {
		go s.Shadow.Run(bg)
	}
	if s.fileDir != nil {
		go s.fileDir.Run(bg)
	}
	if s.Revocations != nil {
		go s.Revocations.Run(bg)
	}

	grpcServer := newGRPCServer(s.Service)
	s.health = health.NewServer()
	s.setServing(false)
	healthpb.RegisterHealthServer(grpcServer, s.health)
	reflection.Register(grpcServer)

	admin := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 3)
	go func() { errc <- grpcServer.Serve(s.grpcListener) }()
	go func() { errc <- admin.Serve(s.adminListener) }()
	var checks *http.Server
	if s.httpListener != nil {
		checks = s.newHTTPServer()
		go func() { errc <- checks.Serve(s.httpListener) }()
		s.log.Info("authz answering HTTP authorization requests", "http", s.httpListener.Addr().String(), "mode", s.cfg.HTTP.Mode, "trusted_proxies", s.cfg.HTTP.TrustedProxies)
	}
	go s.trackReadiness(bg)
	go s.Service.RunLogFlusher(bg)
	s.log.Info("authz listening", "grpc", s.grpcListener.Addr().String(), "admin", s.adminListener.Addr().String())

	var runErr error
	select {
	case err := <-errc:
		runErr = fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("authz shutting down; finishing in-flight checks")
	s.setServing(false)
	stopped := make(chan struct{})
	go func() {
		grpcServer.GracefulStop()
		if checks != nil {
			// Its in-flight checks finish; idle keep-alive connections close.
			_ = checks.Shutdown(context.Background())
		}
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("shutdown timeout: closing remaining connections")
		grpcServer.Stop()
		if checks != nil {
			checks.Close()
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = admin.Shutdown(shutdownCtx)
	if err := s.tracing.Shutdown(context.Background()); err != nil {
		s.log.Warn("tracing shutdown", "err", err)
	}
	return runErr
}

// newGRPCServer returns a gRPC server with svc as its Authorization
// service. Check reads its requests' wire bytes and encodes its answers
// itself (checkwire.go), through its own codec and service descriptor
// rather than the generated ones; the codec is protobuf for every other
// message.
func newGRPCServer(svc *Service) *grpc.Server {
	srv := grpc.NewServer(append(GRPCServerOptions(), grpc.ForceServerCodecV2(newCheckCodec()))...)
	srv.RegisterService(&checkServiceDesc, svc)
	return srv
}

// newHTTPServer returns the server of the HTTP authorization listener.
func (s *Server) newHTTPServer() *http.Server {
	return HTTPServer(s.httpHandler, s.cfg.HTTP.MaxHeaderBytes, s.log)
}

// HTTPServer is the HTTP server of the HTTP authorization listener around
// h; the load tool's always-200 floor uses it too, so both are measured on
// the same server. Its peers are proxies holding keep-alive connections;
// each check is bounded by check_timeout like a gRPC Check.
func HTTPServer(h http.Handler, maxHeaderBytes int, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// GRPCServerOptions are the gRPC server settings of authz; the load tool's
// baseline server uses them too, so both are measured on the same stack.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// A CheckRequest is a few KB; refuse anything absurd.
		grpc.MaxRecvMsgSize(1 << 20),
	}
}

func (s *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
}

func (s *Server) trackReadiness(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ready := s.Ready(); ready != last {
				s.setServing(ready)
				s.log.Info("readiness changed", "ready", ready)
				last = ready
			}
		}
	}
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var problems []error
		if s.Policies.Current() == nil {
			problems = append(problems, errors.New("no policy loaded"))
		}
		if !s.Keys.Ready() {
			problems = append(problems, errors.New("issuer keys not fetched"))
		}
		if s.Revocations != nil && !s.Revocations.Ready() {
			problems = append(problems, fmt.Errorf("revocation live set not received or stale (%s)", s.Revocations.Staleness().Round(time.Second)))
		}
		if len(problems) > 0 {
			http.Error(w, "not ready: "+errors.Join(problems...).Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\nversion: "+buildinfo.Get().String()+"\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	if s.cfg.AdminPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
