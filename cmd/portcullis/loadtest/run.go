package loadtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Result is what one measured run produced.
type Result struct {
	Name     string
	Checks   int64
	Errors   int64
	Wrong    int64 // responses whose status differed from the expected one
	Duration time.Duration
	// ServerCPU is the CPU the server process used during the run (0 if unknown).
	ServerCPU time.Duration
	// ServerRSS is the server's resident memory after the run.
	ServerRSS                int64
	P50, P90, P99, P999, Max time.Duration
	ByStatus                 map[int]int64
	// FirstError is the first gRPC error seen, if any.
	FirstError error
	// Samples are the soak samples, if any were asked for.
	Samples []Sample
	// WrongAnswers describe the first requests whose status was not the
	// expected one, as they can be replayed.
	WrongAnswers []string
	// HeapInUse is the server's heap in use after the run, LiveHeap what
	// the last collection found live, and GCShare the share of the
	// server's CPU the garbage collector took during the run (authz only).
	HeapInUse, LiveHeap, GCShare float64
	// MarkShare is the share of the server's CPU profile in which the
	// garbage collector marked (0: not profiled).
	MarkShare float64
	// Noise is the share of the machine other processes took meanwhile;
	// Noisy marks a result measured again and still above the limit.
	Noise float64
	Noisy bool
	// Flood is what forged tokens sent meanwhile got (nil: no flood).
	Flood *FloodResult
}

// maxWrongAnswers bounds how many wrong answers a run describes.
const maxWrongAnswers = 5

func sample(opts Options, stop <-chan struct{}) []Sample {
	if opts.SampleEvery <= 0 || opts.ServerPID <= 0 {
		return nil
	}
	var out []Sample
	start := time.Now()
	t := time.NewTicker(opts.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return out
		case <-t.C:
			s := Sample{At: time.Since(start).Round(time.Second)}
			s.RSS, _ = ProcessRSS(opts.ServerPID)
			if opts.Gauge != nil {
				g, _ := opts.Gauge("go_goroutines")
				s.Goroutines = int(g)
				s.HeapInUse, _ = opts.Gauge("go_memstats_heap_inuse_bytes")
			}
			if opts.Samples != nil {
				fmt.Fprintf(opts.Samples, "  t=%-6s rss=%6.1f MB heap-in-use=%6.1f MB goroutines=%d\n", s.At, float64(s.RSS)/(1<<20), s.HeapInUse/(1<<20), s.Goroutines)
			}
			out = append(out, s)
		}
	}
}

// SoakSummary compares the second half of the samples with the first, the
// usual test for growth: flat memory and goroutines mean no leak.
func SoakSummary(samples []Sample) string {
	if len(samples) < 4 {
		return "too few samples for a soak summary"
	}
	half := len(samples) / 2
	avg := func(ss []Sample) (float64, float64, float64) {
		var rss, heap, g float64
		for _, s := range ss {
			rss += float64(s.RSS)
			heap += s.HeapInUse
			g += float64(s.Goroutines)
		}
		n := float64(len(ss))
		return rss / n, heap / n, g / n
	}
	r1, h1, g1 := avg(samples[:half])
	r2, h2, g2 := avg(samples[half:])
	return fmt.Sprintf("soak, first half → second half: RSS %.1f → %.1f MB (%.2f×), heap in use %.1f → %.1f MB (%.2f×), goroutines %.0f → %.0f",
		r1/(1<<20), r2/(1<<20), r2/r1, h1/(1<<20), h2/(1<<20), h2/max(h1, 1), g1, g2)
}

// Rate is checks per second.
func (r Result) Rate() float64 { return float64(r.Checks) / r.Duration.Seconds() }

// CPUPerCheck is the server's CPU time per check.
func (r Result) CPUPerCheck() time.Duration {
	if r.Checks == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.Checks)
}

// Options bound a run.
type Options struct {
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int
	// ServerPID, when positive, is read from /proc for CPU and memory.
	ServerPID int
	// SampleEvery, when positive, samples the server's memory and goroutines
	// during the measured run (a soak), with Goroutines reading the count.
	SampleEvery time.Duration
	// Gauge reads one of the server's Prometheus gauges by name.
	Gauge func(name string) (float64, error)
	// Samples receives each sample line as it is taken.
	Samples io.Writer
}

// Sample is the server's state at one moment of a soak.
type Sample struct {
	At         time.Duration
	RSS        int64
	HeapInUse  float64
	Goroutines int
}

