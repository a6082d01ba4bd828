package authz

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestShutdownFinishesInFlightChecks stops authz while checks wait on a slow
// user service: each in-flight check still gets its answer.
func TestShutdownFinishesInFlightChecks(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	users := newUserService(t, map[string]string{})
	// Every lookup waits at the gate until shutdown has begun; no timeout
	// of the test's may expire meanwhile, however slow the machine.
	gate := make(chan struct{})
	users.gate.Store(&gate)
	cfg := testConfig(t, jwks.URL)
	cfg.Users.Source, cfg.Users.URL = "http", users.URL+"/users/{id}"
	cfg.Users.Timeout, cfg.CheckTimeout, cfg.ShutdownTimeout = time.Minute, time.Minute, time.Minute
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	tok := sign(t, ec, nil, claims(time.Now()))

	const n = 20
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := NewCheckRequest("GET", "/v1/accounts/42", "api", [][2]string{{"authorization", "Bearer " + tok}, {"x-on-behalf-of", "user u" + string(rune('a'+i))}}, false)
			resp, err := az.client.Check(context.Background(), req)
			if err != nil {
				results <- err
				return
			}
			if resp.GetDeniedResponse().GetStatus().GetCode() != 403 { // unknown users: a real answer
				results <- status.Errorf(codes.Internal, "unexpected response %v", resp)
				return
			}
			results <- nil
		}(i)
	}
	// Stop only once every check is in flight, waiting on the user service,
	// and let the lookups answer only once shutdown has begun.
	waitUntil(t, "every check at the user service", func() bool { return users.calls.Load() >= n })
	az.cancel()
	waitUntil(t, "shutdown to begin", func() bool {
		hr, err := az.srv.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && hr.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	close(gate)
	if err := <-az.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	az.cancel = nil
	az.conn.Close()
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("in-flight check lost: %v", err)
		}
	}
}
