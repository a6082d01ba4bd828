package policy

import "testing"

func TestCheckPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		safe bool
	}{
		{"/", true},
		{"/v1/accounts/42", true},
		{"/v1/accounts/", true},
		{"/v1/accounts/a:b@c", true},
		{"/v1/users/%20x", true}, // an encoded space is not a separator
		{"", false},
		{"v1/accounts", false},
		{"*", false},
		{"/v1/../admin", false},
		{"/v1/./accounts", false},
		{"/v1/..", false},
		{"/..", false},
		{"/v1/.", false},
		{"//v1/accounts", false},
		{"/v1//accounts", false},
		{"/v1/accounts%2F42", false},
		{"/v1/accounts%2f42", false},
		{"/v1/accounts%5C42", false},
		{"/v1/%2e%2e/admin", false},
		{"/v1/%2E", false},
		{"/v1/%61ccounts", false}, // encoded unreserved: the upstream would see /v1/accounts
		{"/v1/accounts%00", false},
		{"/v1/accounts%0a", false},
		{"/v1/accounts\\42", false},
		{"/v1/accounts\n", false},
		{"/v1/accounts\x00", false},
		{"/v1/accounts\x7f", false},
		{"/v1/accounts#frag", false},
		{"/v1/%zz", false},
		{"/v1/%4", false},
		{"/v1/%", false},
		{"/..;/admin", false},
		{"/v1/..;jsessionid=x/admin", false},
		{"/v1/.;/x", false},
		{"/v1/..;", false},
		{"/v1/a;b", false},
		{"/v1/reports/payroll;x=1", false},
		{"/v1/reports/payroll;", false},
		{"/;", false},
		{"/v1/reports/payroll%3Bx=1", false},
		{"/v1/reports/payroll%3b", false},
		{"/v1/a b", false},
		{"/v1/caf\xc3\xa9", false},
		{"/v1/caf%C3%A9", true},
		{"/v1/<script>", false},
		{"/v1/a|b", false},
		{"/v1/[x]", false},
		{"/v1/a\"b", false},
		{"/v1/~user/a:b@c!$&'()*+,=", true},
		{"/v1/a%3A", true}, // an encoded reserved character that is not ";" stays allowed
	}
	for _, tt := range tests {
		if err := CheckPath(tt.path); (err == nil) != tt.safe {
			t.Errorf("CheckPath(%q) = %v, want safe=%v", tt.path, err, tt.safe)
		}
	}
}

func TestSplitPath(t *testing.T) {
	t.Parallel()
	if got := SplitPath("/v1/a?x=/../b"); got != "/v1/a" {
		t.Fatalf("got %q", got)
	}
	if got := SplitPath("/v1/a"); got != "/v1/a" {
		t.Fatalf("got %q", got)
	}
}
