package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestVersion: `version`, `version -o json` and `--version` name this
// build, so an operator can tell which build runs.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if line := stdout.String(); !strings.HasPrefix(line, "portcullis ") || !strings.Contains(line, "go1.") {
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
