package oauth2

import (
	"time"

	"github.com/portcullis/portcullis/tokenissuer/keys"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests    *prometheus.CounterVec
	latency     prometheus.Histogram
	rateLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, km *keys.Manager) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_issuer_token_requests_total",
			Help: "Token requests by outcome: issued, or the RFC 6749 error code.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portcullis_issuer_token_request_duration_seconds",
			Help:    "Time to answer a token request.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_issuer_rate_limited_total",
			Help: "Token and revocation requests held back by a limit: address (refused, 429), client (a failed authentication answered slowly), client_tokens and client_revocations (a client's own bounds, 429).",
		}, []string{"by"}),
	}
	published := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "portcullis_issuer_published_keys",
		Help: "Signing keys currently published in the JWKS.",
	}, func() float64 { return float64(len(km.Keys())) })
	signingAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "portcullis_issuer_signing_key_age_seconds",
		Help: "How long the key that signs now has been signing: alert when rotation is overdue.",
	}, func() float64 {
		for _, k := range km.Keys() {
			if k.Signing {
				return time.Since(k.ActiveAt).Seconds()
			}
		}
		return 0
	})
	reg.MustRegister(m.requests, m.latency, m.rateLimited, published, signingAge)
	return m
}
