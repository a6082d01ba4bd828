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

// Options says what to watch and what to do about it.
type Options struct {
	// Path is a file or a directory.
	Path string
	// Debounce is how long a burst of changes must be quiet before OnChange.
	Debounce time.Duration
	// Relevant filters the names in a watched directory (nil: all).
	Relevant func(name string) bool
	// OnChange is called after each quiet burst of changes.
	OnChange func()
	// OnWatching, when set, is called once the watch is in place: a change
	// made after it is seen.
	OnWatching func()
	Log        *slog.Logger
}

// Watch watches o.Path until ctx ends and calls o.OnChange once a burst of
// changes has been quiet for o.Debounce. The directory, not the file, is
// watched, so editors that save by renaming a new file over the old one, and
// Kubernetes ConfigMap symlink swaps, are seen.
func Watch(ctx context.Context, o Options) error {
	path, relevant, log := o.Path, o.Relevant, o.Log
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
	if o.OnWatching != nil {
		o.OnWatching()
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
			timer.Reset(o.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("file watch error", "path", path, "err", err)
		case <-timer.C:
			o.OnChange()
		}
	}
}
