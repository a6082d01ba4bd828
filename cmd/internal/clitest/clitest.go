// Package clitest holds the checks every binary's tests make the same way.
package clitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// Run is a binary's entry point, as its main calls it.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Version checks that `version`, `--version` and `version -o json` name
// the build of the binary called name.
func Version(t *testing.T, name string, run Run) {
	t.Helper()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if line := stdout.String(); !strings.HasPrefix(line, name+" ") || !strings.Contains(line, "go1.") {
			t.Errorf("%v: %q", args, line)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"version", "-o", "json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go1.") {
		t.Fatalf("version -o json: %v %q", err, stdout.String())
	}
}
