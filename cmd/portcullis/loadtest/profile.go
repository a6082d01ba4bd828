package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/pprof/profile"
)

// ProfilePath is where a server serves Go's CPU profiler (authz's admin
// listener with admin_pprof, the baseline's metrics listener).
const ProfilePath = "/debug/pprof/profile"

// profiling is a CPU profile being taken of a server while it is measured.
type profiling struct {
	done chan struct{}
	data []byte
	err  error
}

// startProfile asks the server at url for a CPU profile covering most of
// a measurement of d (a second less, so that it ends within it).
func startProfile(ctx context.Context, url string, d time.Duration) *profiling {
	p := &profiling{done: make(chan struct{})}
	seconds := max(int(d/time.Second)-1, 1)
	go func() {
		defer close(p.done)
		ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?seconds=%d", url, seconds), nil)
		if err != nil {
			p.err = err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			p.err = err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			p.err = fmt.Errorf("%s: %s", url, resp.Status)
			return
		}
		p.data, p.err = io.ReadAll(resp.Body)
	}()
	return p
}

// saveProfile waits for the profile, writes it to path, and returns the
// share of it spent marking.
func saveProfile(p *profiling, path string) (float64, error) {
	<-p.done
	if p.err != nil {
		return 0, p.err
	}
	if err := os.WriteFile(path, p.data, 0o644); err != nil {
		return 0, err
	}
	return MarkShare(p.data)
}

// errNoSamples is a profile of a server that used no CPU meanwhile.
var errNoSamples = errors.New("CPU profile has no samples")

// MarkShare is the share of a CPU profile's samples in which the garbage
// collector marks: its background workers (dedicated, fractional, and idle
// ones, which take CPU the program left idle) and allocations made to
// assist it.
func MarkShare(data []byte) (float64, error) {
	p, err := profile.ParseData(data)
	if err != nil {
		return 0, err
	}
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return 0, errors.New("not a CPU profile")
	}
	var total, marking int64
	for _, s := range p.Sample {
		v := s.Value[cpu]
		total += v
		if inMarking(s) {
			marking += v
		}
	}
	if total == 0 {
		return 0, errNoSamples
	}
	return float64(marking) / float64(total), nil
}

func inMarking(s *profile.Sample) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function == nil {
				continue
			}
			switch line.Function.Name {
			case "runtime.gcBgMarkWorker", "runtime.gcAssistAlloc":
				return true
			}
		}
	}
	return false
}
