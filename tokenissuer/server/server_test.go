package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// TestServiceServesAndShutsDownGracefully runs the issuer as `issuer serve`
// does: health and metrics answer, and cancelling (SIGTERM) stops it cleanly.
func TestServiceServesAndShutsDownGracefully(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.SQLitePath = filepath.Join(dir, "issuer.db")
	cfg.Store.SecretHashKeyFile = filepath.Join(dir, "hash.key")
	svc, err := server.NewServer(context.Background(), cfg, tokenissuer.SystemClock{}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	base := "http://" + svc.Addr().String()

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, _ := get("/healthz"); status != 200 {
		t.Fatalf("/healthz = %d", status)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("nobody", "x")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token for an unknown client: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if status, body := get("/metrics"); status != 200 || !strings.Contains(body, `portcullis_issuer_token_requests_total{outcome="invalid_client"} 1`) || !strings.Contains(body, "portcullis_issuer_published_keys 1") {
		t.Fatalf("/metrics = %d:\n%s", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("shutdown did not finish")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestBadConfigFailsAtStartup(t *testing.T) {
	t.Parallel()
	cfg := server.DefaultConfig()
	cfg.Keys.Algorithm = "none"
	if _, err := server.NewServer(context.Background(), cfg, tokenissuer.SystemClock{}, discardLogger()); err == nil || !strings.Contains(err.Error(), "keys.algorithm") {
		t.Fatalf("error %v", err)
	}
}

// TestPostgresIsRetriedAtStart: a database that is not accepting
// connections yet is tried again until store.connect_timeout, and the
// error then says so.
func TestPostgresIsRetriedAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := server.StoreConfig{Driver: "postgres", PostgresDSN: "postgres://portcullis@" + addr + "/portcullis?sslmode=disable&connect_timeout=1", ConnectTimeout: 30 * time.Second}
	// The fake clock moves on as the retries pause: thirty seconds of them
	// cost the test no waiting.
	clock := fakeclock.New()
	_, err = server.OpenStore(context.Background(), cfg, clock)
	if err == nil || !strings.Contains(err.Error(), "store.connect_timeout") {
		t.Fatalf("an unreachable database: %v", err)
	}
	if waited := clock.Now().Sub(fakeclock.Start); waited < 25*time.Second || waited > 30*time.Second {
		t.Errorf("retried for %s of store.connect_timeout's 30s", waited)
	}
	cfg.ConnectTimeout = 0
	if _, err := server.OpenStore(context.Background(), cfg, tokenissuer.SystemClock{}); err == nil || strings.Contains(err.Error(), "store.connect_timeout") {
		t.Fatalf("with no connect timeout, one try: %v", err)
	}
}
