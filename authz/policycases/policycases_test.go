package policycases

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/policy"
)

func TestSampleCasesPass(t *testing.T) {
	t.Parallel()
	p, err := policy.Load("../../examples/policy")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := Load("../../examples/policy-tests/cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if failed := Report(&out, "cases.yaml", Run(context.Background(), p, cases)); failed != 0 || len(cases) < 15 {
		t.Fatalf("%d of %d cases failed:\n%s", failed, len(cases), out.String())
	}
}

func TestFailuresAreReportedWithTheirLine(t *testing.T) {
	t.Parallel()
	p, err := policy.Load("../../examples/policy")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "cases.yaml")
	os.WriteFile(file, []byte(`version: 1
cases:
  - name: right
    method: GET
    path: /v1/accounts
    scopes: [accounts:read]
    expect: allow
  - name: wrong expectation
    method: GET
    path: /v1/accounts
    scopes: []
    expect: allow
  - name: wrong route
    method: GET
    path: /v1/users/me
    scopes: [users:read]
    expect: user-context-required
    route: get-user
`), 0o644)
	cases, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	failed := Report(&out, "cases.yaml", Run(context.Background(), p, cases))
	report := out.String()
	if failed != 2 || !strings.Contains(report, "cases.yaml:8: GET /v1/accounts: want allow, got 403 missing-scope (route list-accounts)") ||
		!strings.Contains(report, "cases.yaml:13:") || !strings.HasSuffix(report, "1 passed, 2 failed\n") {
		t.Fatalf("report:\n%s", report)
	}
}

func TestBadCasesFileIsRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"unknown-key.yaml": "version: 1\ncases:\n  - name: x\n    method: GET\n    path: /\n    expect: allow\n    scope: [a]\n",
		"no-expect.yaml":   "version: 1\ncases:\n  - name: x\n    method: GET\n    path: /\n",
		"no-version.yaml":  "cases: []\n",
		"bad-user.yaml":    "version: 1\ncases:\n  - {name: x, method: GET, path: /, expect: allow, user: {status: gone}}\n",
	} {
		file := filepath.Join(dir, name)
		os.WriteFile(file, []byte(content), 0o644)
		if _, err := Load(file); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestCasesFileProblemsSpeakTheFilesLanguage: a cases file is held to the
// configuration files' standard: file:line:col, the closest known name,
// never a Go type; and an expect that is no outcome is refused.
func TestCasesFileProblemsSpeakTheFilesLanguage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, want string }{
		"misspelt key": {"version: 1\ncases:\n  - name: x\n    methd: GET\n    path: /\n    expect: allow\n",
			`:4:5: unknown setting "cases.methd" (did you mean "cases.method"?)`},
		"wrong kind": {"version: one\ncases: []\n", `:1:10: version: "one" is`},
		"misspelt expect": {"version: 1\ncases:\n  - {name: x, method: GET, path: /, expect: publik}\n",
			`expect "publik" is not allow, public or a denial reason (did you mean "public"?)`},
	} {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		os.WriteFile(file, []byte(tc.content), 0o644)
		_, err := Load(file)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "policycases.") || strings.Contains(err.Error(), "!!str")) {
			t.Errorf("%s: a Go type or YAML tag in %q", name, err)
		}
	}
}
