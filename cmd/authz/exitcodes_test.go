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

// TestAuthzExitCodes: 0 success, 1 a denial or a failed check, 2 a usage
// error or an unreachable server, as the README says.
func TestAuthzExitCodes(t *testing.T) {
	t.Setenv("PORTCULLIS_AUTHZ_CONFIG", "")
	const pol, cases, bad = "../../examples/policy", "../../examples/policy-tests/cases.yaml", "../../policy/testdata/errors/bad-method-and-conflict.yaml"
	clitest.ExitCodes(t, run, []clitest.Case{
		{Name: "version", Args: []string{"version"}, Code: 0},
		{Name: "env", Args: []string{"env"}, Code: 0},
		{Name: "serve with a configuration that does not exist", Args: []string{"serve", "--config", "no/such/authz.yaml"}, Code: 2},
		{Name: "lint the sample", Args: []string{"policy", "lint", pol}, Code: 0},
		{Name: "lint a bad policy", Args: []string{"policy", "lint", bad}, Code: 1},
		{Name: "lint a bad policy, as JSON", Args: []string{"policy", "lint", "-o", "json", bad}, Code: 1},
		{Name: "explain", Args: []string{"policy", "explain", pol, "GET", "/v1/accounts/42"}, Code: 0},
		{Name: "explain an unknown method", Args: []string{"policy", "explain", pol, "FETCH", "/v1/accounts/42"}, Code: 2},
		{Name: "test the sample cases", Args: []string{"policy", "test", pol, cases}, Code: 0},
		{Name: "diff a policy with itself", Args: []string{"policy", "diff", pol, pol}, Code: 0},
		{Name: "diff against a bad policy", Args: []string{"policy", "diff", pol, bad}, Code: 2},
		{Name: "check against nothing listening", Args: []string{"check", "--addr", "127.0.0.1:1", "--timeout", "2s", "GET", "/v1/accounts/42"}, Code: 2},
		{Name: "an unknown output format", Args: []string{"env", "-o", "xml"}, Code: 2},
	})
}
