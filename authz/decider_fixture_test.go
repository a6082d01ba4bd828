package authz

import (
	"context"
	"testing"
	"time"
)

// deciderFixture is the real decision without the gRPC server: a JWKS
// served on loopback with keys, the verifier, the sample policy and the
// sample users behind the cache.
type deciderFixture struct {
	decider  *Decider
	verifier *Verifier
	metrics  *metrics
}

func newDeciderFixture(tb testing.TB, algorithms []string, keys ...signingKey) *deciderFixture {
	tb.Helper()
	jwks := newJWKSServer(tb, keys...)
	m := newMetrics(nil)
	source := NewJWKSSource(JWKSConfig{URL: jwks.URL, RefreshInterval: time.Hour, MinRefetchInterval: time.Hour, FetchTimeout: time.Second}, SystemClock{}, discard(), m)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	source.Start(ctx)
	for !source.Ready() {
		time.Sleep(time.Millisecond)
	}
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Algorithms: algorithms, ClockSkew: time.Second, CacheMaxTokens: 1000}, source, SystemClock{}, m)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	pol, err := newBenchPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	files, err := NewFileDirectory("../examples/users/users.yaml", discard())
	if err != nil {
		tb.Fatal(err)
	}
	users, err := NewCachedDirectory(files, CacheConfig{TTL: time.Hour, MaxStale: time.Hour, MaxUsers: 1000}, SystemClock{}, m)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(users.Close)
	return &deciderFixture{decider: NewDecider(pol, v, users, DeciderConfig{Headers: DefaultHeaderNames(), Realm: "api"}), verifier: v, metrics: m}
}