// Run sends the workload's requests round-robin from Concurrency workers
// for Warmup (unmeasured) and then Duration, and measures.
func Run(ctx context.Context, name string, client authv3.AuthorizationClient, w *Workload, opts Options) (Result, error) {
	if opts.Warmup > 0 {
		if _, err := drive(ctx, client, w, opts.Warmup, opts.Concurrency, false); err != nil {
			return Result{}, err
		}
	}
	var cpuBefore time.Duration
	if opts.ServerPID > 0 {
		cpuBefore, _ = ProcessCPU(opts.ServerPID)
	}
	sampled := make(chan []Sample, 1)
	stopSampling := make(chan struct{})
	go func() { sampled <- sample(opts, stopSampling) }()
	res, err := drive(ctx, client, w, opts.Duration, opts.Concurrency, true)
	close(stopSampling)
	res.Samples = <-sampled
	if err != nil {
		return Result{}, err
	}
	res.Name = name
	if opts.ServerPID > 0 {
		after, err := ProcessCPU(opts.ServerPID)
		if err == nil {
			res.ServerCPU = after - cpuBefore
		}
		res.ServerRSS, _ = ProcessRSS(opts.ServerPID)
	}
	return res, nil
}

// callTimeout is each Check's deadline. Envoy sends one with every Check
// (the ext_authz filter's timeout: 0.25 s in envoy/envoy.yaml); a second
// here leaves room for a stall of a shared machine.
const callTimeout = time.Second

// check makes one Check with its own deadline.
func check(ctx context.Context, client authv3.AuthorizationClient, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return client.Check(ctx, req)
}

