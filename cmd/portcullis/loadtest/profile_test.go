package loadtest

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// stackSample is a CPU profile sample: its stack, innermost first, and value.
type stackSample struct {
	value int64
	stack []string
}

// cpuProfile is a CPU profile of these samples.
func cpuProfile(t *testing.T, samples []stackSample) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000,
	}
	functions := map[string]*profile.Function{}
	for _, sample := range samples {
		s := &profile.Sample{Value: []int64{1, sample.value}}
		for _, name := range sample.stack {
			fn := functions[name]
			if fn == nil {
				fn = &profile.Function{ID: uint64(len(functions) + 1), Name: name}
				functions[name] = fn
				p.Function = append(p.Function, fn)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
			p.Location = append(p.Location, loc)
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMarkShareCountsBackgroundWorkersAndAssists(t *testing.T) {
	t.Parallel()
	data := cpuProfile(t, []stackSample{
		{600, []string{"crypto/ed25519.Verify", "authz.(*Verifier).verify", "grpc.(*Server).processRPC"}},
		{200, []string{"runtime.scanObject", "runtime.gcDrain", "runtime.gcBgMarkWorker"}},
		{100, []string{"runtime.gcDrainN", "runtime.gcAssistAlloc", "runtime.mallocgc", "authz.headerOptions"}},
		{50, []string{"runtime.bgsweep"}}, // sweeping is not marking
		{50, []string{"runtime.mallocgc", "authz.headerOptions"}},
	})
	share, err := MarkShare(data)
	if err != nil || math.Abs(share-0.3) > 1e-9 {
		t.Fatalf("MarkShare = %v, %v; want 0.3", share, err)
	}
	if _, err := MarkShare([]byte("not a profile")); err == nil {
		t.Error("garbage read as a profile")
	}
	empty := cpuProfile(t, nil)
	if _, err := MarkShare(empty); !errors.Is(err, errNoSamples) {
		t.Error("a profile without samples has a share")
	}
}

// TestBaselineServesItsCPUProfile: the always-OK server's profile, as the
// load tool takes it, is a CPU profile.
func TestBaselineServesItsCPUProfile(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ServeBaseline(ctx, ln, metrics, false)
	path := filepath.Join(t.TempDir(), "baseline.pprof")
	_, err = saveProfile(startProfile(ctx, "http://"+metrics.Addr().String()+ProfilePath, time.Second), path)
	// An idle server's profile may hold no samples; it must still be one.
	if err != nil && !errors.Is(err, errNoSamples) {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(data)
	if err != nil || len(p.SampleType) == 0 {
		t.Fatalf("not a profile: %v", err)
	}
}
