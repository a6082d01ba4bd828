package examples

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/internal/configfile"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// retired are settings kept only to refuse them with their replacement.
var retired = map[string]bool{"rate_limit.trust_forwarded_for": true}

// TestExamplesDocumentEverySetting keeps the sample configurations, which
// claim to document every setting, in step with the code: each setting has a
// line, each line is a setting, and the file loads and validates.
func TestExamplesDocumentEverySetting(t *testing.T) {
	for file, cfg := range map[string]interface{ Validate() error }{
		"authz.yaml":  new(authz.DefaultConfig()),
		"issuer.yaml": new(server.DefaultConfig()),
	} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		documented := map[string]bool{}
		var walk func(n *yaml.Node, prefix string)
		walk = func(n *yaml.Node, prefix string) {
			for i := 0; i+1 < len(n.Content); i += 2 {
				path := n.Content[i].Value
				if prefix != "" {
					path = prefix + "." + path
				}
				if n.Content[i+1].Kind == yaml.MappingNode {
					walk(n.Content[i+1], path)
					continue
				}
				documented[path] = true
			}
		}
		walk(doc.Content[0], "")
		if paths, names := configfile.SettingPaths(cfg), configfile.EnvNames("P", cfg); len(paths) != len(names) {
			t.Errorf("%d settings but %d environment variables", len(paths), len(names))
		}
		for _, path := range configfile.SettingPaths(cfg) {
			if !documented[path] && !retired[path] {
				t.Errorf("%s does not document %s", file, path)
			}
		}
		if err := configfile.Load(file, "PORTCULLIS_EXAMPLE_UNUSED", cfg); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
