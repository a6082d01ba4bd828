package policy

import "strings"

// PathError says why a request path is refused before matching.
type PathError struct {
	// Detail is for logs; the client sees only "invalid-path".
	Detail string
}

func (e *PathError) Error() string { return "unsafe path: " + e.Detail }

// SplitPath returns the path part of an Envoy :path (which carries the query).
func SplitPath(rawPath string) string {
	if i := strings.IndexByte(rawPath, '?'); i >= 0 {
		return rawPath[:i]
	}
	return rawPath
}

// CheckPath reports whether path (without its query) is safe to match
// against the policy. A path is refused when it could mean one thing to the
// matcher and another to Envoy or the upstream:
//   - it is not absolute, or holds a fragment;
//   - it has "." or ".." segments or empty segments ("//"); a single
//     trailing slash is allowed and matched exactly;
//   - it holds a ";", raw or %-encoded: servlet-style upstreams strip
//     ";parameters" from each segment before routing, so
//     /v1/reports/payroll;x=1 would match {reportId} here and be served as
//     the literal payroll route there (Spring's StrictHttpFirewall refuses
//     it too);
//   - it holds a backslash, control bytes (raw or %-encoded), or any other
//     byte RFC 3986 does not allow raw in a path (spaces, quotes, brackets,
//     non-ASCII: those must arrive %-encoded);
//   - it %-encodes "/", "\" or "." (%2F, %5C, %2E), or any unreserved
//     character (RFC 3986 §2.3 says those must not be encoded, and an upstream
//     that decodes them would see a different path than the one matched);
//   - its %-encoding is malformed.
//
// CheckPath does not allocate for a safe path.
func CheckPath(path string) *PathError {
	if len(path) == 0 || path[0] != '/' {
		return &PathError{"not absolute"}
	}
	segStart := 1
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return &PathError{"control byte"}
		case c == '\\':
			return &PathError{"backslash"}
		case c == '#':
			return &PathError{"fragment"}
		case c == ';':
			return &PathError{`";" (path parameters): servlet-style upstreams strip ";params" before routing, so the route served would not be the route matched`}
		case !pathChars[c]:
			// Raw spaces, quotes, brackets, non-ASCII...: RFC 3986 wants them
			// %-encoded, and servers disagree on what they mean raw.
			return &PathError{"character not allowed in a path"}
		case c == '%':
			if i+2 >= len(path) || unhex(path[i+1]) < 0 || unhex(path[i+2]) < 0 {
				return &PathError{"malformed percent-encoding"}
			}
			decoded := byte(unhex(path[i+1])<<4 | unhex(path[i+2]))
			switch {
			case decoded == '/' || decoded == '\\' || decoded == '.':
				return &PathError{"encoded separator or dot"}
			case decoded == ';':
				return &PathError{"encoded \";\" (%3B)"}
			case decoded < 0x20 || decoded == 0x7f:
				return &PathError{"encoded control byte"}
			case isUnreserved(decoded):
				return &PathError{"encoded unreserved character"}
			}
			i += 2
		case c == '/':
			if i > 0 {
				if err := checkSegment(path[segStart:i]); err != nil {
					return err
				}
				segStart = i + 1
			}
		}
	}
	// The last segment may be empty (a trailing slash) but not a dot segment.
	if last := path[segStart:]; last != "" {
		return checkSegment(last)
	}
	return nil
}

// pathChars marks the bytes RFC 3986 §3.3 allows raw in a path: unreserved,
// sub-delims, ":", "@", "/" and "%" (whose encodings are checked apart).
var pathChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/%" {
		t[c] = true
	}
	return t
}()

func checkSegment(seg string) *PathError {
	switch seg {
	case "":
		return &PathError{"empty segment"}
	case ".", "..":
		return &PathError{"dot segment"}
	}
	return nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
