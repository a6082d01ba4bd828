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
		{Name: "version", Args: []string{"version"}, Code: 0},
		{Name: "env", Args: []string{"env"}, Code: 0},
		{Name: "serve without a configuration", Args: []string{"serve"}, Code: 2},
		{Name: "serve with a configuration that does not exist", Args: []string{"serve", "--config", dir + "/nope.yaml"}, Code: 2},
		{Name: "a store command without a configuration", Args: []string{"clients", "list"}, Code: 2},
		{Name: "a setting the issuer refuses", Args: []string{"clients", "list", "--config", badConfig}, Code: 2},
		{Name: "create a client", Args: with("clients", "create", "--id", "acme-app", "--scopes", "a"), Code: 0},
		{Name: "create it again", Args: with("clients", "create", "--id", "acme-app", "--scopes", "a"), Code: 1},
		{Name: "create with no scopes said", Args: with("clients", "create", "--id", "b"), Code: 2},
		{Name: "list clients", Args: with("clients", "list"), Code: 0},
		{Name: "show a client", Args: with("clients", "show", "acme-app"), Code: 0},
		{Name: "show a client that does not exist", Args: with("clients", "show", "nobody"), Code: 1},
		{Name: "rotate a missing client's secret", Args: with("clients", "rotate-secret", "nobody"), Code: 1},
		{Name: "revoke a missing client's tokens", Args: with("clients", "revoke-tokens", "nobody"), Code: 1},
		{Name: "show a tenant that does not exist", Args: with("tenants", "show", "nobody"), Code: 1},
		{Name: "create a tenant", Args: with("tenants", "create", "--id", "acme", "--ceiling", "a"), Code: 0},
		{Name: "delete an account that does not exist", Args: with("accounts", "delete", "nobody@example.com"), Code: 1},
		{Name: "list signing keys", Args: with("keys", "list"), Code: 0},
		{Name: "read the audit trail", Args: with("audit"), Code: 0},
		{Name: "check a well-formed secret", Args: []string{"secrets", "check", wellFormedSecret}, Code: 0},
		{Name: "check a string that is not a secret", Args: []string{"secrets", "check", "hunter2"}, Code: 1},
		{Name: "check a secret with a typo", Args: []string{"secrets", "check", wellFormedSecret[:59] + "x"}, Code: 1},
		{Name: "report a secret nobody holds", Args: with("secrets", "report", wellFormedSecret), Code: 1},
	})
}

// wellFormedSecret is a secret of the documented format, made for tests.
const wellFormedSecret = "portcullis_NRhSLIOANBvZ66eo649HBGak4XZoEu22BJh4j5aYPmj4TfoJO"
