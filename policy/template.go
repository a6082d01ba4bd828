package policy

import (
	"fmt"
	"regexp"
	"strings"
)

type segmentKind uint8

// Segment kinds in precedence order: a lower kind wins.
const (
	segLiteral segmentKind = iota
	segParam
	segStar
	segDoubleStar
)

func (k segmentKind) String() string {
	switch k {
	case segLiteral:
		return "literal"
	case segParam:
		return "parameter"
	case segStar:
		return "wildcard *"
	default:
		return "wildcard **"
	}
}

type segment struct {
	kind segmentKind
	// text is the literal, or the parameter's name.
	text string
}

func (s segment) String() string {
	switch s.kind {
	case segParam:
		return "{" + s.text + "}"
	case segStar:
		return "*"
	case segDoubleStar:
		return "**"
	}
	return s.text
}

// describe names the segment for explanations: literal "x", parameter {id}, wildcard *.
func (s segment) describe() string {
	switch s.kind {
	case segLiteral:
		return fmt.Sprintf("literal %q", s.text)
	case segParam:
		return "parameter {" + s.text + "}"
	}
	return "wildcard " + s.String()
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// isLiteralByte reports whether c may appear in a literal template segment:
// RFC 3986 pchar without percent-encoding (unreserved, sub-delims, ':' '@').
func isLiteralByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// parseTemplate parses a path template such as /v1/accounts/{accountId}/**.
// A trailing "/" is a literal empty last segment: /v1/a/ matches only "/v1/a/".
func parseTemplate(tmpl string) ([]segment, error) {
	if tmpl == "" {
		return nil, fmt.Errorf("path is empty; write an absolute template such as /v1/accounts/{accountId}")
	}
	if tmpl[0] != '/' {
		return nil, fmt.Errorf("path %q must start with /", tmpl)
	}
	if i := strings.IndexAny(tmpl, "?#"); i >= 0 {
		return nil, fmt.Errorf("path %q contains %q: the query string is never matched, write the path only", tmpl, tmpl[i])
	}
	parts := strings.Split(tmpl[1:], "/")
	segs := make([]segment, 0, len(parts))
	params := map[string]bool{}
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "":
			if !last {
				return nil, fmt.Errorf("path %q has an empty segment (//); remove it", tmpl)
			}
			segs = append(segs, segment{kind: segLiteral})
		case part == "**":
			if !last {
				return nil, fmt.Errorf("path %q: ** must be the last segment (it matches the rest of the path)", tmpl)
			}
			segs = append(segs, segment{kind: segDoubleStar})
		case part == "*":
			segs = append(segs, segment{kind: segStar})
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name := part[1 : len(part)-1]
			if !paramName.MatchString(name) {
				return nil, fmt.Errorf("path %q: parameter name %q must be letters, digits and _ (not starting with a digit)", tmpl, name)
			}
			if params[name] {
				return nil, fmt.Errorf("path %q: parameter {%s} appears twice; give each a distinct name", tmpl, name)
			}
			params[name] = true
			segs = append(segs, segment{kind: segParam, text: name})
		case part == "." || part == "..":
			return nil, fmt.Errorf("path %q has a %q segment; Envoy normalizes those away, so it can never match", tmpl, part)
		default:
			if strings.ContainsAny(part, "{}") {
				return nil, fmt.Errorf("path %q: segment %q mixes text and a parameter; a parameter must be a whole segment", tmpl, part)
			}
			if strings.Contains(part, "*") {
				return nil, fmt.Errorf("path %q: segment %q mixes text and *; a wildcard must be a whole segment", tmpl, part)
			}
			for j := 0; j < len(part); j++ {
				if !isLiteralByte(part[j]) {
					return nil, fmt.Errorf("path %q: character %q is not allowed in a path template (no %%-encoding, spaces, backslashes or non-ASCII)", tmpl, part[j])
				}
			}
			segs = append(segs, segment{kind: segLiteral, text: part})
		}
	}
	if len(segs) > maxSegments {
		return nil, fmt.Errorf("path %q has %d segments; at most %d are allowed", tmpl, len(segs), maxSegments)
	}
	return segs, nil
}

// maxSegments bounds template depth (and so the parameters a match captures).
const maxSegments = 32
