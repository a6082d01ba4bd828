package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/portcullis/portcullis/revocation"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// CompareOptions configures a comparison of authz with the always-OK
// baseline under the same load.
type CompareOptions struct {
	// Structured, when set, receives the result as data instead of the
	// report for people.
	Structured func(Summary) error

	Duration, Warmup time.Duration
	Concurrency      int
	Tokens, Users    int
	Mix              Mix
	// Algorithm signs the workload's tokens: EdDSA or ES256.
	Algorithm jwa.SignatureAlgorithm
	// Policy is the policy authz loads.
	Policy         string
	CacheMaxTokens int
	// Baseline also measures the always-OK server.
	Baseline bool
	// HTTP drives authz's HTTP authorization listener (mode forward-auth,
	// as Caddy asks) instead of its gRPC Check, and the always-200 HTTP
	// server on the same HTTP server as the baseline.
	HTTP bool
	// Repeat is how many rounds measure every server once each, in an
	// order that rotates from round to round, so that a change in the
	// machine's load falls on all of them alike.
	Repeat int
	// MaxNoise is the share of the machine's CPU that other processes may
	// take during a measurement (read from /proc/stat); a noisier one is
	// measured again, up to twice, and marked noisy if it stays so.
	MaxNoise float64
	// SampleEvery, when positive, samples authz's memory and goroutines (a soak).
	SampleEvery time.Duration
	// Revocations, when positive, also measures an authz that follows a
	// revocation feed holding this many entries (none of which refuses the
	// workload's tokens), in the same run.
	Revocations int
	// Tracing also measures an authz with tracing on, sampling none of the
	// load's requests (they carry no trace context): the cost of spans that
	// are made but not recorded.
	Tracing bool
	// Flood, when positive, also measures authz while this many workers
	// send it forged tokens as fast as it answers: the workload's tokens
	// with random signatures, each new.
	Flood int
	// ProfileDir, when set, takes a CPU profile of every server during
	// each of its measurements, writes it there, and reports the share of
	// each server's CPU the garbage collector spent marking.
	ProfileDir string
	// AuthzBinary, when set, is the authz binary to measure ("serve", with
	// its configuration in the environment) instead of this binary's own
	// copy of authz: the same code, in the process operators run, whose
	// memory is authz's alone.
	AuthzBinary string
	// Self runs a server in its own process: Self(BaselineServer, "--listen",
	// addr) and Self(AuthzServer) with authz's configuration in the
	// environment. The caller's binary provides both hidden commands.
	Self func(args ...string) *exec.Cmd
}

// The hidden commands a binary offers for Compare's server processes.
const (
	BaselineServer = "load-baseline"
	AuthzServer    = "load-authz"
)

// server is one server process under measurement.
type server struct {
	name, addr string
	// metrics is its Prometheus endpoint (the baseline's has Go runtime
	// metrics only), profile its CPU profiler.
	metrics, profile string
	proc             *child
	client           authv3.AuthorizationClient
	conn             *grpc.ClientConn
	// overHTTP: addr is an HTTP authorization listener.
	overHTTP bool
}

// measurement is one row of the report: a server, with or without a flood.
type measurement struct {
	name  string
	srv   *server
	flood bool
}

