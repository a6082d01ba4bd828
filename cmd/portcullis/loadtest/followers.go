package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/revocation"
)

// FollowerOptions is a run of many revocation-feed followers against one
// issuer process.
type FollowerOptions struct {
	// FeedURL is the issuer's revocation feed.
	FeedURL string
	// Tokens are access tokens holding revocation.ReadScope; follower i
	// uses Tokens[i%len(Tokens)].
	Tokens []string
	// IssuerPID is the issuer process whose CPU and memory are measured.
	IssuerPID int
	// Followers is how many follow the feed, each on its own connection.
	Followers int
	// Revocations is how many revocations are made and timed, one at a time.
	Revocations int
	// Revoke makes one revocation at the issuer.
	Revoke func(ctx context.Context) error
	// Idle is how long idle CPU is measured, before the first revocation
	// (the store at version 0) and after the last.
	Idle time.Duration
	// Wait is each long poll's wait, in seconds.
	Wait int
	// MetricsURL is the issuer's Prometheus endpoint.
	MetricsURL string
}

// FollowerReport is what a follower run measured.
type FollowerReport struct {
	Followers int
	// IdleCPUAtZero and IdleCPULater are the issuer's CPU, in cores, while
	// every follower waits: before anything was revoked, and after.
	IdleCPUAtZero, IdleCPULater float64
	// CPUPerRevocation is the issuer's CPU from each revocation until every
	// follower had it.
	CPUPerRevocation []time.Duration
	// Propagation is, over all revocations and followers, how long after
	// the revocation each follower had it.
	Propagation []time.Duration
	// Everyone is how long each revocation took to reach the last follower.
	Everyone []time.Duration
	// RSS is the issuer's resident memory with every follower's poll held,
	// and the Go runtime's account of it: heap in use, goroutine stacks,
	// goroutines.
	RSS                   int64
	HeapInUse, StackInUse float64
	Goroutines            float64
}

// follower long-polls the feed on its own connection and publishes the
// version it holds.
type follower struct {
	client  *http.Client
	token   string
	version atomic.Int64
	synced  atomic.Bool
}

