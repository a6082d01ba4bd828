package yamlsyntax

import "testing"

func TestCheckFindsTheLineToFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		line      int
	}{
		{"unclosed [ on line 4", "listen: a\nrealm: api\ntoken:\n  algorithms: [RS256, ES256\n  audience: x\n", 4},
		{"bad indent in a list on line 4", "users:\n  - id: \"42\"\n    status: active\n   tenant_id: acme\n", 4},
		{"unclosed quote on line 2", "a: b\nc: 'unclosed\nd: e\n", 2},
		{"tab indent on line 3", "a:\n  b: 1\n\tc: 2\n", 3},
	}
	for _, tt := range tests {
		err := Check([]byte(tt.doc))
		if err == nil || err.Line != tt.line {
			t.Errorf("%s: %v, want line %d", tt.name, err, tt.line)
		}
	}
	if err := Check([]byte("a: [1, 2]\nb: {c: d}\n")); err != nil {
		t.Errorf("valid YAML: %v", err)
	}
}
