package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		out = append(out, m)
	}
	return out
}

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

	quiet := NewService(fx.decider, log, fx.metrics, 0, 0)
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

	sampled := NewService(fx.decider, log, fx.metrics, 0, 1)
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
