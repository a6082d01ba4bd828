// Package fswatch calls a function shortly after files change, for the
// configuration that authz hot-reloads (the policy, the user directory).
package fswatch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch watches path (a file or a directory) until ctx ends and calls reload
// once a burst of changes has been quiet for debounce. For a directory, only
// names accepted by relevant trigger a reload (nil accepts all). The
// directory, not the file, is watched, so editors that save by renaming a
// new file over the old one, and Kubernetes ConfigMap symlink swaps, are seen.
func Watch(ctx context.Context, path string, debounce time.Duration, relevant func(name string) bool, reload func(), log *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()
	dir, only := path, ""
	if info, err := os.Stat(path); err == nil && !info.IsDir() {
		dir, only = filepath.Dir(path), filepath.Clean(path)
	}
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch directory %s: %w", dir, err)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Clean(ev.Name)
			base := filepath.Base(name)
			switch {
			case base == "..data": // ConfigMap swap
			case only != "" && name != only:
				continue
			case only == "" && relevant != nil && !relevant(base):
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("file watch error", "path", path, "err", err)
		case <-timer.C:
			reload()
		}
	}
}