// RunFollowers holds o.Followers followers on the feed, revokes o.Revocations
// times, and measures the issuer.
func RunFollowers(ctx context.Context, o FollowerOptions, stderr io.Writer) (*FollowerReport, error) {
	if len(o.Tokens) == 0 || o.Followers < 1 {
		return nil, errors.New("followers need tokens")
	}
	raiseFileLimit()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fs := make([]*follower, o.Followers)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := range fs {
		// One transport each: every follower is its own connection, as
		// every sidecar is.
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
		f := &follower{client: &http.Client{Transport: tr}, token: o.Tokens[i%len(o.Tokens)]}
		fs[i] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			f.run(ctx, o.FeedURL, o.Wait, &failures)
		}()
		if i%500 == 499 {
			time.Sleep(50 * time.Millisecond) // a fleet does not connect in one millisecond
		}
	}
	defer wg.Wait()
	if err := waitAll(ctx, fs, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("followers never all synced (%d failed polls): %w", failures.Load(), err)
	}
	fmt.Fprintf(stderr, "%d followers hold the set; measuring idle CPU\n", o.Followers)
	// Let the first polls' answers settle into held polls.
	time.Sleep(2 * time.Second)
	r := &FollowerReport{Followers: o.Followers}
	var err error
	if r.IdleCPUAtZero, err = idleCPU(o.IssuerPID, o.Idle); err != nil {
		return nil, err
	}
	for n := range o.Revocations {
		target := fs[0].version.Load() + 1
		before, err := ProcessCPU(o.IssuerPID)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := o.Revoke(ctx); err != nil {
			return nil, fmt.Errorf("revocation %d: %w", n+1, err)
		}
		arrived := make([]time.Duration, len(fs))
		deadline := start.Add(30 * time.Second)
		pending := len(fs)
		for pending > 0 {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("revocation %d reached %d of %d followers in 30 s", n+1, len(fs)-pending, len(fs))
			}
			for i, f := range fs {
				if arrived[i] == 0 && f.version.Load() >= target {
					arrived[i] = time.Since(start)
					pending--
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		after, err := ProcessCPU(o.IssuerPID)
		if err != nil {
			return nil, err
		}
		r.CPUPerRevocation = append(r.CPUPerRevocation, after-before)
		r.Propagation = append(r.Propagation, arrived...)
		r.Everyone = append(r.Everyone, slices.Max(arrived))
		fmt.Fprintf(stderr, "revocation %d: every follower within %s\n", n+1, slices.Max(arrived).Round(time.Millisecond))
		time.Sleep(time.Second) // the followers' next polls are held again
	}
	if r.IdleCPULater, err = idleCPU(o.IssuerPID, o.Idle); err != nil {
		return nil, err
	}
	if r.RSS, err = ProcessRSS(o.IssuerPID); err != nil {
		return nil, err
	}
	for name, into := range map[string]*float64{"go_memstats_heap_inuse_bytes": &r.HeapInUse, "go_memstats_stack_inuse_bytes": &r.StackInUse, "go_goroutines": &r.Goroutines} {
		if *into, err = scrapeGauge(o.MetricsURL, name); err != nil {
			return nil, err
		}
	}
	cancel()
	return r, nil
}

// run follows the feed as authz does: a stream, each line a change or a
// heartbeat, connecting again when the issuer ends it.
func (f *follower) run(ctx context.Context, feedURL string, wait int, failures *atomic.Int64) {
	for ctx.Err() == nil {
		u := feedURL + "?stream=1&wait=" + strconv.Itoa(wait)
		if f.synced.Load() {
			u += "&since=" + strconv.FormatInt(f.version.Load(), 10)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := f.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				failures.Add(1)
				time.Sleep(time.Second)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			failures.Add(1)
			time.Sleep(time.Second)
			continue
		}
		dec := json.NewDecoder(resp.Body)
		for {
			var feed revocation.Feed
			if err := dec.Decode(&feed); err != nil {
				break
			}
			f.version.Store(feed.Version)
			if !feed.More {
				f.synced.Store(true)
			}
		}
		resp.Body.Close()
	}
}

// waitAll waits until every follower holds the whole set.
func waitAll(ctx context.Context, fs []*follower, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		done := 0
		for _, f := range fs {
			if f.synced.Load() {
				done++
			}
		}
		if done == len(fs) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d synced", done, len(fs))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// idleCPU is the process's CPU, in cores, over d.
func idleCPU(pid int, d time.Duration) (float64, error) {
	before, err := ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	return (after - before).Seconds() / d.Seconds(), nil
}

// raiseFileLimit lifts the open-files limit to its hard maximum: ten
// thousand connections need more than the usual 1,024. Child processes
// started afterwards inherit it.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// Print writes the report.
func (r *FollowerReport) Print(w io.Writer) {
	quantile := func(ds []time.Duration, q float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	within := 0
	for _, d := range r.Propagation {
		if d <= 2*time.Second {
			within++
		}
	}
	fmt.Fprintf(w, "followers                          %d\n", r.Followers)
	fmt.Fprintf(w, "issuer idle CPU, nothing revoked   %.4f cores\n", r.IdleCPUAtZero)
	fmt.Fprintf(w, "issuer idle CPU, after             %.4f cores\n", r.IdleCPULater)
	fmt.Fprintf(w, "issuer CPU per revocation          median %s, max %s\n", quantile(r.CPUPerRevocation, 0.5).Round(time.Millisecond), slices.Max(r.CPUPerRevocation).Round(time.Millisecond))
	fmt.Fprintf(w, "propagation to each follower       p50 %s, p99 %s, max %s\n", quantile(r.Propagation, 0.5).Round(time.Millisecond), quantile(r.Propagation, 0.99).Round(time.Millisecond), slices.Max(r.Propagation).Round(time.Millisecond))
	fmt.Fprintf(w, "deliveries within 2 s              %d of %d\n", within, len(r.Propagation))
	fmt.Fprintf(w, "issuer RSS, every poll held        %d MB (heap in use %.0f MB, stacks %.0f MB, %.0f goroutines)\n", r.RSS>>20, r.HeapInUse/(1<<20), r.StackInUse/(1<<20), r.Goroutines)
}

// Process is a server process the load tool started for a caller outside
// this package (the follower run's issuer).
type Process struct{ c *child }

// StartProcess starts cmd with env added and waits until readyURL answers
// 200 while it runs.
func StartProcess(cmd *exec.Cmd, env []string, readyURL string, stderr io.Writer) (*Process, error) {
	c, err := start(cmd, env, stderr)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(readyURL); err != nil {
		c.stop()
		return nil, err
	}
	return &Process{c: c}, nil
}

// PID is the process's ID.
func (p *Process) PID() int { return p.c.cmd.Process.Pid }

// Stop ends the process.
func (p *Process) Stop() { p.c.stop() }

// FreePort is a loopback address nobody listens on now.
func FreePort() (string, error) { return freePort() }
