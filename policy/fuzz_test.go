package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary documents to the loader: it must return a policy
// or problems with locations, never panic.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*.yaml")
	samples, _ := filepath.Glob("../examples/policy/*.yaml")
	for _, file := range append(seeds, samples...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadBytes("fuzz.yaml", data)
		if err == nil {
			var m Match
			for _, r := range p.Routes() {
				p.Match(r.Methods[0], r.Path, &m)
			}
			return
		}
		if le, ok := err.(*LoadError); ok {
			for _, prob := range le.Problems {
				if prob.Line < 1 {
					t.Fatalf("problem without a line: %v", prob)
				}
			}
		}
	})
}

// FuzzMatch matches arbitrary methods and paths against the sample policy,
// checking that a matched path was safe and that parameters are slices of it.
func FuzzMatch(f *testing.F) {
	p, err := Load("../examples/policy")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"/v1/accounts/42", "/v1/accounts/42/statements/2026/01", "/v1/../admin", "/v1/accounts%2F42",
		"//", "/", "/v1/cards/1/freeze", "/v1/users/me", "/.well-known/jwks.json", "/v1/accounts/\x00", "/v1/%61"} {
		f.Add("GET", seed)
		f.Add("POST", seed)
	}
	f.Fuzz(func(t *testing.T, method, rawPath string) {
		path := SplitPath(rawPath)
		if CheckPath(path) != nil {
			return
		}
		var m Match
		p.Match(method, path, &m)
		if m.Route == nil {
			return
		}
		for name, v := range m.Params() {
			if v == "" {
				t.Fatalf("parameter %s bound to an empty segment of %q", name, path)
			}
		}
		if !templateMatches(m.Route.segments, path) {
			t.Fatalf("route %s does not match %q", m.Route.Name, path)
		}
	})
}

// FuzzCheckPath: a path CheckPath accepts has nothing that Envoy or an
// upstream could read as another path.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/v1/accounts/42", "/v1/../admin", "/v1/%2e%2e/admin", "/v1/accounts%2F42", "/v1//x", "/v1\\x", "/v1/%61", "/a/./b", "/%00", "/v1/accounts/", "/..;/admin", "/v1/%252e", "/v1/reports/payroll;x=1", "/v1/a%3b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if CheckPath(path) != nil {
			return
		}
		lower := strings.ToLower(path)
		for _, bad := range []string{"/../", "/./", "//", "%2f", "%5c", "%2e", "\\", "#", ";", "%3b"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("accepted %q containing %q", path, bad)
			}
		}
		if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/..") || strings.HasSuffix(path, "/.") || strings.Contains(path, "/..;") || strings.Contains(path, "/.;") {
			t.Fatalf("accepted %q", path)
		}
		for i := 0; i < len(path); i++ {
			if path[i] < 0x20 || path[i] == 0x7f {
				t.Fatalf("accepted a control byte in %q", path)
			}
		}
	})
}
