package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/adminapi"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/limit"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
	"github.com/portcullis/portcullis/tokenissuer/portal"
	"github.com/portcullis/portcullis/tokenissuer/secretscan"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/portcullis/portcullis/internal/buildinfo"
	"github.com/portcullis/portcullis/internal/telemetry"
)

// openPostgresRetrying opens the PostgreSQL store, retrying with a growing
// pause for store.connect_timeout: a database that starts beside the issuer
// (compose, a Kubernetes rollout) is often not accepting connections yet,
// and an issuer that exits at once only adds a restart loop.
func openPostgresRetrying(ctx context.Context, cfg StoreConfig, clock tokenissuer.Clock) (*sqlstore.PostgresStore, error) {
	deadline := clock.Now().Add(cfg.ConnectTimeout)
	pause := 250 * time.Millisecond
	for {
		s, err := sqlstore.OpenPostgres(ctx, cfg.PostgresDSN)
		if err == nil || ctx.Err() != nil || clock.Now().Add(pause).After(deadline) {
			if err != nil && cfg.ConnectTimeout > 0 {
				err = fmt.Errorf("%w (tried for store.connect_timeout, %s)", err, cfg.ConnectTimeout)
			}
			return s, err
		}
		if err := limit.Sleep(ctx, clock, pause); err != nil {
			return nil, err
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// OpenStore opens the store the configuration selects, and gives tenants
// that clients name but that have no record yet one (stores written before
// tenants were records).
func OpenStore(ctx context.Context, cfg StoreConfig, clock tokenissuer.Clock) (tokenissuer.Store, error) {
	var s tokenissuer.Store
	var err error
	switch cfg.Driver {
	case "sqlite":
		s, err = sqlstore.OpenSQLite(ctx, cfg.SQLitePath)
	case "postgres":
		s, err = openPostgresRetrying(ctx, cfg, clock)
	default:
		return nil, fmt.Errorf("store.driver %q is not supported by this build", cfg.Driver)
	}
	if err != nil {
		return nil, err
	}
	if err := tokenissuer.EnsureTenantRecords(ctx, s, clock); err != nil {
		s.Close()
		return nil, fmt.Errorf("tenant records: %w", err)
	}
	return s, nil
}

// LoadHasher returns the secret hasher keyed as the configuration says.
func LoadHasher(cfg StoreConfig) (*tokenissuer.SecretHasher, error) {
	var key []byte
	var err error
	if cfg.SecretHashKey != "" {
		key, err = tokenissuer.DecodeHashKey(cfg.SecretHashKey)
		if err != nil {
			return nil, fmt.Errorf("store.secret_hash_key: %w", err)
		}
	} else if key, err = tokenissuer.LoadOrCreateHashKey(cfg.SecretHashKeyFile); err != nil {
		return nil, fmt.Errorf("store.secret_hash_key_file: %w", err)
	}
	return tokenissuer.NewSecretHasher(key)
}

// NewKeyManagerFor builds the keys.Manager the configuration describes.
// Private keys are always encrypted at rest: with no key-encryption key
// configured, an SQLite issuer creates one beside its secret hashing key.
func NewKeyManagerFor(cfg Config, store keys.Store, clock tokenissuer.Clock, log *slog.Logger) (*keys.Manager, error) {
	enc, err := keys.LoadEncrypter(cfg.Keys.EncryptionKey, cfg.Keys.EncryptionKeyFile)
	if err != nil {
		return nil, err
	}
	if enc == nil && cfg.Store.Driver == "sqlite" {
		file := DefaultKeyEncryptionKeyFile(cfg.Store)
		var created bool
		if enc, created, err = keys.LoadOrCreateEncrypter(file); err != nil {
			return nil, err
		}
		if created {
			log.Info("created a key-encryption key for the signing keys; keep it apart from database backups", "path", file)
		}
	}
	return keys.NewManager(store, keys.Config{
		Algorithm: cfg.Keys.Algorithm, PublishDelay: cfg.Keys.PublishDelay, MaxTokenLifetime: cfg.Tokens.MaxLifetime,
		RotateEvery: cfg.Keys.RotateEvery, Encrypter: enc,
	}, clock, log)
}

// Services is the issuer's service layer over its store, built the same way
// for the server and for every management command.
type Services struct {
	Store  tokenissuer.Store
	Hasher *tokenissuer.SecretHasher
	// Keys are the signing keys, not loaded yet (Load reads them).
	Keys     *keys.Manager
	Admin    *tokenissuer.Admin
	Accounts *tokenissuer.Accounts
}

// OpenServices opens the store the configuration selects and builds the
// service layer over it. Close closes the store.
func OpenServices(ctx context.Context, cfg Config, clock tokenissuer.Clock, log *slog.Logger) (*Services, error) {
	hasher, err := LoadHasher(cfg.Store)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(ctx, cfg.Store, clock)
	if err != nil {
		return nil, err
	}
	km, err := NewKeyManagerFor(cfg, store, clock, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	admin := tokenissuer.NewAdmin(store, hasher, clock, cfg.AdminLimits())
	accounts, err := tokenissuer.NewAccounts(admin, store, km.Encrypter(), clock, cfg.AccountsConfig(), log)
	if err != nil {
		store.Close()
		return nil, err
	}
	return &Services{Store: store, Hasher: hasher, Keys: km, Admin: admin, Accounts: accounts}, nil
}

// Close closes the store.
func (s *Services) Close() error { return s.Store.Close() }

// Server is a running issuer: store, keys and HTTP server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	clock     tokenissuer.Clock
	admin     *tokenissuer.Admin
	Store     tokenissuer.Store
	Keys      *keys.Manager
	Endpoints *oauth2.Endpoints
	Hasher    *tokenissuer.SecretHasher
	// Accounts is the service of portal accounts.
	Accounts *tokenissuer.Accounts
	listener net.Listener
	// adminListener serves the admin API and the portal, apart from the
	// public endpoints.
	adminListener net.Listener
	adminHandler  http.Handler
	// publicHandler serves the token endpoint and what else is public.
	publicHandler http.Handler
	// Tracing traces token requests and admin calls (a no-op when off).
	Tracing *telemetry.Tracing
}

// NewServer opens the store, loads (or creates) the signing keys and binds
// the listener, so that configuration and port errors surface at start-up.
func NewServer(ctx context.Context, cfg Config, clock tokenissuer.Clock, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	svc, err := OpenServices(ctx, cfg, clock, log)
	if err != nil {
		return nil, err
	}
	var closers []io.Closer
	fail := func(err error) (*Server, error) {
		for _, c := range slices.Backward(closers) {
			c.Close()
		}
		svc.Close()
		return nil, err
	}
	if err := svc.Keys.Load(ctx); err != nil {
		return fail(fmt.Errorf("load signing keys: %w", err))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector("issuer"))
	endpoints, err := oauth2.NewEndpoints(cfg.Endpoints(), svc.Store, svc.Admin, svc.Keys, svc.Hasher, clock, log, reg)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	closers = append(closers, ln)
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return fail(fmt.Errorf("admin_listen: %w", err))
	}
	closers = append(closers, adminLn)
	tracing, err := telemetry.Start(ctx, cfg.Tracing, "portcullis-issuer", log)
	if err != nil {
		return fail(err)
	}
	s := &Server{cfg: cfg, log: log, clock: clock, admin: svc.Admin, Store: svc.Store, Keys: svc.Keys, Endpoints: endpoints, Hasher: svc.Hasher,
		Accounts: svc.Accounts, listener: ln, adminListener: adminLn, Tracing: tracing}
	if s.adminHandler, err = s.adminMux(); err != nil {
		return fail(err)
	}
	s.publicHandler = endpoints.Handler()
	if cfg.SecretScanning.Enabled() {
		scan, err := secretscan.New(ctx, cfg.SecretScanning, svc.Admin, clock, log, endpoints.ClientAddress)
		if err != nil {
			return fail(err)
		}
		mux := http.NewServeMux()
		mux.Handle(secretscan.Path, scan)
		mux.Handle("/", s.publicHandler)
		s.publicHandler = mux
	}
	return s, nil
}

// adminMux serves the admin API under /admin/ and the portal under
// /portal/; a browser at the root is sent to the portal.
func (s *Server) adminMux() (http.Handler, error) {
	p, err := portal.New(s.admin, s.Accounts, s.Keys, portal.Options{
		SecureCookies: s.cfg.Portal.SecureCookies,
		BaseURL:       s.PortalURL(),
		TokenEndpoint: strings.TrimSuffix(s.cfg.Issuer, "/") + "/oauth2/token",
		ClientLimits:  s.Endpoints.ClientLimits,
		ClientAddress: s.Endpoints.ClientAddress,
		TokenLifetime: s.cfg.Tokens.Lifetime, MaxTokenLifetime: s.cfg.Tokens.MaxLifetime,
		Log: s.log,
	})
	if err != nil {
		return nil, err
	}
	api := adminapi.New(s.admin, s.Store, s, s.Keys, s.log).
		People(s.Accounts, func(token string) string { return portal.InvitationLink(s.PortalURL(), token) }).Handler()
	mux := http.NewServeMux()
	mux.Handle("/admin/", api)
	mux.Handle("/portal/", p.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler("/portal/", http.StatusSeeOther))
	// Browsers ask for /favicon.ico whatever the page says: the portal's icon.
	mux.Handle("GET /favicon.ico", http.RedirectHandler("/portal/static/favicon.svg", http.StatusMovedPermanently))
	mux.Handle("/", api) // the API's own RFC 9457 not-found
	return mux, nil
}

// housekeeping forgets failure windows that have ended (so the limiters do
// not grow with every client ID and address an attacker tried) and audit
// records past audit.retention.
func (s *Server) housekeeping(ctx context.Context) {
	window := max(s.cfg.RateLimit.Window, time.Minute)
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Endpoints.PruneLimiters()
			if err := s.Store.PruneFailures(ctx, s.clock.Now().Add(-window)); err != nil {
				s.log.Warn("pruning failure counts failed", "err", err)
			}
			if err := s.Store.PruneAudit(ctx, s.clock.Now().Add(-s.cfg.Audit.Retention)); err != nil {
				s.log.Warn("pruning the audit trail failed", "err", err)
			}
			if err := s.Store.PruneAssertionIDs(ctx, s.clock.Now()); err != nil {
				s.log.Warn("pruning expired client assertion IDs failed", "err", err)
			}
			if err := s.Store.PruneRevocations(ctx, s.clock.Now()); err != nil {
				s.log.Warn("pruning expired revocations failed", "err", err)
			}
			if err := s.Accounts.Prune(ctx); err != nil {
				s.log.Warn("pruning portal sessions and invitations failed", "err", err)
			}
			// The admin API's Idempotency-Keys are remembered for a day.
			if err := s.Store.PruneIdempotency(ctx, s.clock.Now().Add(-24*time.Hour)); err != nil {
				s.log.Warn("pruning idempotency keys failed", "err", err)
			}
		}
	}
}

