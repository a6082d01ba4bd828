package main

import (
	"testing"

	"github.com/portcullis/portcullis/cmd/internal/clitest"
)

// TestEveryCommandExitsTwoOnUsageErrors walks every command of the binary.
func TestEveryCommandExitsTwoOnUsageErrors(t *testing.T) {
	if n := clitest.UsageErrorsExitTwo(t, run); n < 3 {
		t.Fatalf("found only %d commands", n)
	}
}

// TestIssuerExitCodes: 0 success, 1 a refused operation, 2 a usage error
// (a missing or bad configuration, a mistyped input), as the README says.
func TestIssuerExitCodes(t *testing.T) {
	t.Setenv("PORTCULLIS_ISSUER_CONFIG", "")
	dir, config := writeConfig(t, "")
	_, badConfig := writeConfig(t, "keys:\n  algorithm: HS256\n")
	cfg := []string{"--config", config}
	with := func(args ...string) []string { return append(args, cfg...) }
	clitest.ExitCodes(t, run, []clitest.Case{
		{"version", []string{"version"}, 0},
		{"env", []string{"env"}, 0},
		{"serve without a configuration", []string{"serve"}, 2},
		{"serve with a configuration that does not exist", []string{"serve", "--config", dir + "/nope.yaml"}, 2},
		{"a store command without a configuration", []string{"clients", "list"}, 2},
		{"a setting the issuer refuses", []string{"clients", "list", "--config", badConfig}, 2},
		{"create a client", with("clients", "create", "--id", "acme-app", "--scopes", "a"), 0},
		{"create it again", with("clients", "create", "--id", "acme-app", "--scopes", "a"), 1},
		{"create with no scopes said", with("clients", "create", "--id", "b"), 2},
		{"list clients", with("clients", "list"), 0},
		{"show a client", with("clients", "show", "acme-app"), 0},
		{"show a client that does not exist", with("clients", "show", "nobody"), 1},
		{"rotate a missing client's secret", with("clients", "rotate-secret", "nobody"), 1},
		{"revoke a missing client's tokens", with("clients", "revoke-tokens", "nobody"), 1},
		{"show a tenant that does not exist", with("tenants", "show", "nobody"), 1},
		{"create a tenant", with("tenants", "create", "--id", "acme", "--ceiling", "a"), 0},
		{"delete an account that does not exist", with("accounts", "delete", "nobody@example.com"), 1},
		{"list signing keys", with("keys", "list"), 0},
		{"read the audit trail", with("audit"), 0},
	})
}
