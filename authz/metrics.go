package authz

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// GoRuntimeCollector is the Go runtime's collector, with the live heap and
// the CPU the garbage collector takes (go_gc_heap_live_bytes,
// go_cpu_classes_gc_total_cpu_seconds_total) besides the usual memory
// statistics: what a full token cache costs. The load tool's baseline
// registers the same, so the two compare.
func GoRuntimeCollector() prometheus.Collector {
	return collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{
		Matcher: regexp.MustCompile(`^/(gc/heap/live:bytes|cpu/classes/gc/total:cpu-seconds)$`),
	}))
}

// metrics are authz's Prometheus metrics; reason labels are the Reason codes.
type metrics struct {
	checks          *prometheus.CounterVec
	latency         prometheus.Histogram
	signatureChecks prometheus.Counter
	// verificationsShed counts new tokens refused unverified (overloaded).
	verificationsShed prometheus.Counter
	jwksFetches       *prometheus.CounterVec
	jwksKeys          prometheus.Gauge
	// jwksFetched is when a key set was last accepted.
	jwksFetched prometheus.Gauge
	userLookups *prometheus.CounterVec
	// shadowDisagreements counts where a shadow policy would decide
	// otherwise.
	shadowDisagreements *prometheus.CounterVec

	// Resolved once: a labelled lookup on every check would hash the label
	// values each time.
	checksByReason map[Reason]prometheus.Counter
	userHit        prometheus.Counter
}

// outcomeOf is the outcome label of a reason.
func outcomeOf(r Reason) string {
	if r == ReasonAllowed || r == ReasonPublic {
		return "allow"
	}
	return "deny"
}

// check counts one decision.
func (m *metrics) check(r Reason) {
	if c, ok := m.checksByReason[r]; ok {
		c.Inc()
		return
	}
	m.checks.WithLabelValues(outcomeOf(r), string(r)).Inc()
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_authz_checks_total",
			Help: "Check decisions by outcome (allow, deny) and reason.",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portcullis_authz_check_duration_seconds",
			Help:    "Time to decide a Check, from request to response.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}),
		signatureChecks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_authz_token_verifications_total",
			Help: "Full token verifications (token cache misses that reached signature checking).",
		}),
		verificationsShed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_authz_token_verifications_shed_total",
			Help: "New tokens refused without verification (503 overloaded) because token.max_concurrent_verifications were running and token.verification_queue more waiting.",
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_authz_jwks_fetches_total",
			Help: "JWKS fetches by result: success, failure, rejected (empty set), throttled (unknown-kid refetch skipped).",
		}, []string{"result"}),
		jwksKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_authz_jwks_keys",
			Help: "Keys in the JWKS in use.",
		}),
		jwksFetched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_authz_jwks_last_success_timestamp_seconds",
			Help: "When the issuer's JWKS was last fetched and accepted (Unix seconds): its age is time() minus this.",
		}),
		shadowDisagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_policy_shadow_disagreements_total",
			Help: "Checks the shadow policy would have decided otherwise than the live one, by both reasons.",
		}, []string{"live_reason", "shadow_reason"}),
		userLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_authz_user_lookups_total",
			Help: "User directory lookups by result: hit (cache), found, not_found, stale (served from cache after a source error), error.",
		}, []string{"result"}),
	}
	m.checksByReason = map[Reason]prometheus.Counter{}
	for _, r := range append([]Reason{ReasonAllowed, ReasonPublic}, reasonsWithDenials()...) {
		m.checksByReason[r] = m.checks.WithLabelValues(outcomeOf(r), string(r))
	}
	m.userHit = m.userLookups.WithLabelValues("hit")
	if reg != nil {
		reg.MustRegister(m.checks, m.latency, m.signatureChecks, m.verificationsShed, m.jwksFetches, m.jwksKeys, m.jwksFetched, m.userLookups, m.shadowDisagreements)
	}
	return m
}

// NewMetrics registers authz's metrics on reg (nil: unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *metrics { return newMetrics(reg) }
