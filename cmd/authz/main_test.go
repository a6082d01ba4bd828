package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/cmd/internal/cli"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// exitCode is the status the binary would exit with.
func exitCode(err error) int { return cli.Code(err) }

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
	out, _, err = runCmd(t, "policy", "test", "--require-coverage", "../../examples/policy", "../../examples/policy-tests/cases.yaml")
	if exitCode(err) != 0 || !strings.Contains(out, " passed, 0 failed") || !strings.Contains(out, "coverage: 22 of 22 routes exercised") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
	// Cases that exercise one route: the others are listed with where they
	// are defined, and --require-coverage fails.
	one := filepath.Join(t.TempDir(), "one.yaml")
	os.WriteFile(one, []byte("version: 1\ncases:\n  - {name: health, method: GET, path: /healthz, token: false, expect: public}\n"), 0o600)
	out, _, err = runCmd(t, "policy", "test", "../../examples/policy", one)
	if exitCode(err) != 0 || !strings.Contains(out, "coverage: 1 of 22 routes exercised") || !strings.Contains(out, "not exercised: close-account DELETE /v1/accounts/{accountId} (../../examples/policy/accounts.yaml:25:5)") {
		t.Fatalf("coverage: %v\n%s", err, out)
	}
	if _, _, err = runCmd(t, "policy", "test", "--require-coverage", "../../examples/policy", one); exitCode(err) != 1 {
		t.Fatalf("--require-coverage with routes left: exit %d", exitCode(err))
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

// TestEveryCommandExplainsItself: --help prints the command's own flags and
// an example, for every command, and is never read as an argument.
func TestEveryCommandExplainsItself(t *testing.T) {
	for args, want := range map[string][]string{
		"check --help":          {"--addr", "--token", "--on-behalf-of", "--raw-headers", "--header", "Example", "Exit status"},
		"policy lint --help":    {"authz policy lint POLICY", "Example"},
		"policy explain --help": {"METHOD PATH", "Example"},
		"policy test --help":    {"POLICY CASES", "Example"},
		"serve --help":          {"--config", "Example"},
		"--help":                {"serve", "check", "policy", "env", "completion"},
	} {
		out, _, err := runCmd(t, strings.Fields(args)...)
		if err != nil {
			t.Errorf("%s: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", args, w, out)
			}
		}
	}
}

func TestCheckTellsAnOutageFromADenial(t *testing.T) {
	_, _, err := runCmd(t, "check", "--addr", "127.0.0.1:1", "--timeout", "2s", "GET", "/v1/accounts/42")
	var unreachable cli.UnreachableError
	if !errors.As(err, &unreachable) {
		t.Fatalf("unreachable authz: %v, want an UnreachableError (exit 2)", err)
	}
	// In people's words, not gRPC's.
	if msg := err.Error(); !strings.Contains(msg, "is authz running") || strings.Contains(msg, "rpc error") {
		t.Fatalf("unreachable authz: %q", msg)
	}
}

func TestExplainRefusesAnUnknownMethod(t *testing.T) {
	_, _, err := runCmd(t, "policy", "explain", "../../examples/policy", "GETT", "/v1/accounts/42")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `unknown method "GETT"`) {
		t.Fatalf("%v", err)
	}
}

// TestLintReportsEveryProblemInOnePass: a route with an unknown method does
// not hide the conflict between two other routes.
func TestLintReportsEveryProblemInOnePass(t *testing.T) {
	_, stderr, err := runCmd(t, "policy", "lint", "../../policy/testdata/errors/bad-method-and-conflict.yaml")
	if exitCode(err) != 1 || !strings.Contains(stderr, `unknown method "GETT"`) || !strings.Contains(stderr, "conflicts with route") {
		t.Fatalf("%v\n%s", err, stderr)
	}
}

// TestTheSidecarLinksNoIssuerCode: the binary beside every Envoy carries
// only what it needs (no store, no SQLite, no PostgreSQL driver).
func TestTheSidecarLinksNoIssuerCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// Prefixes: any package of the issuer's tree, any part of a driver,
	// the load tool.
	forbidden := []string{"github.com/portcullis/portcullis/tokenissuer", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/portcullis/portcullis/cmd/portcullis"}
	for _, dep := range strings.Fields(string(out)) {
		for _, prefix := range forbidden {
			if dep == prefix || strings.HasPrefix(dep, prefix+"/") {
				t.Errorf("cmd/authz links %s", dep)
			}
		}
	}
}

