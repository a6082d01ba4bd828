package policy

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const goodPolicy = "version: 1\nroutes:\n  - name: a\n    methods: [GET]\n    path: /v1/a\n"

func startWatcher(t *testing.T, path string) *Watcher {
	t.Helper()
	w, err := NewWatcher(path, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-w.Watching() // an edit made from now on is seen
	return w
}

// waitFor polls until cond holds; reload is asynchronous by design. The
// deadline only catches a hang: a busy machine may be slow.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func matches(w *Watcher, method, path string) string {
	var m Match
	w.Current().Match(method, path, &m)
	if m.Route == nil {
		return ""
	}
	return m.Route.Name
}

func TestReloadAppliesGoodEdits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "team.yaml", goodPolicy)
	w := startWatcher(t, dir)
	if matches(w, "GET", "/v1/a") != "a" {
		t.Fatal("initial policy not in use")
	}
	writeFile(t, dir, "team.yaml", goodPolicy+"  - name: b\n    methods: [GET]\n    path: /v1/b\n")
	waitFor(t, "the new route", func() bool { return matches(w, "GET", "/v1/b") == "b" })
	_ = file
	// A new team file is picked up too.
	writeFile(t, dir, "cards.yaml", "version: 1\nroutes:\n  - name: c\n    methods: [GET]\n    path: /v1/c\n")
	waitFor(t, "the new file", func() bool { return matches(w, "GET", "/v1/c") == "c" })
}

func TestReloadKeepsLastGoodPolicyOnBadEdit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "team.yaml", goodPolicy)
	w := startWatcher(t, dir)
	before := testutil.ToFloat64(w.reloads.WithLabelValues("failure"))
	writeFile(t, dir, "team.yaml", "version: 1\nroutes:\n  - name: a\n    methods: [GET]\n    pth: /v1/a\n")
	waitFor(t, "the failure to be counted", func() bool { return testutil.ToFloat64(w.reloads.WithLabelValues("failure")) > before })
	if matches(w, "GET", "/v1/a") != "a" {
		t.Fatal("bad edit replaced the last good policy")
	}
	// Deleting every file is a bad edit, not an empty policy.
	os.Remove(filepath.Join(dir, "team.yaml"))
	waitFor(t, "the deletion to be refused", func() bool { return testutil.ToFloat64(w.reloads.WithLabelValues("failure")) > before+1 })
	if matches(w, "GET", "/v1/a") != "a" {
		t.Fatal("deleting all files emptied the policy")
	}
}

func TestReloadFollowsRenameSaves(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "team.yaml", goodPolicy)
	w := startWatcher(t, dir)
	// Editors write a temporary file and rename it over the original.
	tmp := writeFile(t, dir, ".team.yaml.swp", "version: 1\nroutes:\n  - name: renamed\n    methods: [GET]\n    path: /v1/a\n")
	if err := os.Rename(tmp, filepath.Join(dir, "team.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renamed file", func() bool { return matches(w, "GET", "/v1/a") == "renamed" })
}

func TestReloadSingleFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "policy.yaml", goodPolicy)
	w := startWatcher(t, file)
	tmp := writeFile(t, dir, "policy.yaml.new", "version: 1\nroutes:\n  - name: z\n    methods: [GET]\n    path: /v1/a\n")
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rewritten file", func() bool { return matches(w, "GET", "/v1/a") == "z" })
}

func TestFirstLoadFailureLeavesNoPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "team.yaml", "version: 1\nroutes: []\n")
	w, err := NewWatcher(dir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || w.Current() != nil {
		t.Fatalf("an empty policy must not load: err=%v", err)
	}
}
