package authz

import (
	"errors"
	"fmt"
	"strings"
)

// maxTokenLength bounds the bearer tokens we will parse; ours are under 1 KB.
const maxTokenLength = 8 << 10

// HeaderValues is every value a request carried for one header name.
type HeaderValues struct {
	// First is the first value seen.
	First string
	// Count is how many times the header appeared (0 when absent).
	Count int
}

// Add records one more value.
func (h *HeaderValues) Add(v string) {
	if h.Count == 0 {
		h.First = v
	}
	h.Count++
}

var errMissingToken = errors.New("no Authorization header")

// parseBearer extracts the token of "Authorization: Bearer <token68>"
// (RFC 6750 §2.1). Exactly one header is allowed; Envoy comma-merges
// duplicates, and a comma is not a token68 character, so a merged pair is
// malformed too.
func parseBearer(h HeaderValues) (string, error) {
	if h.Count <= 0 {
		return "", errMissingToken
	}
	if h.Count > 1 {
		return "", errors.New("more than one Authorization header")
	}
	v := h.First
	sp := strings.IndexByte(v, ' ')
	if sp < 0 {
		return "", errors.New("no authorization scheme")
	}
	if !strings.EqualFold(v[:sp], "Bearer") {
		return "", errors.New("authorization scheme is not Bearer")
	}
	token := strings.TrimLeft(v[sp+1:], " ")
	if token == "" {
		return "", errors.New("empty bearer token")
	}
	if len(token) > maxTokenLength {
		return "", fmt.Errorf("bearer token longer than %d bytes", maxTokenLength)
	}
	if !isToken68(token) {
		return "", errors.New("bearer token is not a token68 value")
	}
	return token, nil
}

// token68Chars marks the token68 characters of RFC 7235 §2.1 (before the
// trailing "=" padding): ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
// A table, because this runs over every byte of every token.
var token68Chars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// isToken68 checks the token68 grammar: 1*token68-char *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// maxUserIDLength bounds user IDs in X-On-Behalf-Of.
const maxUserIDLength = 128

// ParseOnBehalfOf parses the value of X-On-Behalf-Of: exactly "user " and a
// user ID of 1 to 128 characters from [A-Za-z0-9._:@-], starting with a
// letter or digit. Anything else (case variants, extra spaces, control
// bytes, commas of merged headers) is refused.
func ParseOnBehalfOf(v string) (string, error) {
	id, ok := strings.CutPrefix(v, "user ")
	if !ok {
		return "", errors.New(`value does not start with "user "`)
	}
	if id == "" || len(id) > maxUserIDLength {
		return "", errors.New("user ID is empty or too long")
	}
	if !isAlnum(id[0]) {
		return "", errors.New("user ID must start with a letter or digit")
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != ':' && c != '@' && c != '-' {
			return "", errors.New("user ID holds a character outside [A-Za-z0-9._:@-]")
		}
	}
	return id, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// HeaderNames are the trusted headers authz sets for the upstream.
type HeaderNames struct {
	ClientID string `yaml:"client_id"`
	Scopes   string `yaml:"scopes"`
	TenantID string `yaml:"tenant_id"`
	UserID   string `yaml:"user_id"`
}

// DefaultHeaderNames are the trusted header names used unless configured.
func DefaultHeaderNames() HeaderNames {
	return HeaderNames{ClientID: "x-auth-client-id", Scopes: "x-auth-scopes", TenantID: "x-auth-tenant-id", UserID: "x-auth-user-id"}
}

// OnBehalfOfHeader is the header a client uses to act for a user.
const OnBehalfOfHeader = "x-on-behalf-of"

// ActOnBehalfOfScope is the scope a token needs to use X-On-Behalf-Of.
const ActOnBehalfOfScope = "core.users:act-on-behalf-of"

// Validate checks the names are distinct lower-case header names.
func (h HeaderNames) Validate() error {
	seen := map[string]string{}
	for setting, name := range map[string]string{"client_id": h.ClientID, "scopes": h.Scopes, "tenant_id": h.TenantID, "user_id": h.UserID} {
		if name == "" || name != strings.ToLower(name) || strings.HasPrefix(name, ":") || strings.ContainsAny(name, " \t\r\n:") {
			return fmt.Errorf("headers.%s: %q must be a non-empty lower-case header name", setting, name)
		}
		if name == OnBehalfOfHeader || name == "authorization" || name == "host" {
			return fmt.Errorf("headers.%s: %q is reserved", setting, name)
		}
		if other, dup := seen[name]; dup {
			return fmt.Errorf("headers.%s: %q is also used by headers.%s", setting, name, other)
		}
		seen[name] = setting
	}
	return nil
}

// headerMutations precomputes, for each combination of trusted headers that
// an allow sets, the headers it must remove: every other trusted header and
// X-On-Behalf-Of. A header is never both set and removed (Envoy applies
// removals after sets).
type headerMutations struct {
	names HeaderNames
	// removals is indexed by a bitmask of the headers set: 1 client, 2 scopes,
	// 4 tenant, 8 user.
	removals [16][]string
}

const (
	setClient = 1 << iota
	setScopes
	setTenant
	setUser
)

func newHeaderMutations(names HeaderNames) *headerMutations {
	m := &headerMutations{names: names}
	all := []string{names.ClientID, names.Scopes, names.TenantID, names.UserID}
	for mask := 0; mask < 16; mask++ {
		remove := []string{OnBehalfOfHeader}
		for i, name := range all {
			if mask&(1<<i) == 0 {
				remove = append(remove, name)
			}
		}
		m.removals[mask] = remove
	}
	return m
}
