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
		{"version", []string{"version"}, 0},
		{"env", []string{"env"}, 0},
		{"serve with a configuration that does not exist", []string{"serve", "--config", "no/such/authz.yaml"}, 2},
		{"lint the sample", []string{"policy", "lint", pol}, 0},
		{"lint a bad policy", []string{"policy", "lint", bad}, 1},
		{"lint a bad policy, as JSON", []string{"policy", "lint", "-o", "json", bad}, 1},
		{"explain", []string{"policy", "explain", pol, "GET", "/v1/accounts/42"}, 0},
		{"explain an unknown method", []string{"policy", "explain", pol, "FETCH", "/v1/accounts/42"}, 2},
		{"test the sample cases", []string{"policy", "test", pol, cases}, 0},
		{"diff a policy with itself", []string{"policy", "diff", pol, pol}, 0},
		{"diff against a bad policy", []string{"policy", "diff", pol, bad}, 2},
		{"check against nothing listening", []string{"check", "--addr", "127.0.0.1:1", "--timeout", "2s", "GET", "/v1/accounts/42"}, 2},
		{"an unknown output format", []string{"env", "-o", "xml"}, 2},
	})
}
