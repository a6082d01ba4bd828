package authz

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// TestPolicyEditedRepeatedlyUnderLoad rewrites the policy (good and bad
// versions, by rename as editors do) while checks run: every good edit is
// loaded and every bad one refused (each is waited for), stable routes are
// always allowed, the toggled route is allowed or unrouted, nothing else
// happens, and no goroutines are left behind.
func TestPolicyEditedRepeatedlyUnderLoad(t *testing.T) {
	ec := newSigningKey(t, "ec-1", jwa.ES256)
	jwks := newJWKSServer(t, ec)
	cfg := testConfig(t, jwks.URL)
	before := runtime.NumGoroutine()
	az := startAuthz(t, cfg, SystemClock{})
	az.waitReady(t)
	az.waitWatching(t)
	tok := sign(t, ec, nil, claims(time.Now()))
	teamFile := filepath.Join(cfg.Policy, "reports.yaml")
	hasRoute := func(name string) bool {
		for _, r := range az.srv.Policies.Current().Routes() {
			if r.Name == name {
				return true
			}
		}
		return false
	}
	loadsBefore, failuresBefore := az.srv.Policies.Loads()
	good := func(i int) string {
		doc := "version: 1\nroutes:\n  - name: report-" + fmt.Sprint(i) + "\n    methods: [GET]\n    path: /v1/reports/" + fmt.Sprint(i) + "\n    scopes: [accounts:read]\n"
		if i%2 == 0 {
			doc += "  - name: toggled\n    methods: [GET]\n    path: /v1/toggled\n    scopes: [accounts:read]\n"
		}
		return doc
	}
	bad := "version: 1\nroutes:\n  - name: broken\n    methods: [GETT]\n    path: /v1/x\n"

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checks, unexpected atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := az.check(t, "GET", "/v1/accounts/42", false, bearer(tok)); !r.allowed {
					unexpected.Add(1)
					t.Errorf("stable route during edits: %d %s", r.status, r.reason)
				}
				if r := az.check(t, "GET", "/v1/toggled", false, bearer(tok)); !r.allowed && r.reason != "no-matching-route" {
					unexpected.Add(1)
					t.Errorf("toggled route during edits: %d %s", r.status, r.reason)
				}
				checks.Add(2)
			}
		}()
	}
	var goodEdits, badEdits uint64
	for i := 0; i < 40; i++ {
		content := good(i)
		if i%3 == 2 {
			content = bad
		}
		_, failedSoFar := az.srv.Policies.Loads()
		tmp := filepath.Join(cfg.Policy, ".reports.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, teamFile); err != nil {
			t.Fatal(err)
		}
		if content == bad {
			badEdits++
			waitUntil(t, fmt.Sprintf("bad edit %d to be refused", i), func() bool { _, f := az.srv.Policies.Loads(); return f > failedSoFar })
		} else {
			goodEdits++
			waitUntil(t, fmt.Sprintf("good edit %d to be loaded", i), func() bool { return hasRoute(fmt.Sprintf("report-%d", i)) })
		}
	}
	close(stop)
	wg.Wait()
	loads, failures := az.srv.Policies.Loads()
	if loads-loadsBefore < goodEdits || failures-failuresBefore < badEdits {
		t.Fatalf("%d loads and %d refusals for %d good and %d bad edits", loads-loadsBefore, failures-failuresBefore, goodEdits, badEdits)
	}
	if checks.Load() == 0 || unexpected.Load() > 0 {
		t.Fatalf("%d checks, %d unexpected", checks.Load(), unexpected.Load())
	}
	az.stop()
	waitUntil(t, fmt.Sprintf("goroutines back to %d (+5) after shutdown", before), func() bool { return runtime.NumGoroutine() <= before+5 })
}
