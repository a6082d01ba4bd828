package tokenissuer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength bounds a display name (of a client, a tenant, a person), in
// characters: long enough for any real name, short enough for every page,
// table and log line that shows one.
const MaxNameLength = 100

// cleanName is the one rule for display names, whoever sets them (the
// admin API, the portal, the CLI): surrounding spaces are dropped, an empty
// name becomes fallback (the object's ID or email, so that nothing is shown
// as an empty link), and what remains is at most MaxNameLength printable
// characters on one line.
func cleanName(what, name, fallback string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = fallback
	}
	if !utf8.ValidString(name) {
		return "", invalid("%s: not valid UTF-8", what)
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		return "", invalid("%s: %d characters; use at most %d", what, n, MaxNameLength)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) && r != ' ' {
			return "", invalid("%s: holds a control or invisible character (%U); use printable characters on one line", what, r)
		}
	}
	return name, nil
}
