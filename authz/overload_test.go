package authz

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// blockingVerifier is a signature check that lasts until released.
type blockingVerifier struct{ started, release chan struct{} }

func (b blockingVerifier) Verify([]byte, []byte, any) error {
	close(b.started)
	<-b.release
	return errors.New("released")
}

// TestNewTokensAreShedWhenVerificationIsSaturated: with every verification
// worker busy and the queue full, a new token is refused at once with 503
// and Retry-After, unverified; a cached token is still allowed; and a token
// waiting in the queue is verified once a worker frees.
func TestNewTokensAreShedWhenVerificationIsSaturated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := testConfig(t, f.jwks.URL)
	cfg.Token.MaxConcurrentVerifications, cfg.Token.VerificationQueue = 1, 1
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	v := az.srv.Verifier
	newToken := func(i int) string {
		return f.token(t, func(cl map[string]any) { cl["jti"] = fmt.Sprint("overload-", i) })
	}
	cached := newToken(0)
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(cached)); !r.allowed {
		t.Fatalf("cached token: %d %s", r.status, r.reason)
	}

	// The only worker, busy as with a long verification.
	long := blockingVerifier{started: make(chan struct{}), release: make(chan struct{})}
	v.pending.Add(1)
	v.checks <- &signatureCheck{verifier: long, decoded: new([]byte), done: make(chan struct{})}
	<-long.started
	queued := make(chan reply, 1)
	go func() { queued <- az.check(t, "GET", "/v1/accounts/42", false, bearer(newToken(1))) }()
	waitUntil(t, "a verification to wait in the queue", func() bool { return len(v.checks) == 1 })

	shedBefore := testutil.ToFloat64(v.metrics.verificationsShed)
	r := az.check(t, "GET", "/v1/accounts/42", false, bearer(newToken(2)))
	if r.status != 503 || r.reason != string(ReasonOverloaded) || r.headers["retry-after"] != "1" {
		t.Fatalf("a new token beyond the queue: %d %s, Retry-After %q; want 503 overloaded, Retry-After 1", r.status, r.reason, r.headers["retry-after"])
	}
	if !strings.Contains(r.body, `"code":"unavailable"`) {
		t.Errorf("overloaded body %s does not say unavailable", r.body)
	}
	if got := testutil.ToFloat64(v.metrics.verificationsShed) - shedBefore; got != 1 {
		t.Errorf("shed verifications counted %v, want 1", got)
	}
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(cached)); !r.allowed {
		t.Fatalf("a cached token while verification is saturated: %d %s", r.status, r.reason)
	}
	select {
	case r := <-queued:
		t.Fatalf("the queued verification finished while no worker was free: %s", r.reason)
	default:
	}

	close(long.release)
	select {
	case r := <-queued:
		if !r.allowed {
			t.Fatalf("the queued token, once a worker freed: %d %s", r.status, r.reason)
		}
	case <-time.After(patience):
		t.Fatal("the queued verification never ran")
	}
	// A shed token is not remembered as refused: it is verified when it
	// comes back.
	if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(newToken(2))); !r.allowed {
		t.Fatalf("the shed token, retried: %d %s", r.status, r.reason)
	}
}

func TestVerificationWorkersDefaultToHalfTheCPUs(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"ES256"}, CacheMaxTokens: 10}, nil, SystemClock{}, newMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := v.workers; got != max(1, runtime.GOMAXPROCS(0)/2) {
		t.Fatalf("%d verification workers", got)
	}
}

// TestRefusedTokensAreAnsweredAfterTheRefusalDelay: a new token's refusal is
// held for the refusal delay; a remembered refusal and a valid token are
// answered at once.
func TestRefusedTokensAreAnsweredAfterTheRefusalDelay(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	f := newDeciderFixture(t, []string{"ES256"}, ec)
	cfg := f.verifier.cfg
	cfg.RefusalDelay = 50 * time.Millisecond
	v, err := NewVerifier(cfg, f.verifier.keys, SystemClock{}, f.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var held []time.Duration
	v.hold = func(_ context.Context, d time.Duration) { held = append(held, d) }

	valid := sign(t, ec, nil, claims(time.Now()))
	if _, err := v.Verify(context.Background(), valid); err != nil || len(held) != 0 {
		t.Fatalf("a valid token: %v, held %v", err, held)
	}
	forged := valid[:strings.LastIndexByte(valid, '.')+1] + encodeB64(make([]byte, 64))
	var te *TokenError
	if _, err := v.Verify(context.Background(), forged); !errors.As(err, &te) || te.Reason != ReasonInvalidToken {
		t.Fatalf("a forged token: %v, want invalid-token", err)
	}
	if len(held) != 1 || held[0] != cfg.RefusalDelay {
		t.Fatalf("a forged token's refusal was held %v, want once for %s", held, cfg.RefusalDelay)
	}
	if _, err := v.Verify(context.Background(), forged); !errors.As(err, &te) || te.Reason != ReasonInvalidToken || len(held) != 1 {
		t.Fatalf("the remembered refusal: %v, held %v; want invalid-token at once", err, held)
	}
}

func TestRefusalDelayEndsWithTheCaller(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { holdFor(ctx, time.Hour); close(done) }()
	cancel()
	<-done // a hold that outlived its caller would hang the test here
}
