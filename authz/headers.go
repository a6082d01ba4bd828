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
		if name == "" || name != strings.ToLower(name) || strings.HasPrefix(name, ":") || strings.ContainsAny(name, " \t\r\n:_") {
			// No underscores: Envoy refuses such names from clients
			// (headers_with_underscores_action), and upstreams fold them.
			return fmt.Errorf("headers.%s: %q must be a non-empty lower-case header name without underscores", setting, name)
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

// imitates reports whether name, read the way CGI, WSGI and Rack-style
// servers read header names (case folded, "_" taken as "-"), is target
// spelt with at least one underscore. Such a header would reach the upstream
// as target although nobody proved it. target is lower-case.
func imitates(name, target string) bool {
	if len(name) != len(target) {
		return false
	}
	underscore := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			if target[i] != '-' {
				return false
			}
			underscore = true
		case c >= 'A' && c <= 'Z':
			if c+('a'-'A') != target[i] {
				return false
			}
		case c != target[i]:
			return false
		}
	}
	return underscore
}

// headerMutations precomputes, for each combination of trusted headers that
// an allow sets, the headers it must remove: every other trusted header and
// X-On-Behalf-Of. A header is never both set and removed (Envoy applies
// removals after sets).
type headerMutations struct {
	names HeaderNames
	// protected are the names no client may send in any spelling: the
	// trusted headers and X-On-Behalf-Of.
	protected [5]string
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
	m.protected = [5]string{names.ClientID, names.Scopes, names.TenantID, names.UserID, OnBehalfOfHeader}
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

// spoofs returns the names among underscored (header names of the request
// that hold an underscore) that imitate a protected header. Nil, without
// allocating, when there are none: the usual case.
func (m *headerMutations) spoofs(underscored []string) []string {
	var found []string
	for _, name := range underscored {
		for _, target := range m.protected {
			if imitates(name, target) {
				found = append(found, strings.ToLower(name))
				break
			}
		}
	}
	return found
}

// removals returns what an allow that sets the headers in mask removes:
// the precomputed list, plus the spoofed spellings this request carried.
func (m *headerMutations) removalsFor(mask int, spoofed []string) []string {
	if len(spoofed) == 0 {
		return m.removals[mask]
	}
	base := m.removals[mask]
	out := make([]string, 0, len(base)+len(spoofed))
	return append(append(out, base...), spoofed...)
}
