package loadtest

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

	"github.com/portcullis/portcullis/revocation"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// CompareOptions configures a comparison of authz with the always-OK
// baseline under the same load.
type CompareOptions struct {
	Duration, Warmup time.Duration
	Concurrency      int
	Tokens, Users    int
	Mix              Mix
	// Policy is the policy authz loads.
	Policy         string
	CacheMaxTokens int
	// Baseline also measures the always-OK server first.
	Baseline bool
	// SampleEvery, when positive, samples authz's memory and goroutines (a soak).
	SampleEvery time.Duration
	// Revocations, when positive, also measures an authz that follows a
	// revocation feed holding this many entries (none of which refuses the
	// workload's tokens), in the same run.
	Revocations int
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

// Compare measures authz against an always-OK baseline server on the same
// gRPC stack, each in its own process (so CPU per check is the server's own,
// read from /proc), with the same load from this process, and reports both.
func Compare(ctx context.Context, o CompareOptions, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "portcullis-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	iss, err := NewIssuer()
	if err != nil {
		return err
	}
	defer iss.Close()
	fmt.Fprintf(stderr, "minting %d tokens and %d users...\n", o.Tokens, o.Users)
	w, err := BuildWorkload(iss, o.Mix, o.Tokens, o.Users, dir)
	if err != nil {
		return err
	}
	opts := Options{Duration: o.Duration, Warmup: o.Warmup, Concurrency: o.Concurrency}
	var results []Result

	if o.Baseline {
		addr, err := freePort()
		if err != nil {
			return err
		}
		proc, err := start(o.Self(BaselineServer, "--listen", addr), nil, stderr)
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

	res, err := measureAuthz(ctx, "authz", o, iss, w, opts, nil, stderr)
	if err != nil {
		return err
	}
	results = append(results, res)
	if o.Revocations > 0 {
		iss.Revoke(o.Revocations)
		res, err := measureAuthz(ctx, "authz+revocations", o, iss, w, opts, []string{
			"PORTCULLIS_AUTHZ_REVOCATION_ENABLED=true", "PORTCULLIS_AUTHZ_REVOCATION_FEED_URL=" + iss.JWKSURL + revocation.FeedPath,
			"PORTCULLIS_AUTHZ_REVOCATION_TOKEN_URL=" + iss.JWKSURL + "/oauth2/token",
			"PORTCULLIS_AUTHZ_REVOCATION_CLIENT_ID=load", "PORTCULLIS_AUTHZ_REVOCATION_CLIENT_SECRET=load",
			"PORTCULLIS_AUTHZ_REVOCATION_WAIT=5s",
		}, stderr)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	fmt.Fprintf(stdout, "mix %s, %d distinct tokens, %d users, concurrency %d, %s per server\n\n", o.Mix, o.Tokens, o.Users, o.Concurrency, o.Duration)
	Report(stdout, results...)
	return nil
}

// measureAuthz runs authz in its own process, configured for the workload
// (and by extra settings), and measures it.
func measureAuthz(ctx context.Context, name string, o CompareOptions, iss *Issuer, w *Workload, opts Options, extra []string, stderr io.Writer) (Result, error) {
	grpcAddr, err := freePort()
	if err != nil {
		return Result{}, err
	}
	adminAddr, err := freePort()
	if err != nil {
		return Result{}, err
	}
	proc, err := start(o.Self(AuthzServer), append([]string{
		"PORTCULLIS_AUTHZ_LISTEN=" + grpcAddr, "PORTCULLIS_AUTHZ_ADMIN_LISTEN=" + adminAddr,
		"PORTCULLIS_AUTHZ_POLICY=" + o.Policy, "PORTCULLIS_AUTHZ_LOG_LEVEL=warn",
		"PORTCULLIS_AUTHZ_TOKEN_ISSUER=" + iss.URL, "PORTCULLIS_AUTHZ_TOKEN_AUDIENCE=" + Audience,
		"PORTCULLIS_AUTHZ_TOKEN_JWKS_URL=" + iss.JWKSURL, "PORTCULLIS_AUTHZ_TOKEN_ALGORITHMS=EdDSA",
		"PORTCULLIS_AUTHZ_TOKEN_CACHE_MAX_TOKENS=" + strconv.Itoa(o.CacheMaxTokens),
		"PORTCULLIS_AUTHZ_USERS_SOURCE=file", "PORTCULLIS_AUTHZ_USERS_FILE=" + w.UsersFile,
		"PORTCULLIS_AUTHZ_USERS_CACHE_MAX_USERS=" + strconv.Itoa(max(o.Users, 1000)),
	}, extra...), stderr)
	if err != nil {
		return Result{}, err
	}
	defer stopProcess(proc)
	if err := waitReady("http://" + adminAddr + "/readyz"); err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	if o.SampleEvery > 0 {
		opts.SampleEvery, opts.Samples = o.SampleEvery, stderr
		opts.Gauge = func(name string) (float64, error) { return scrapeGauge("http://"+adminAddr+"/metrics", name) }
	}
	return runAgainst(ctx, name, grpcAddr, proc.Process.Pid, w, opts, stderr)
}

func runAgainst(ctx context.Context, name, addr string, pid int, w *Workload, opts Options, stderr io.Writer) (Result, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	opts.ServerPID = pid
	fmt.Fprintf(stderr, "measuring %s for %s (after %s warm-up)...\n", name, opts.Duration, opts.Warmup)
	return Run(ctx, name, authv3.NewAuthorizationClient(conn), w, opts)
}

func start(cmd *exec.Cmd, env []string, stderr io.Writer) (*exec.Cmd, error) {
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
