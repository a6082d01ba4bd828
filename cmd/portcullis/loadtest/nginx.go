package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/portcullis/portcullis/examples"
)

// NginxOptions configures a measurement through real nginx with wrk.
type NginxOptions struct {
	// Nginx and Wrk are the binaries.
	Nginx, Wrk string
	// Site is the nginx configuration asking authz (examples/nginx/portcullis.conf).
	Site string
	// Policy is the policy authz loads.
	Policy               string
	Duration             time.Duration
	Connections, Threads int
	Repeat               int
	// Self runs this binary's hidden server commands (Compare's).
	Self func(args ...string) *exec.Cmd
}

// nginxVariant is one nginx measured: alone, or asking a server.
type nginxVariant struct {
	name, addr string
}

// wrkResult is what one wrk run measured.
type wrkResult struct {
	rate float64
	p99  time.Duration
}

// CompareThroughNginx measures, with wrk, the same allowed request through
// three nginx in the same run: nginx alone in front of the upstream, nginx
// asking authz (mode nginx) with auth_request, and nginx asking the
// always-200 HTTP floor the same way, in rounds whose order rotates; and
// reports throughput and p99 ratios.
func CompareThroughNginx(ctx context.Context, o NginxOptions, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "portcullis-nginx-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	site, err := os.ReadFile(o.Site)
	if err != nil {
		return err
	}
	for _, addr := range []string{examples.AuthzHTTPAddr, examples.UpstreamAddr, examples.ProxyAddr} {
		if !strings.Contains(string(site), addr) {
			return fmt.Errorf("%s does not name %s: the run moves that address to its own", o.Site, addr)
		}
	}
	iss, err := NewIssuer(jwa.EdDSA)
	if err != nil {
		return err
	}
	defer iss.Close()
	token, err := iss.Token("wrk-client", "acme", "accounts:read", "wrk-1", 2*time.Hour)
	if err != nil {
		return err
	}
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, []byte("users: []\n"), 0o644); err != nil {
		return err
	}

	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"7"}`)
	})}
	go api.Serve(upstream)
	defer api.Close()

	co := CompareOptions{Self: o.Self, Policy: o.Policy, CacheMaxTokens: 1000, HTTP: true}
	az, err := startAuthz(co, "authz", iss, &Workload{UsersFile: users}, []string{"PORTCULLIS_AUTHZ_HTTP_MODE=nginx"})
	if err != nil {
		return err
	}
	defer az.stop()
	floor, err := startBaseline(co)
	if err != nil {
		return err
	}
	defer floor.stop()

	alone := fmt.Sprintf(`upstream api {
    server %s;
    keepalive 16;
}
server {
    listen %s;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://api;
    }
}
`, examples.UpstreamAddr, examples.ProxyAddr)
	var variants []nginxVariant
	for _, v := range []struct{ name, site, asks string }{
		{"nginx alone", alone, ""},
		{"nginx + auth_request to the always-200 floor", string(site), floor.addr},
		{"nginx + auth_request to authz", string(site), az.addr},
	} {
		addr, stop, err := startNginx(o.Nginx, filepath.Join(dir, strconv.Itoa(len(variants))), v.site, v.asks, upstream.Addr().String())
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		defer stop()
		variants = append(variants, nginxVariant{name: v.name, addr: addr})
	}

	fmt.Fprintf(stderr, "warming up...\n")
	for _, v := range variants {
		if _, err := runWrk(ctx, o, v.addr, token, 2*time.Second); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	results := make([][]wrkResult, len(variants))
	for r := 0; r < max(o.Repeat, 1); r++ {
		for k := range variants {
			i := (k + r) % len(variants)
			fmt.Fprintf(stderr, "round %d/%d: %s for %s...\n", r+1, o.Repeat, variants[i].name, o.Duration)
			res, err := runWrk(ctx, o, variants[i].addr, token, o.Duration)
			if err != nil {
				return fmt.Errorf("%s: %w", variants[i].name, err)
			}
			results[i] = append(results[i], res)
		}
	}
	fmt.Fprintf(stdout, "GET /v1/accounts/7 allowed, wrk %d threads, %d connections, %d rounds of %s\n\n", o.Threads, o.Connections, o.Repeat, o.Duration)
	fmt.Fprintf(stdout, "%-48s %12s %10s\n", "(median)", "requests/s", "p99")
	for i, v := range variants {
		fmt.Fprintf(stdout, "%-48s %12.0f %10s\n", v.name, medianOf(results[i], func(w wrkResult) float64 { return w.rate }), time.Duration(medianOf(results[i], func(w wrkResult) float64 { return float64(w.p99) })).Round(time.Microsecond))
	}
	ratio := func(a, b int) string {
		rate := make([]float64, len(results[a]))
		p99 := make([]float64, len(results[a]))
		for r := range results[a] {
			rate[r] = results[a][r].rate / results[b][r].rate
			p99[r] = float64(results[a][r].p99) / float64(results[b][r].p99)
		}
		return fmt.Sprintf("throughput %.2f×, p99 %.2f×", median(rate), median(p99))
	}
	fmt.Fprintf(stdout, "\nsame round, median: with authz vs alone: %s; with authz vs with the floor: %s; with the floor vs alone: %s\n",
		ratio(2, 0), ratio(2, 1), ratio(1, 0))
	return nil
}

// startNginx runs nginx with site inside a main configuration that keeps
// its files in dir, on a free port, asking asks and proxying to upstream.
func startNginx(bin, dir, site, asks, upstream string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	addr, err := freePort()
	if err != nil {
		return "", nil, err
	}
	site = strings.NewReplacer(examples.AuthzHTTPAddr, asks, examples.UpstreamAddr, upstream, examples.ProxyAddr, addr).Replace(site)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(examples.NginxMain(dir, site)), 0o644); err != nil {
		return "", nil, err
	}
	proc, err := start(exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr"), nil, os.Stderr)
	if err != nil {
		return "", nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, proc.stop, nil
		}
		if !proc.running() || time.Now().After(deadline) {
			proc.stop()
			return "", nil, fmt.Errorf("nginx never listened on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99     = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)\b`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: (.*)`)
)

// runWrk runs wrk against addr for d with the token, and reads its rate
// and p99. Any answer but 2xx fails the run: every request is allowed.
func runWrk(ctx context.Context, o NginxOptions, addr, token string, d time.Duration) (wrkResult, error) {
	cmd := exec.CommandContext(ctx, o.Wrk, "-t", strconv.Itoa(o.Threads), "-c", strconv.Itoa(o.Connections),
		"-d", strconv.Itoa(max(int(d.Seconds()), 1))+"s", "--latency", "-H", "Authorization: Bearer "+token,
		"http://"+addr+"/v1/accounts/7")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	text := string(out)
	if m := wrkNon2xx.FindStringSubmatch(text); m != nil {
		return wrkResult{}, fmt.Errorf("%s answers were not 2xx:\n%s", m[1], text)
	}
	if m := wrkSockErr.FindStringSubmatch(text); m != nil {
		return wrkResult{}, fmt.Errorf("socket errors (%s):\n%s", m[1], text)
	}
	rate, p99 := wrkRate.FindStringSubmatch(text), wrkP99.FindStringSubmatch(text)
	if rate == nil || p99 == nil {
		return wrkResult{}, fmt.Errorf("cannot read wrk's output:\n%s", text)
	}
	r, _ := strconv.ParseFloat(rate[1], 64)
	v, _ := strconv.ParseFloat(p99[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p99[2]]
	return wrkResult{rate: r, p99: time.Duration(v * float64(unit))}, nil
}

func medianOf(rs []wrkResult, f func(wrkResult) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	return median(vs)
}