func TestPolicyCoverageAgainstOpenAPI(t *testing.T) {
	const api, pol = "../../policy/coverage/testdata/api.yaml", "../../policy/coverage/testdata/policy"
	out, _, err := runCmd(t, "policy", "coverage", "--openapi", api, "--ignore-route", "health", "--json", pol)
	if exitCode(err) != 1 {
		t.Fatalf("findings: exit %d\n%s", exitCode(err), out)
	}
	var rep struct {
		Operations int
		Findings   []struct{ Kind, Location, Route, Method, Path string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	kinds := map[string]bool{}
	for _, f := range rep.Findings {
		kinds[f.Kind] = true
		if f.Kind != "uncovered-operation" && !strings.Contains(f.Location, "routes.yaml:") {
			t.Errorf("%s without its policy location: %+v", f.Kind, f)
		}
	}
	for _, k := range []string{"uncovered-operation", "unused-route", "scope-mismatch", "public-mismatch"} {
		if !kinds[k] {
			t.Errorf("no %s finding in\n%s", k, out)
		}
	}
	// A policy that agrees with the document exits 0.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte(`version: 1
routes:
  - {name: status, methods: [GET], path: /v1/status, public: true}
  - {name: ping, methods: [GET], path: /v1/ping, public: true}
  - {name: accounts-read, methods: [GET], path: /v1/accounts, scopes: [accounts:read]}
  - {name: accounts-create, methods: [POST], path: /v1/accounts, scopes: [accounts:write]}
  - {name: account, methods: [GET], path: "/v1/accounts/{id}", scopes: [accounts:read, accounts:details]}
  - {name: account-update, methods: [PATCH], path: "/v1/accounts/{id}", scopes: [accounts:write]}
  - {name: account-close, methods: [DELETE], path: "/v1/accounts/{id}", scopes: [accounts:write, accounts:close]}
  - {name: transaction, methods: [GET], path: "/v1/accounts/{id}/transactions/{tx}", scopes: [transactions:read]}
`), 0o600)
	if out, _, err := runCmd(t, "policy", "coverage", "--openapi", api, dir); exitCode(err) != 0 || !strings.Contains(out, "8 operations, 8 routes, 0 findings") {
		t.Fatalf("agreeing policy: exit %d\n%s", exitCode(err), out)
	}
	if _, _, err := runCmd(t, "policy", "coverage", dir); !errors.As(err, new(usageError)) {
		t.Fatalf("without --openapi: %v", err)
	}
	if _, _, err := runCmd(t, "policy", "coverage", "--openapi", "no-such.yaml", dir); exitCode(err) != 2 {
		t.Fatalf("a missing document: exit %d", exitCode(err))
	}
}

func TestPolicyDiff(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"accounts.yaml", "cards.yaml", "platform.yaml", "users.yaml"} {
		raw, err := os.ReadFile(filepath.Join("../../examples/policy", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "users.yaml" {
			raw = []byte(strings.Replace(string(raw), "    scopes: [users:admin]\n    user: forbidden", "    scopes: [users:admin]\n    user: optional", 1))
		}
		os.WriteFile(filepath.Join(dir, f), raw, 0o600)
	}
	out, _, err := runCmd(t, "policy", "diff", "../../examples/policy", dir)
	if exitCode(err) != 1 || !strings.Contains(out, "POST /v1/users/{userId}/block: user-rule-changed") || !strings.Contains(out, "users.yaml:20:5") || !strings.Contains(out, "1 decisions change") {
		t.Fatalf("diff: exit %d\n%s", exitCode(err), out)
	}
	out, _, err = runCmd(t, "policy", "diff", "--json", "../../examples/policy", "../../examples/policy")
	if exitCode(err) != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("no change: exit %d\n%s", exitCode(err), out)
	}
}

// TestInternalPackagesImportNoProductPackage: internal/ is plumbing both
// halves share; a product import there would run the graph upward.
func TestInternalPackagesImportNoProductPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, product := range []string{"authz", "policy", "revocation", "tokenissuer", "envoy", "cmd"} {
			if p := "github.com/portcullis/portcullis/" + product; dep == p || strings.HasPrefix(dep, p+"/") {
				t.Errorf("internal/ links %s", dep)
			}
		}
	}
}

// TestMissingInputsAreUsageErrors: a mistyped path exits 2 on every policy
// command, so a CI gate never reads it as "the policy changed" or "a case
// failed"; a diff whose policy does not load exits 2 too.
func TestMissingInputsAreUsageErrors(t *testing.T) {
	const pol, cases = "../../examples/policy", "../../examples/policy-tests/cases.yaml"
	for _, args := range [][]string{
		{"policy", "lint", "no/such/policy"},
		{"policy", "explain", "no/such/policy", "GET", "/v1/accounts"},
		{"policy", "test", "no/such/policy", cases},
		{"policy", "test", pol, "no/such/cases.yaml"},
		{"policy", "diff", pol, "no/such/policy"},
		{"policy", "diff", "no/such/policy", pol},
		{"policy", "diff", pol, "../../policy/testdata/errors/bad-method-and-conflict.yaml"},
		{"policy", "coverage", "--openapi", "../../policy/coverage/testdata/api.yaml", "no/such/policy"},
	} {
		_, stderr, err := runCmd(t, args...)
		if code := exitCode(err); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%v)\n%s", args, code, err, stderr)
		}
	}
	// Unchanged: 0; a problem in the policy linted: 1.
	if _, _, err := runCmd(t, "policy", "diff", pol, pol); exitCode(err) != 0 {
		t.Errorf("diff of a policy with itself: %v", err)
	}
	if _, _, err := runCmd(t, "policy", "lint", "../../policy/testdata/errors/bad-method-and-conflict.yaml"); exitCode(err) != 1 {
		t.Errorf("lint of a bad policy: %v", err)
	}
}

// TestOutputJSONIsTheSameAsTheJSONFlag: -o json, the convention across the
// three binaries, is honoured where --json was.
func TestOutputJSONIsTheSameAsTheJSONFlag(t *testing.T) {
	const pol = "../../examples/policy"
	a, _, errA := runCmd(t, "policy", "diff", "--json", pol, pol)
	b, _, errB := runCmd(t, "policy", "diff", "-o", "json", pol, pol)
	if errA != nil || errB != nil || a != b || !strings.HasPrefix(strings.TrimSpace(a), "[") {
		t.Fatalf("--json %v %q; -o json %v %q", errA, a, errB, b)
	}
}

// TestPolicyToolsPrintJSONAndYAML: lint, explain and test print for people
// by default and, asked with -o json or -o yaml, a document a CI step can
// read, with the same exit codes.
func TestPolicyToolsPrintJSONAndYAML(t *testing.T) {
	const pol, cases = "../../examples/policy", "../../examples/policy-tests/cases.yaml"
	decode := func(t *testing.T, out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
	}

	out, _, err := runCmd(t, "policy", "lint", "-o", "json", pol)
	var lint lintView
	decode(t, out, &lint)
	if exitCode(err) != 0 || !lint.OK || lint.Routes != 22 || lint.Files != 4 || len(lint.Problems) != 0 {
		t.Fatalf("lint of the sample: %v %+v", err, lint)
	}
	bad := "../../policy/testdata/errors/bad-method-and-conflict.yaml"
	out, _, err = runCmd(t, "policy", "lint", "-o", "json", bad)
	lint = lintView{}
	decode(t, out, &lint)
	if exitCode(err) != 1 || lint.OK || len(lint.Problems) < 2 || lint.Problems[0].File != bad || lint.Problems[0].Line == 0 {
		t.Fatalf("lint of a bad policy: %v %+v", err, lint)
	}

	out, _, err = runCmd(t, "policy", "explain", "-o", "json", pol, "POST", "/v1/cards/9/freeze?x=1")
	var ex explainView
	decode(t, out, &ex)
	if err != nil || ex.Route == nil || ex.Route.Name != "freeze-card" || ex.Params["cardId"] != "9" || len(ex.Others) == 0 {
		t.Fatalf("explain: %v %+v", err, ex)
	}
	out, _, err = runCmd(t, "policy", "explain", "-o", "json", pol, "GET", "/v1/accounts/42;x=1")
	ex = explainView{}
	decode(t, out, &ex)
	if err != nil || ex.Route != nil || ex.Refused == "" {
		t.Fatalf("explain of a refused path: %v %+v", err, ex)
	}

	out, _, err = runCmd(t, "policy", "test", "-o", "json", pol, cases)
	var tv testView
	decode(t, out, &tv)
	if exitCode(err) != 0 || tv.Failed != 0 || tv.Passed != len(tv.Cases) || tv.Passed == 0 || len(tv.Unexercised) != 0 || tv.Cases[0].Source.Line == 0 {
		t.Fatalf("policy test: %v %+v", err, tv)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.yaml")
	os.WriteFile(wrong, []byte("version: 1\ncases:\n  - {name: health, method: GET, path: /healthz, token: false, expect: missing-token}\n"), 0o600)
	out, _, err = runCmd(t, "policy", "test", "-o", "yaml", pol, wrong)
	if exitCode(err) != 1 || !strings.Contains(out, "failed: 1") || !strings.Contains(out, "name: health") || !strings.Contains(out, "line: 3") {
		t.Fatalf("a failing case as YAML: %v\n%s", err, out)
	}
}