// Admin returns client management on this issuer's store, with its rules.
func (s *Server) Admin() *tokenissuer.Admin {
	return s.admin
}

// Config is the configuration the server runs with.
func (s *Server) Config() Config { return s.cfg }

// PortalURL is where people reach the portal: portal.url, or the admin
// listener's actual address.
func (s *Server) PortalURL() string {
	if s.cfg.Portal.URL != "" {
		return s.cfg.PortalURL()
	}
	return "http://" + s.adminListener.Addr().String() + "/portal/"
}

// Addr is the address the HTTP server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Run serves until ctx ends, then shuts down gracefully: in-flight requests
// finish within the configured shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	defer s.Store.Close()
	defer s.Endpoints.Close()
	// Background work ends, and lets go of the store, before the store
	// closes: a loop still running would query a closed store, or reopen
	// an SQLite file being removed.
	var background sync.WaitGroup
	backgroundCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer background.Wait()
	defer stopBackground()
	for _, run := range []func(context.Context){
		func(ctx context.Context) { s.Keys.Run(ctx, s.cfg.Keys.ReloadInterval) },
		s.housekeeping,
		s.Endpoints.Feed.Run,
		func(ctx context.Context) { oauth2.FollowChanges(ctx, s.Store, s.Endpoints) },
		s.Endpoints.Usage.Run,
	} {
		background.Add(1)
		go func() {
			defer background.Done()
			run(backgroundCtx)
		}()
	}

	admin := s.adminHandler
	const scope = "github.com/portcullis/portcullis/tokenissuer"
	servers := []*http.Server{s.httpServer(s.Tracing.HTTPHandler(scope, s.publicHandler)), s.httpServer(s.Tracing.HTTPHandler(scope, admin))}
	// Held long polls and streams of the revocation feed end at once on
	// shutdown instead of holding it for their wait.
	servers[0].RegisterOnShutdown(s.Endpoints.Feed.Close)
	errc := make(chan error, len(servers))
	go func() { errc <- servers[0].Serve(s.listener) }()
	go func() { errc <- servers[1].Serve(s.adminListener) }()
	s.log.Info("issuer listening", "addr", s.listener.Addr().String(), "admin", s.adminListener.Addr().String(), "issuer", s.cfg.Issuer, "store", s.cfg.Store.Describe())

	var runErr error
	select {
	case err := <-errc:
		runErr = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("issuer shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && runErr == nil {
			runErr = fmt.Errorf("graceful shutdown: %w", err)
		}
	}
	// The last requests' uses, gathered since the last flush.
	if err := s.Endpoints.Usage.Flush(shutdownCtx); err != nil {
		s.log.Warn("recording when clients last got tokens failed at shutdown", "err", err)
	}
	if err := s.Tracing.Shutdown(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("tracing shutdown", "err", err)
	}
	return runErr
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// AdminAddr is the address of the admin listener.
func (s *Server) AdminAddr() net.Addr { return s.adminListener.Addr() }

// VerifyAccessToken verifies an access token this issuer minted, for the
// admin API.
func (s *Server) VerifyAccessToken(token string) (keys.AccessToken, error) {
	at, err := s.Keys.VerifyAccessToken(token, s.cfg.Issuer, s.clock.Now())
	if err != nil {
		return at, err
	}
	if e, revoked := s.Endpoints.Feed.Revoked(at); revoked {
		return keys.AccessToken{}, fmt.Errorf("%w: revoked (%s)", keys.ErrInvalidAccessToken, e.Cause)
	}
	return at, nil
}
