package authz

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestShutdownFinishesInFlightChecks stops authz while checks wait on a slow
// user service: each in-flight check still gets its answer.
func TestShutdownFinishesInFlightChecks(t *testing.T) {
	t.Parallel()
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	users := newUserService(t, map[string]string{})
	users.delay.Store(int64(300 * time.Millisecond)) // below users.timeout
	cfg := testConfig(t, jwks.URL)
	cfg.Users.Source, cfg.Users.URL = "http", users.URL+"/users/{id}"
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
	// Stop only once every check is in flight, waiting on the user service.
	for users.calls.Load() < n {
		time.Sleep(5 * time.Millisecond)
	}
	az.cancel()
	select {
	case err := <-az.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not finish")
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