// Compare measures authz against an always-OK baseline server on the same
// gRPC stack, each in its own process (so CPU per check is the server's own,
// read from /proc), with the same load from this process, in interleaved
// rounds, and reports each round's ratios.
func Compare(ctx context.Context, o CompareOptions, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "portcullis-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	iss, err := NewIssuer(o.Algorithm)
	if err != nil {
		return err
	}
	defer iss.Close()
	fmt.Fprintf(stderr, "minting %d %s tokens and %d users...\n", o.Tokens, o.Algorithm, o.Users)
	w, err := BuildWorkload(iss, o.Mix, o.Tokens, o.Users, dir)
	if err != nil {
		return err
	}
	if o.Revocations > 0 {
		iss.Revoke(o.Revocations)
	}

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var plan []measurement
	if o.Baseline {
		s, err := startBaseline(o)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		plan = append(plan, measurement{name: "baseline", srv: s})
	}
	az, err := startAuthz(o, "authz", iss, w, nil)
	if err != nil {
		return err
	}
	servers = append(servers, az)
	plan = append(plan, measurement{name: "authz", srv: az})
	if o.Revocations > 0 {
		s, err := startAuthz(o, "authz+revocations", iss, w, []string{
			"PORTCULLIS_AUTHZ_REVOCATION_ENABLED=true", "PORTCULLIS_AUTHZ_REVOCATION_FEED_URL=" + iss.JWKSURL + revocation.FeedPath,
			"PORTCULLIS_AUTHZ_REVOCATION_TOKEN_URL=" + iss.JWKSURL + "/oauth2/token",
			"PORTCULLIS_AUTHZ_REVOCATION_CLIENT_ID=load", "PORTCULLIS_AUTHZ_REVOCATION_CLIENT_SECRET=load",
			"PORTCULLIS_AUTHZ_REVOCATION_WAIT=5s",
		})
		if err != nil {
			return err
		}
		servers = append(servers, s)
		plan = append(plan, measurement{name: "authz+revocations", srv: s})
	}
	if o.Tracing {
		s, err := startAuthz(o, "authz+tracing", iss, w, []string{
			"PORTCULLIS_AUTHZ_TRACING_ENABLED=true", "PORTCULLIS_AUTHZ_TRACING_ENDPOINT=127.0.0.1:4317", "PORTCULLIS_AUTHZ_TRACING_SAMPLE_RATIO=0",
		})
		if err != nil {
			return err
		}
		servers = append(servers, s)
		plan = append(plan, measurement{name: "authz+tracing", srv: s})
	}
	if o.Flood > 0 {
		plan = append(plan, measurement{name: "authz+flood", srv: az, flood: true})
	}

	opts := Options{Duration: o.Duration, Concurrency: o.Concurrency}
	// When the cache can hold every token, every server sees every request
	// once before it is measured: the cache is full, as in the long run.
	// (A workload of more tokens than the cache holds measures misses.)
	pass := 0
	if o.Tokens <= o.CacheMaxTokens {
		pass = w.Len()
	}
	for _, s := range servers {
		fmt.Fprintf(stderr, "warming %s up: %s and %d requests at least...\n", s.name, o.Warmup, pass)
		if err := warmUp(ctx, s.client, w, o.Warmup, pass, o.Concurrency); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}

	rounds := make([][]Result, max(o.Repeat, 1))
	for r := range rounds {
		rounds[r] = make([]Result, len(plan))
		for k := range plan {
			i := (k + r) % len(plan) // rotate the order from round to round
			m := plan[i]
			res, err := measureQuietly(ctx, m, w, opts, o, stderr, r+1, len(rounds))
			if err != nil {
				return err
			}
			if m.srv.metrics != "" {
				res.HeapInUse, _ = scrapeGauge(m.srv.metrics, "go_memstats_heap_inuse_bytes")
				res.LiveHeap, _ = scrapeGauge(m.srv.metrics, "go_gc_heap_live_bytes")
			}
			rounds[r][i] = res
		}
	}
	if o.Structured != nil {
		return o.Structured(Summarize(o, rounds))
	}
	fmt.Fprintf(stdout, "mix %s, %d distinct %s tokens, %d users, concurrency %d, %d rounds of %s per server\n\n",
		o.Mix, o.Tokens, o.Algorithm, o.Users, o.Concurrency, len(rounds), o.Duration)
	ReportRounds(stdout, rounds)
	return nil
}

func startBaseline(o CompareOptions) (*server, error) {
	return startOnFreePorts("baseline", func(addr, metricsAddr string) (*server, error) {
		proc, err := start(o.Self(BaselineServer, "--listen", addr, "--metrics", metricsAddr, "--http="+strconv.FormatBool(o.HTTP)), nil, os.Stderr)
		if err != nil {
			return nil, err
		}
		s := &server{name: "baseline", addr: addr, metrics: "http://" + metricsAddr + "/metrics", profile: "http://" + metricsAddr + ProfilePath, proc: proc, overHTTP: o.HTTP}
		// The baseline binds its gRPC address before it serves metrics.
		if err := proc.waitReady(s.metrics); err != nil {
			s.stop()
			return nil, fmt.Errorf("baseline server: %w", err)
		}
		return s, s.dial()
	})
}

// startAuthz runs authz in its own process, configured for the workload
// (and by extra settings).
func startAuthz(o CompareOptions, name string, iss *Issuer, w *Workload, extra []string) (*server, error) {
	return startOnFreePorts(name, func(grpcAddr, adminAddr string) (*server, error) {
		return startAuthzOn(o, name, iss, w, extra, grpcAddr, adminAddr)
	})
}

