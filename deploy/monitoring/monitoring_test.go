package monitoring

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var metricName = regexp.MustCompile(`\bportcullis_[a-z0-9_]+\b`)

// exportedMetrics are the metric names the processes register: every
// "portcullis_..." string in the non-test Go code of the packages that
// export metrics.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"../../authz", "../../tokenissuer", "../../policy"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range regexp.MustCompile(`"(portcullis_[a-z0-9_]+)"`).FindAllSubmatch(raw, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 15 {
		t.Fatalf("found only %d metric names: %v", len(names), names)
	}
	return names
}

// checkQueried fails for a metric a query uses that no process exports;
// histogram series carry _bucket, _sum and _count.
func checkQueried(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
	found := metricName.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: %q queries no Portcullis metric", where, expr)
	}
	for _, name := range found {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			t.Errorf("%s: %s is not a metric authz or the issuer exports", where, name)
		}
	}
}

func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string                   `json:"type"`
			Title   string                   `json:"title"`
			GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Fatal("the dashboard has no title or uid")
	}
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no query or no size", p.Title)
		}
		for _, target := range p.Targets {
			checkQueried(t, "panel "+p.Title, target.Expr, exported)
			for _, n := range metricName.FindAllString(target.Expr, -1) {
				queried[n] = true
			}
		}
	}
	// What the operators need to see is on it.
	for _, want := range []string{"portcullis_authz_checks_total", "portcullis_authz_check_duration_seconds_bucket",
		"portcullis_authz_token_cache_hits_total", "portcullis_authz_jwks_last_success_timestamp_seconds",
		"portcullis_authz_revocation_staleness_seconds", "portcullis_issuer_token_requests_total", "portcullis_issuer_rate_limited_total"} {
		if !queried[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesParseAndQueryExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	raw, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // a misspelt field fails, as Prometheus would refuse it
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	readme, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q is empty or unnamed", g.Name)
		}
		for _, r := range g.Rules {
			if !strings.HasPrefix(r.Alert, "Portcullis") || slices.Contains(names, r.Alert) {
				t.Errorf("alert %q: names start with Portcullis and are unique", r.Alert)
			}
			names = append(names, r.Alert)
			checkQueried(t, r.Alert, r.Expr, exported)
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description (what to do)", r.Alert)
			}
			if !bytes.Contains(readme, []byte(r.Alert)) {
				t.Errorf("%s is not explained in docs/operations.md", r.Alert)
			}
		}
	}
	for _, want := range []string{"PortcullisAuthzFailingClosed", "PortcullisAuthzJWKSStale", "PortcullisDenialSpike", "PortcullisIssuerErrors", "PortcullisSigningKeyRotationOverdue"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s alert", want)
		}
	}
}