func drive(ctx context.Context, client authv3.AuthorizationClient, w *Workload, d time.Duration, concurrency int, measure bool) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// Calls do not carry the run's deadline: one in flight when the run
	// ends finishes as it would have (authz would otherwise see its
	// deadline pass and answer 503, a wrong answer of the tool's making).
	// Each carries a deadline of its own, as Envoy's do.
	callCtx := context.WithoutCancel(ctx)
	var firstErr atomic.Pointer[error]
	var mu sync.Mutex
	res := Result{ByStatus: map[int]int64{}}
	var all []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			byStatus := map[int]int64{}
			var errs, wrong int64
			var described []string
			for ctx.Err() == nil {
				i := w.next()
				req := w.Request(i)
				t0 := time.Now()
				resp, err := check(callCtx, client, req)
				took := time.Since(t0)
				if err != nil {
					errs++
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				status := 200
				if d := resp.GetDeniedResponse(); d != nil {
					status = int(d.GetStatus().GetCode())
				}
				if measure {
					lat = append(lat, took)
					byStatus[status]++
					if want := w.Expected(i); want != 0 && want != status {
						wrong++
						if len(described) < maxWrongAnswers {
							reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
							described = append(described, fmt.Sprintf("expected %d, got %d (%s): %s", want, status, reason, w.Describe(i)))
						}
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			for k, v := range byStatus {
				res.ByStatus[k] += v
			}
			res.Errors += errs
			res.Wrong += wrong
			for _, d := range described {
				if len(res.WrongAnswers) < maxWrongAnswers {
					res.WrongAnswers = append(res.WrongAnswers, d)
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Duration = time.Since(start)
	if e := firstErr.Load(); e != nil {
		res.FirstError = *e
	}
	res.Checks = int64(len(all))
	if len(all) > 0 {
		slices.Sort(all)
		pct := func(p float64) time.Duration { return all[min(int(p*float64(len(all))), len(all)-1)] }
		res.P50, res.P90, res.P99, res.P999, res.Max = pct(.50), pct(.90), pct(.99), pct(.999), all[len(all)-1]
	}
	return res, nil
}

// ReportRounds prints each server's median over the rounds, and its ratios
// to the first (the baseline) measured in the same round: the median and
// the range over the rounds. A flood's row is also compared with authz's.
func ReportRounds(out io.Writer, rounds [][]Result) {
	if len(rounds) == 0 || len(rounds[0]) == 0 {
		return
	}
	n := len(rounds[0])
	column := func(i int, f func(Result) float64) []float64 {
		var v []float64
		for _, r := range rounds {
			v = append(v, f(r[i]))
		}
		return v
	}
	fmt.Fprintf(out, "%-18s %10s %12s %10s %10s %10s %8s %8s %8s %6s %8s %8s\n", "server (median)", "checks/s", "cpu/check", "p50", "p99", "p99.9", "rss MB", "heap MB", "live MB", "gc %", "errors", "wrong")
	for i := range n {
		name := rounds[0][i].Name
		dur := func(f func(Result) time.Duration) time.Duration {
			return time.Duration(median(column(i, func(r Result) float64 { return float64(f(r)) })))
		}
		var errs, wrong int64
		for _, r := range rounds {
			errs += r[i].Errors
			wrong += r[i].Wrong
		}
		fmt.Fprintf(out, "%-18s %10.0f %12s %10s %10s %10s %8.1f %8.1f %8.1f %6.1f %8d %8d\n", name,
			median(column(i, Result.Rate)), dur(Result.CPUPerCheck).Round(100*time.Nanosecond),
			dur(func(r Result) time.Duration { return r.P50 }).Round(time.Microsecond),
			dur(func(r Result) time.Duration { return r.P99 }).Round(time.Microsecond),
			dur(func(r Result) time.Duration { return r.P999 }).Round(time.Microsecond),
			median(column(i, func(r Result) float64 { return float64(r.ServerRSS) }))/(1<<20),
			median(column(i, func(r Result) float64 { return r.HeapInUse }))/(1<<20),
			median(column(i, func(r Result) float64 { return r.LiveHeap }))/(1<<20),
			100*median(column(i, func(r Result) float64 { return r.GCShare })), errs, wrong)
	}
	var marking []string
	for i := range n {
		if share := median(column(i, func(r Result) float64 { return r.MarkShare })); share > 0 {
			marking = append(marking, fmt.Sprintf("%s %.1f%%", rounds[0][i].Name, 100*share))
		}
	}
	if len(marking) > 0 {
		fmt.Fprintf(out, "GC marking, share of each server's CPU profile (median): %s\n", strings.Join(marking, ", "))
	}
	noisy := 0
	for _, round := range rounds {
		for _, r := range round {
			if r.Noisy {
				noisy++
			}
			if len(r.Samples) > 0 {
				fmt.Fprintf(out, "%s %s\n", r.Name, SoakSummary(r.Samples))
			}
			if r.FirstError != nil {
				fmt.Fprintf(out, "%s: first gRPC error: %v\n", r.Name, r.FirstError)
			}
			if r.Name != "baseline" { // the always-OK server is wrong by design
				for _, d := range r.WrongAnswers {
					fmt.Fprintf(out, "%s: wrong answer, %s\n", r.Name, d)
				}
			}
		}
	}
	if noisy > 0 {
		fmt.Fprintf(out, "\n%d measurements stayed noisy (other processes above the limit after two retries): read their ratios with care\n", noisy)
	}
	ratio := func(i, base int, f func(Result) float64) string {
		r := roundRatio(rounds, i, base, f)
		if r == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f× [%.2f–%.2f]", r.Median, r.Min, r.Max)
	}
	cpu := func(r Result) float64 { return float64(r.CPUPerCheck()) }
	p99 := func(r Result) float64 { return float64(r.P99) }
	authzAt := -1
	for i := range n {
		if rounds[0][i].Name == "authz" {
			authzAt = i
		}
	}
	for i := 1; i < n; i++ {
		r := rounds[0][i]
		fmt.Fprintf(out, "\n%s vs %s, same round (median [range]): throughput %s, server CPU per check %s, p99 %s\n",
			r.Name, rounds[0][0].Name, ratio(i, 0, Result.Rate), ratio(i, 0, cpu), ratio(i, 0, p99))
		byStatus := map[int]int64{}
		for _, round := range rounds {
			for k, v := range round[i].ByStatus {
				byStatus[k] += v
			}
		}
		fmt.Fprintf(out, "%s outcomes by HTTP status: %s\n", r.Name, statusCounts(byStatus))
		if r.Flood != nil && authzAt >= 0 {
			var f FloodResult
			for _, round := range rounds {
				g := round[i].Flood
				f.Sent, f.Allowed, f.Shed, f.Refused, f.Errors = f.Sent+g.Sent, f.Allowed+g.Allowed, f.Shed+g.Shed, f.Refused+g.Refused, f.Errors+g.Errors
			}
			fmt.Fprintf(out, "%s vs authz, same round: hot-path throughput %s, p99 %s\n", r.Name, ratio(i, authzAt, Result.Rate), ratio(i, authzAt, p99))
			verdict := "none allowed"
			if f.Allowed > 0 {
				verdict = "FORGED TOKENS ALLOWED"
			}
			fmt.Fprintf(out, "forged tokens: %d sent, %d allowed (%s), %d refused (401), %d shed (503 overloaded), %d errors\n", f.Sent, f.Allowed, verdict, f.Refused, f.Shed, f.Errors)
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// statusCounts is "200: 9,812, 401: 188" in status order, for people.
func statusCounts(by map[int]int64) string {
	codes := make([]int, 0, len(by))
	for c := range by {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d: %d", c, by[c])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
