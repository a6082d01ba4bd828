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

// TestPortcullisExitCodes: the developer tools refuse bad flags with 2
// before starting anything.
func TestPortcullisExitCodes(t *testing.T) {
	clitest.ExitCodes(t, run, []clitest.Case{
		{Name: "version", Args: []string{"version"}, Code: 0},
		{Name: "load for no time", Args: []string{"load", "--duration", "0s"}, Code: 2},
		{Name: "load with HMAC tokens", Args: []string{"load", "--alg", "HS256"}, Code: 2},
	})
}
