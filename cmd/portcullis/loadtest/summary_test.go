package loadtest

import (
	"testing"
	"time"
)

// TestSummaryComparesRoundByRound: each server's medians over the rounds,
// and its ratios to the first server measured in the same rounds.
func TestSummaryComparesRoundByRound(t *testing.T) {
	round := func(baseRate, authzRate float64, baseCPU, authzCPU time.Duration) []Result {
		d := time.Second
		return []Result{
			{Name: "baseline", Checks: int64(baseRate), Duration: d, ServerCPU: time.Duration(int64(baseRate)) * baseCPU, P99: time.Millisecond, ByStatus: map[int]int64{200: int64(baseRate)}},
			{Name: "authz", Checks: int64(authzRate), Duration: d, ServerCPU: time.Duration(int64(authzRate)) * authzCPU, P99: 2 * time.Millisecond, ByStatus: map[int]int64{200: int64(authzRate) - 1, 401: 1}, Noisy: true},
		}
	}
	rounds := [][]Result{
		round(1000, 800, 10*time.Microsecond, 8*time.Microsecond),
		round(1000, 900, 10*time.Microsecond, 9*time.Microsecond),
		round(1000, 1000, 10*time.Microsecond, 10*time.Microsecond),
	}
	s := Summarize(CompareOptions{Mix: "allow", Duration: time.Second}, rounds)
	if len(s.Servers) != 2 || s.Rounds != 3 || s.Servers[0].VersusFirst != nil {
		t.Fatalf("%+v", s)
	}
	a := s.Servers[1]
	if a.ChecksPerSecond != 900 || a.CPUPerCheck != "9µs" || a.ByStatus["401"] != 3 || a.Noisy != 3 {
		t.Errorf("authz medians: %+v", a)
	}
	v := a.VersusFirst
	if v == nil || v.Against != "baseline" || v.Throughput.Median != 0.9 || v.Throughput.Min != 0.8 || v.Throughput.Max != 1 ||
		v.CPUPerCheck.Median != 0.9 || v.P99.Median != 2 {
		t.Errorf("ratios: %+v %+v %+v", v, v.Throughput, v.CPUPerCheck)
	}
}
