package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portcullis/portcullis/authz/loadtest"
)

// load measures authz against an always-OK baseline server on the same gRPC
// stack, each in its own process, with the same load from this process.
func load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load")
	duration := fs.Duration("duration", 20*time.Second, "measured time per server")
	warmup := fs.Duration("warmup", 3*time.Second, "unmeasured warm-up per server")
	concurrency := fs.Int("concurrency", 16, "concurrent requests in flight")
	tokens := fs.Int("tokens", 1000, "distinct tokens (clients get 10 each)")
	users := fs.Int("users", 1000, "users in the directory")
	mix := fs.String("mix", string(loadtest.MixRealistic), "request mix: realistic or allow-obo")
	policyPath := fs.String("policy", "examples/policy", "policy for authz")
	cacheTokens := fs.Int("cache-max-tokens", 100_000, "authz token.cache_max_tokens")
	baseline := fs.Bool("baseline", true, "also measure the always-OK baseline")
	sampleEvery := fs.Duration("sample", 0, "soak: sample authz's memory and goroutines this often (e.g. 10s)")
	if err := fs.Parse(args); err != nil {
		return usageError{Msg: err.Error()}
	}
	if *duration <= 0 || *duration > time.Hour || *concurrency < 1 {
		return usageError{Msg: "load: duration must be in (0, 1h] and concurrency at least 1"}
	}
	dir, err := os.MkdirTemp("", "portcullis-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	iss, err := loadtest.NewIssuer()
	if err != nil {
		return err
	}
	defer iss.Close()
	fmt.Fprintf(stderr, "minting %d tokens and %d users...\n", *tokens, *users)
	w, err := loadtest.BuildWorkload(iss, loadtest.Mix(*mix), *tokens, *users, dir)
	if err != nil {
		return err
	}
	opts := loadtest.Options{Duration: *duration, Warmup: *warmup, Concurrency: *concurrency}
	var results []loadtest.Result

	if *baseline {
		addr, err := freePort()
		if err != nil {
			return err
		}
		proc, err := spawn(stderr, []string{"load-baseline", "--listen", addr}, nil)
		if err != nil {
			return err
		}
		defer stopProcess(proc)
		if err := waitTCP(addr); err != nil {
			return fmt.Errorf("baseline server: %w", err)
		}
		res, err := runAgainst(ctx, "baseline", addr, proc.Process.Pid, w, opts, stderr)
		if err != nil {
			return err
		}
		results = append(results, res)
		stopProcess(proc)
	}

	grpcAddr, err := freePort()
	if err != nil {
		return err
	}
	adminAddr, err := freePort()
	if err != nil {
		return err
	}
	proc, err := spawn(stderr, []string{"serve"}, []string{
		"PORTCULLIS_AUTHZ_LISTEN=" + grpcAddr, "PORTCULLIS_AUTHZ_ADMIN_LISTEN=" + adminAddr,
		"PORTCULLIS_AUTHZ_POLICY=" + *policyPath, "PORTCULLIS_AUTHZ_LOG_LEVEL=warn",
		"PORTCULLIS_AUTHZ_TOKEN_ISSUER=" + iss.URL, "PORTCULLIS_AUTHZ_TOKEN_AUDIENCE=" + loadtest.Audience,
		"PORTCULLIS_AUTHZ_TOKEN_JWKS_URL=" + iss.JWKSURL, "PORTCULLIS_AUTHZ_TOKEN_ALGORITHMS=EdDSA",
		"PORTCULLIS_AUTHZ_TOKEN_CACHE_MAX_TOKENS=" + strconv.Itoa(*cacheTokens),
		"PORTCULLIS_AUTHZ_USERS_SOURCE=file", "PORTCULLIS_AUTHZ_USERS_FILE=" + w.UsersFile,
		"PORTCULLIS_AUTHZ_USERS_CACHE_MAX_USERS=" + strconv.Itoa(max(*users, 1000)),
	})
	if err != nil {
		return err
	}
	defer stopProcess(proc)
	if err := waitReady("http://" + adminAddr + "/readyz"); err != nil {
		return fmt.Errorf("authz: %w", err)
	}
	if *sampleEvery > 0 {
		opts.SampleEvery, opts.Samples = *sampleEvery, stderr
		opts.Gauge = func(name string) (float64, error) { return scrapeGauge("http://"+adminAddr+"/metrics", name) }
	}
	res, err := runAgainst(ctx, "authz", grpcAddr, proc.Process.Pid, w, opts, stderr)
	if err != nil {
		return err
	}
	results = append(results, res)
	fmt.Fprintf(stdout, "mix %s, %d distinct tokens, %d users, concurrency %d, %s per server\n\n", *mix, *tokens, *users, *concurrency, *duration)
	loadtest.Report(stdout, results...)
	return nil
}

func runAgainst(ctx context.Context, name, addr string, pid int, w *loadtest.Workload, opts loadtest.Options, stderr io.Writer) (loadtest.Result, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return loadtest.Result{}, err
	}
	defer conn.Close()
	opts.ServerPID = pid
	fmt.Fprintf(stderr, "measuring %s for %s (after %s warm-up)...\n", name, opts.Duration, opts.Warmup)
	return loadtest.Run(ctx, name, authv3.NewAuthorizationClient(conn), w, opts)
}

// loadBaseline serves the always-OK baseline (a hidden subcommand that the
// load tool runs in its own process).
func loadBaseline(ctx context.Context, args []string) error {
	fs := newFlagSet("load-baseline")
	listen := fs.String("listen", "127.0.0.1:9101", "gRPC address")
	if err := fs.Parse(args); err != nil {
		return usageError{Msg: err.Error()}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	return loadtest.ServeBaseline(ctx, ln)
}

func spawn(stderr io.Writer, args, env []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

func stopProcess(cmd *exec.Cmd) {
	if cmd.ProcessState != nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
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

func waitTCP(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not start listening", addr)
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

func waitReady(url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready at %s", url)
}
