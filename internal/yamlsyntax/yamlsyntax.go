// Package yamlsyntax finds where a YAML syntax error really is. The YAML
// parser reports the line where the enclosing construct began, and for
// parser errors a line too early: an unclosed "[" on line 4 is reported on
// line 3, a bad indent deep in a list on line 1. People need the line to
// fix.
package yamlsyntax

import (
	"bytes"
	"fmt"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Error is a syntax error at a 1-based line.
type Error struct {
	Line    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

var linePrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)

// Check parses data and returns nil or the syntax error, located at the
// first line at which the document stops being parseable: the document cut
// after that line fails, cut before it parses. Config files are small, so
// parsing each prefix costs nothing that matters.
func Check(data []byte) *Error {
	var n yaml.Node
	err := yaml.Unmarshal(data, &n)
	if err == nil {
		return nil
	}
	msg := linePrefix.ReplaceAllString(err.Error(), "")
	lines := bytes.SplitAfter(data, []byte("\n"))
	end := 0
	for i, l := range lines {
		end += len(l)
		var prefix yaml.Node
		if yaml.Unmarshal(data[:end], &prefix) != nil {
			return &Error{Line: i + 1, Message: msg}
		}
	}
	return &Error{Line: len(lines), Message: msg}
}
