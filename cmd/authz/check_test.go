package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
)

// startAuthz runs authz with the sample policy and users, trusting a real
// issuer on loopback, and returns once its health service says SERVING.
func startAuthz(t *testing.T) (addr string, iss *issuertest.Issuer) {
	t.Helper()
	iss = issuertest.Start(t, issuertest.Options{Audience: "https://api.example.com", Scopes: []string{"accounts:read"}})
	cfg := authz.DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.Token.Issuer = "127.0.0.1:0", "127.0.0.1:0", iss.URL
	cfg.Policy, cfg.Users.File = "../../examples/policy", "../../examples/users/users.yaml"
	cfg.Revocation.Enabled = false
	srv, err := authz.NewServer(cfg, authz.SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr = srv.GRPCAddr().String()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The health service announces SERVING once the policy and the
	// issuer's keys are in: a signal, not a poll.
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return addr, iss
		}
	}
}

// TestCheckPrintsTheDecisionInEachFormat: `authz check` against a running
// authz prints the decision for people, the CheckResponse as JSON (-o json
// or --json) or YAML, and exits 0 allowed, 1 denied.
func TestCheckPrintsTheDecisionInEachFormat(t *testing.T) {
	addr, iss := startAuthz(t)
	token := iss.Token(t, "")
	out, _, err := runCmd(t, "check", "--addr", addr, "--token", token, "GET", "/v1/accounts/42")
	if exitCode(err) != 0 || !strings.Contains(out, "ALLOW") && !strings.Contains(out, "allow") {
		t.Fatalf("allowed, for people: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"--json"}, {"-o", "json"}} {
		out, _, err = runCmd(t, append(append([]string{"check", "--addr", addr, "--token", token}, args...), "GET", "/v1/accounts/42")...)
		var doc map[string]any
		if exitCode(err) != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc["okResponse"] == nil {
			t.Fatalf("allowed, %v: %v\n%s", args, err, out)
		}
	}
	out, _, err = runCmd(t, "check", "--addr", addr, "-o", "yaml", "GET", "/v1/accounts/42")
	if exitCode(err) != 1 || !strings.Contains(out, "deniedResponse:") || !strings.Contains(out, "missing-token") {
		t.Fatalf("denied, as YAML: %v\n%s", err, out)
	}
}
