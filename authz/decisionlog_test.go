package authz

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDecisionLog(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	fx := newDeciderFixture(t, []string{"ES256"}, ec)
	var sink syncBuffer
	log := slog.New(slog.NewJSONHandler(&sink, nil))
	tok := sign(t, ec, nil, claims(time.Now()))
	check := func(svc *Service, headers ...[2]string) {
		all := append([][2]string{{"x-request-id", "req-7"}}, headers...)
		if _, err := svc.Check(context.Background(), NewCheckRequest("POST", "/v1/accounts?ssn=123", "api", all, false)); err != nil {
			t.Fatal(err)
		}
	}

	quiet := NewService(fx.decider, ServiceConfig{}, SystemClock{}, log, fx.metrics)
	check(quiet, [2]string{"authorization", "Bearer " + tok}, [2]string{"x-on-behalf-of", "user 42"}) // allowed: not logged
	check(quiet, [2]string{"authorization", "Bearer " + tok})                                         // user-context-required
	check(quiet, [2]string{"authorization", "Bearer " + tok + "x"})                                   // invalid-token
	lines := sink.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want the 2 denials only", len(lines))
	}
	first := lines[0]
	for field, want := range map[string]any{"msg": "check", "decision": "deny", "reason": "user-context-required", "status": float64(400),
		"route": "open-account", "client_id": "client-1", "decision_id": "req-7", "method": "POST", "path": "/v1/accounts"} {
		if first[field] != want {
			t.Errorf("log field %s = %v, want %v", field, first[field], want)
		}
	}
	if _, ok := first["latency"]; !ok {
		t.Error("no latency in the decision log")
	}
	if lines[1]["reason"] != "invalid-token" || lines[1]["cause"] == nil {
		t.Errorf("invalid token line: %v", lines[1])
	}

	sampled := NewService(fx.decider, ServiceConfig{AllowSampleRate: 1}, SystemClock{}, log, fx.metrics)
	check(sampled, [2]string{"authorization", "Bearer " + tok}, [2]string{"x-on-behalf-of", "user 42"})
	lines = sink.lines(t)
	if len(lines) != 3 || lines[2]["decision"] != "allow" || lines[2]["user_id"] != "42" {
		t.Fatalf("allow_sample_rate 1 did not log the allow: %v", lines[len(lines)-1])
	}
	raw := sink.buf.String()
	if strings.Contains(raw, tok[:40]) || strings.Contains(raw, "ssn=123") {
		t.Fatal("the decision log contains the token or the query string")
	}
}

// TestDenialLogIsRateLimitedPerReason: a flood of one denial reason logs
// the first lines of each interval and then one summary with the count
// left out; other reasons keep their own budget; metrics count everything.
func TestDenialLogIsRateLimitedPerReason(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	fx := newDeciderFixture(t, []string{"ES256"}, ec)
	var sink syncBuffer
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	svc := NewService(fx.decider, ServiceConfig{DenialsPerInterval: 10, DenialInterval: 10 * time.Second}, clock, slog.New(slog.NewJSONHandler(&sink, nil)), fx.metrics)
	deny := func(n int, headers ...[2]string) {
		for i := 0; i < n; i++ {
			if _, err := svc.Check(context.Background(), NewCheckRequest("GET", "/v1/accounts/42", "api", headers, false)); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(msg, reason string) (n int, suppressed float64) {
		for _, l := range sink.lines(t) {
			if l["msg"] == msg && l["reason"] == reason {
				n++
				if s, ok := l["suppressed"].(float64); ok {
					suppressed += s
				}
			}
		}
		return n, suppressed
	}
	before := testutil.ToFloat64(fx.metrics.checksByReason[ReasonMissingToken])

	deny(250)                                                     // missing-token
	deny(3, [2]string{"authorization", "Bearer not-a.jwt.token"}) // invalid-token: its own budget
	if n, _ := count("check", "missing-token"); n != 10 {
		t.Fatalf("%d missing-token lines in the first interval, want 10", n)
	}
	if n, _ := count("check", "invalid-token"); n != 3 {
		t.Fatalf("%d invalid-token lines, want 3", n)
	}
	if n, _ := count("check log lines suppressed", "missing-token"); n != 0 {
		t.Fatal("summary before the interval ended")
	}

	clock.Advance(10 * time.Second)
	deny(1) // the next interval's first denial reports the last one's count
	if n, suppressed := count("check log lines suppressed", "missing-token"); n != 1 || suppressed != 240 {
		t.Fatalf("summary lines %d, suppressed %v; want 1, 240", n, suppressed)
	}
	deny(20)
	clock.Advance(10 * time.Second)
	svc.denials.flush() // a flood that stopped is still reported
	if n, suppressed := count("check log lines suppressed", "missing-token"); n != 2 || suppressed != 240+11 {
		t.Fatalf("summary lines %d, suppressed %v after flush; want 2, 251", n, suppressed)
	}
	if got := testutil.ToFloat64(fx.metrics.checksByReason[ReasonMissingToken]) - before; got != 271 {
		t.Fatalf("metrics counted %v missing-token checks, want every one of 271", got)
	}
}
