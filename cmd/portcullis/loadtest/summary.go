package loadtest

import (
	"slices"
	"strconv"
	"time"
)

// Summary is a comparison's result as data (`portcullis load -o json`):
// each server's medians over the rounds, and its ratios to the first
// server measured in the same rounds.
type Summary struct {
	Mix         string          `json:"mix"`
	Algorithm   string          `json:"algorithm"`
	Tokens      int             `json:"tokens"`
	Users       int             `json:"users"`
	Concurrency int             `json:"concurrency"`
	Rounds      int             `json:"rounds"`
	Duration    string          `json:"duration_per_round"`
	Servers     []ServerSummary `json:"servers"`
}

// ServerSummary is one server's medians over the rounds.
type ServerSummary struct {
	Name            string  `json:"name"`
	ChecksPerSecond float64 `json:"checks_per_second"`
	CPUPerCheck     string  `json:"cpu_per_check"`
	P50             string  `json:"p50"`
	P99             string  `json:"p99"`
	P999            string  `json:"p999"`
	Errors          int64   `json:"errors"`
	Wrong           int64   `json:"wrong"`
	// ByStatus counts outcomes by HTTP status over all rounds.
	ByStatus map[string]int64 `json:"by_status"`
	// Noisy counts measurements other processes disturbed past the limit.
	Noisy int `json:"noisy_measurements"`
	// VersusFirst compares the server with the first (the baseline), round
	// by round; absent for the first itself.
	VersusFirst *Ratios `json:"versus_first,omitempty"`
}

// Ratios compare two servers measured in the same rounds.
type Ratios struct {
	Against     string `json:"against"`
	Throughput  *Ratio `json:"throughput"`
	CPUPerCheck *Ratio `json:"cpu_per_check"`
	P99         *Ratio `json:"p99"`
}

// Ratio is the median of per-round ratios and their range.
type Ratio struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// roundRatio is server i's measure f over server base's, round by round;
// nil when no round measured the base.
func roundRatio(rounds [][]Result, i, base int, f func(Result) float64) *Ratio {
	var rs []float64
	for _, round := range rounds {
		if b := f(round[base]); b > 0 {
			rs = append(rs, f(round[i])/b)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return &Ratio{Median: median(rs), Min: slices.Min(rs), Max: slices.Max(rs)}
}

// Summarize turns the rounds of a comparison into a Summary.
func Summarize(o CompareOptions, rounds [][]Result) Summary {
	s := Summary{Mix: string(o.Mix), Algorithm: o.Algorithm.String(), Tokens: o.Tokens, Users: o.Users, Concurrency: o.Concurrency,
		Rounds: len(rounds), Duration: o.Duration.String(), Servers: []ServerSummary{}}
	if len(rounds) == 0 {
		return s
	}
	for i := range rounds[0] {
		med := func(f func(Result) float64) float64 {
			var v []float64
			for _, r := range rounds {
				v = append(v, f(r[i]))
			}
			return median(v)
		}
		dur := func(f func(Result) time.Duration) string {
			return time.Duration(med(func(r Result) float64 { return float64(f(r)) })).String()
		}
		ss := ServerSummary{Name: rounds[0][i].Name, ChecksPerSecond: med(Result.Rate), CPUPerCheck: dur(Result.CPUPerCheck),
			P50: dur(func(r Result) time.Duration { return r.P50 }), P99: dur(func(r Result) time.Duration { return r.P99 }),
			P999: dur(func(r Result) time.Duration { return r.P999 }), ByStatus: map[string]int64{}}
		for _, round := range rounds {
			r := round[i]
			ss.Errors += r.Errors
			ss.Wrong += r.Wrong
			if r.Noisy {
				ss.Noisy++
			}
			for code, n := range r.ByStatus {
				ss.ByStatus[strconv.Itoa(code)] += n
			}
		}
		if i > 0 {
			ss.VersusFirst = &Ratios{Against: rounds[0][0].Name,
				Throughput:  roundRatio(rounds, i, 0, Result.Rate),
				CPUPerCheck: roundRatio(rounds, i, 0, func(r Result) float64 { return float64(r.CPUPerCheck()) }),
				P99:         roundRatio(rounds, i, 0, func(r Result) float64 { return float64(r.P99) })}
		}
		s.Servers = append(s.Servers, ss)
	}
	return s
}
