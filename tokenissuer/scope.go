package tokenissuer

import (
	"fmt"
	"strings"
)

// ValidScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// one or more of %x21 / %x23-5B / %x5D-7E (printable ASCII without space,
// double quote or backslash).
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ParseScope splits a scope parameter (RFC 6749 §3.3: scope-tokens separated by
// single spaces) and rejects malformed ones. Duplicates are dropped.
func ParseScope(raw string) ([]string, error) {
	if raw == "" {
		return nil, fmt.Errorf("scope is empty")
	}
	parts := strings.Split(raw, " ")
	out := make([]string, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for _, p := range parts {
		if !ValidScopeToken(p) {
			return nil, fmt.Errorf("scope %q is not a valid scope-token (RFC 6749 §3.3)", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// NarrowScopes (RFC 6749 §3.3) returns the requested scopes when they are all granted to the
// client, in the order requested, or the scopes the client lacks.
func NarrowScopes(clientScopes, requested []string) (granted, missing []string) {
	have := make(map[string]bool, len(clientScopes))
	for _, s := range clientScopes {
		have[s] = true
	}
	for _, s := range requested {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, missing
	}
	return requested, nil
}

// FormatScope writes scopes as a scope parameter: space-delimited (RFC 6749 §3.3).
func FormatScope(scopes []string) string { return strings.Join(scopes, " ") }