func startAuthzOn(o CompareOptions, name string, iss *Issuer, w *Workload, extra []string, grpcAddr, adminAddr string) (*server, error) {
	cmd := o.Self(AuthzServer)
	if o.AuthzBinary != "" {
		cmd = exec.Command(o.AuthzBinary, "serve")
	}
	checkAddr := grpcAddr
	if o.HTTP {
		httpAddr, err := freePort()
		if err != nil {
			return nil, err
		}
		checkAddr = httpAddr
		extra = append([]string{"PORTCULLIS_AUTHZ_HTTP_LISTEN=" + httpAddr, "PORTCULLIS_AUTHZ_HTTP_MODE=forward-auth"}, extra...)
	}
	proc, err := start(cmd, append([]string{
		"PORTCULLIS_AUTHZ_LISTEN=" + grpcAddr, "PORTCULLIS_AUTHZ_ADMIN_LISTEN=" + adminAddr,
		"PORTCULLIS_AUTHZ_POLICY=" + o.Policy, "PORTCULLIS_AUTHZ_LOG_LEVEL=warn",
		"PORTCULLIS_AUTHZ_TOKEN_ISSUER=" + iss.URL, "PORTCULLIS_AUTHZ_TOKEN_AUDIENCE=" + Audience,
		"PORTCULLIS_AUTHZ_TOKEN_JWKS_URL=" + iss.JWKSURL, "PORTCULLIS_AUTHZ_TOKEN_ALGORITHMS=" + iss.Algorithm.String(),
		"PORTCULLIS_AUTHZ_TOKEN_CACHE_MAX_TOKENS=" + strconv.Itoa(o.CacheMaxTokens),
		"PORTCULLIS_AUTHZ_USERS_SOURCE=file", "PORTCULLIS_AUTHZ_USERS_FILE=" + w.UsersFile,
		"PORTCULLIS_AUTHZ_USERS_CACHE_MAX_USERS=" + strconv.Itoa(max(o.Users, 1000)),
		"PORTCULLIS_AUTHZ_ADMIN_PPROF=" + strconv.FormatBool(o.ProfileDir != ""),
	}, extra...), os.Stderr)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: checkAddr, metrics: "http://" + adminAddr + "/metrics", profile: "http://" + adminAddr + ProfilePath, proc: proc, overHTTP: o.HTTP}
	if err := proc.waitReady("http://" + adminAddr + "/readyz"); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, s.dial()
}

