package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOutputFormats: -o json, yaml and table print the same clients; JSON
// is what a pipe gets when -o is not given.
func TestOutputFormats(t *testing.T) {
	_, config := writeConfig(t, "")
	for _, id := range []string{"billing", "reports"} {
		if _, _, err := runIssuer(t, "clients", "create", "--id", id, "--scopes", "a b", "--config", config); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runIssuer(t, "clients", "list", "--config", config)
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("default (a pipe): %v\n%s", err, out)
	}
	out, _, err = runIssuer(t, "clients", "list", "-o", "yaml", "--config", config)
	var fromYAML []map[string]any
	if err != nil || yaml.Unmarshal([]byte(out), &fromYAML) != nil || len(fromYAML) != 2 || fromYAML[1]["client_id"] != "reports" {
		t.Fatalf("-o yaml: %v\n%s", err, out)
	}
	out, _, err = runIssuer(t, "clients", "list", "-o", "table", "--config", config)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "CLIENT_ID") || !strings.Contains(lines[0], "SCOPES") ||
		!strings.HasPrefix(lines[1], "billing") || !strings.Contains(lines[1], "a b") {
		t.Fatalf("-o table: %v\n%s", err, out)
	}
	if _, _, err := runIssuer(t, "clients", "list", "-o", "xml", "--config", config); !errors.As(err, new(usageError)) {
		t.Fatalf("-o xml: %v", err)
	}
}

// TestMistypedCommandsAndFlagsGetTheClosest: as mistyped keys do.
func TestMistypedCommandsAndFlagsGetTheClosest(t *testing.T) {
	_, config := writeConfig(t, "")
	if _, _, err := runIssuer(t, "clients", "lst", "--config", config); err == nil || !strings.Contains(err.Error(), `did you mean "list"?`) {
		t.Errorf("clients lst: %v", err)
	}
	if _, _, err := runIssuer(t, "clients", "create", "--scoeps", "a", "--config", config); err == nil || !strings.Contains(err.Error(), "did you mean --scopes?") {
		t.Errorf("--scoeps: %v", err)
	}
}
