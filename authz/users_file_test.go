package authz

import (
	"strings"
	"testing"
)

// TestUserFileSyntaxErrorNamesTheLineToFix: a bad indent on line 4 is
// reported on line 4 (the YAML parser alone says line 1).
func TestUserFileSyntaxErrorNamesTheLineToFix(t *testing.T) {
	t.Parallel()
	_, err := ParseUserFile("users.yaml", []byte("users:\n  - id: \"42\"\n    status: active\n   tenant_id: acme\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "user directory users.yaml:4: YAML syntax error") {
		t.Fatalf("%v", err)
	}
}
