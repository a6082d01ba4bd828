package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestPolicyLint(t *testing.T) {
	out, _, err := runCmd(t, "policy", "lint", "../../examples/policy")
	if exitCode(err) != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("sample policy: %v %s", err, out)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "team.yaml")
	os.WriteFile(bad, []byte("version: 1\nroutes:\n  - name: a\n    methods: [GETT]\n    path: /v1/a\n    scope: [x]\n"), 0o644)
	_, stderr, err := runCmd(t, "policy", "lint", dir)
	if exitCode(err) != 1 {
		t.Fatalf("bad policy exit %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bad+":4:15: unknown method") || !strings.HasPrefix(lines[1], bad+":6:5: unknown key \"scope\"") {
		t.Fatalf("lint output:\n%s", stderr)
	}
}

func TestPolicyExplainAndTest(t *testing.T) {
	out, _, err := runCmd(t, "policy", "explain", "../../examples/policy", "POST", "/v1/cards/9/freeze?x=1")
	if err != nil || !strings.Contains(out, `matched route "freeze-card"`) || !strings.Contains(out, `"card-any-action"`) {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	// A ";" is refused before matching, and explain says why.
	out, _, err = runCmd(t, "policy", "explain", "../../examples/policy", "GET", "/v1/accounts/42;x=1")
	if err != nil || !strings.Contains(out, "refused before matching: 400 invalid-path") || !strings.Contains(out, "servlet-style upstreams strip") {
		t.Fatalf("explain with a path parameter: %v\n%s", err, out)
	}
	out, _, err = runCmd(t, "policy", "test", "../../examples/policy", "../../examples/policy-tests/cases.yaml")
	if exitCode(err) != 0 || !strings.Contains(out, " passed, 0 failed") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"policy"}, {"policy", "lint"}, {"check", "GET"}} {
		_, _, err := runCmd(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