func (s *server) dial() error {
	if s.overHTTP {
		s.client = newHTTPCheckClient(s.addr, 256)
		return nil
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	s.conn, s.client = conn, authv3.NewAuthorizationClient(conn)
	return nil
}

func (s *server) stop() {
	if s.conn != nil {
		s.conn.Close()
	}
	if c, ok := s.client.(*httpCheckClient); ok {
		c.closeIdle()
	}
	s.proc.stop()
}

// warmUp drives the workload for d, and on until at least requests were sent.
func warmUp(ctx context.Context, client authv3.AuthorizationClient, w *Workload, d time.Duration, requests, concurrency int) error {
	start := time.Now()
	for sent := 0; sent < requests || time.Since(start) < d; {
		res, err := drive(ctx, client, w, max(d-time.Since(start), time.Second), concurrency, true)
		if err != nil {
			return err
		}
		sent += int(res.Checks)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// measureQuietly measures m, again when other processes took more than
// o.MaxNoise of the machine meanwhile (up to twice more).
func measureQuietly(ctx context.Context, m measurement, w *Workload, opts Options, o CompareOptions, stderr io.Writer, roundNo, rounds int) (Result, error) {
	round := fmt.Sprintf("round %d/%d", roundNo, rounds)
	cores := float64(runtime.NumCPU())
	var res Result
	for attempt := 0; attempt < 3; attempt++ {
		busyBefore, errBusy := MachineBusy()
		selfBefore, errSelf := ProcessCPU(os.Getpid())
		opts.ServerPID = m.srv.proc.cmd.Process.Pid
		if m.name == "authz" && o.SampleEvery > 0 {
			opts.SampleEvery, opts.Samples = o.SampleEvery, stderr
			opts.Gauge = func(name string) (float64, error) { return scrapeGauge(m.srv.metrics, name) }
		}
		fmt.Fprintf(stderr, "%s: measuring %s for %s...\n", round, m.name, opts.Duration)
		var flood *floodStats
		stopFlood := func() {}
		if m.flood {
			flood, stopFlood = startFlood(ctx, m.srv.client, w, o.Flood)
		}
		var prof *profiling
		if o.ProfileDir != "" {
			prof = startProfile(ctx, m.srv.profile, opts.Duration)
		}
		gcBefore, errGC := scrapeGauge(m.srv.metrics, gcCPUMetric)
		r, err := Run(ctx, m.name, m.srv.client, w, opts)
		stopFlood()
		if prof != nil {
			path := filepath.Join(o.ProfileDir, fmt.Sprintf("%s-round%d.pprof", strings.ReplaceAll(m.name, "+", "-"), roundNo))
			var errProfile error
			if r.MarkShare, errProfile = saveProfile(prof, path); errProfile != nil {
				fmt.Fprintf(stderr, "%s: no CPU profile of %s: %v\n", round, m.name, errProfile)
			}
		}
		if gcAfter, errGC2 := scrapeGauge(m.srv.metrics, gcCPUMetric); errGC == nil && errGC2 == nil && r.ServerCPU > 0 {
			r.GCShare = (gcAfter - gcBefore) / r.ServerCPU.Seconds()
		}
		if err != nil {
			return Result{}, err
		}
		if flood != nil {
			r.Flood = flood.result()
		}
		busyAfter, errBusy2 := MachineBusy()
		selfAfter, errSelf2 := ProcessCPU(os.Getpid())
		res = r
		if errors.Join(errBusy, errSelf, errBusy2, errSelf2) != nil {
			return res, nil // no /proc/stat: no guard
		}
		others := (busyAfter - busyBefore) - (selfAfter - selfBefore) - r.ServerCPU
		res.Noise = max(others.Seconds(), 0) / (cores * r.Duration.Seconds())
		if res.Noise <= o.MaxNoise {
			return res, nil
		}
		fmt.Fprintf(stderr, "%s: other processes took %.0f%% of the machine while %s was measured; measuring again\n", round, 100*res.Noise, m.name)
	}
	res.Noisy = true
	return res, nil
}

// gcCPUMetric is authz's garbage collector CPU time (Go runtime metric
// /cpu/classes/gc/total:cpu-seconds, an estimate the runtime keeps).
const gcCPUMetric = "go_cpu_classes_gc_total_cpu_seconds_total"

// floodStats counts what the forged tokens got.
type floodStats struct {
	sent, allowed, shed, refused, errors atomic.Int64
}

// FloodResult is what a flood of forged tokens got from authz.
type FloodResult struct {
	Sent, Allowed, Shed, Refused, Errors int64
}

func (f *floodStats) result() *FloodResult {
	return &FloodResult{Sent: f.sent.Load(), Allowed: f.allowed.Load(), Shed: f.shed.Load(), Refused: f.refused.Load(), Errors: f.errors.Load()}
}

// startFlood sends forged tokens from workers until the returned stop is
// called: the workload's requests with each token's signature replaced by
// random bytes, so every one is new to authz and costs it a full check.
func startFlood(ctx context.Context, client authv3.AuthorizationClient, w *Workload, workers int) (*floodStats, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stats := &floodStats{}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; ctx.Err() == nil; i += workers {
				req := w.Forged(i % w.Len())
				if req == nil {
					continue
				}
				resp, err := check(ctx, client, req)
				stats.sent.Add(1)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						stats.errors.Add(1)
					}
				case resp.GetOkResponse() != nil:
					stats.allowed.Add(1)
				case resp.GetDeniedResponse().GetStatus().GetCode() == 503:
					stats.shed.Add(1)
				default:
					stats.refused.Add(1)
				}
			}
		}()
	}
	return stats, func() { cancel(); wg.Wait() }
}

// child is a server process the load tool started.
type child struct {
	cmd *exec.Cmd
	// exited is closed once the process has exited.
	exited chan struct{}
}

// errExited is a server that exited before it was ready.
var errExited = errors.New("exited before it was ready")

func start(cmd *exec.Cmd, env []string, stderr io.Writer) (*child, error) {
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop asks the process to end, and kills it if it has not within 5 s.
func (c *child) stop() {
	if !c.running() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// waitReady polls url until it answers 200, while the process runs. A
// process that exits meanwhile fails with errExited, and so does one that
// has exited by the time url answered: then it was another process that
// answered on its port.
func (c *child) waitReady(url string) error {
	deadline := time.After(15 * time.Second)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	// A probe is bounded, and ends when the process does: whatever holds the
	// port may accept and never answer.
	probe := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for {
		if resp, err := probe.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && c.running() {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%w (exit status %d)", errExited, c.cmd.ProcessState.ExitCode())
		case <-deadline:
			return fmt.Errorf("not ready at %s after 15s", url)
		case <-poll.C:
		}
	}
}

// startOnFreePorts starts a server on two ports that were free a moment
// before. Between freePort closing a port and the server binding it, any
// process on the machine may take it; the server then exits at once
// ("address already in use"), and it is started again on two other ports.
func startOnFreePorts(name string, launch func(addr, other string) (*server, error)) (*server, error) {
	for attempt := 1; ; attempt++ {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		other, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(addr, other)
		if !errors.Is(err, errExited) || attempt == 3 {
			return s, err
		}
		fmt.Fprintf(os.Stderr, "%s: %v; starting it again on other ports\n", name, err)
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrapeGauge reads one unlabelled gauge from a Prometheus text endpoint.
func scrapeGauge(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", name, url)
}
