package policy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/fswatch"
)

// Watcher holds the current policy and replaces it when its files change.
// A load that fails keeps the last good policy serving.
type Watcher struct {
	path     string
	debounce time.Duration
	log      *slog.Logger
	current  atomic.Pointer[Policy]
	// loads and failures count reloads; watching closes once Run watches.
	loads, failures atomic.Uint64
	watching        chan struct{}
	watchingOnce    sync.Once

	reloads    *prometheus.CounterVec
	lastGood   prometheus.Gauge
	routeCount prometheus.Gauge
}

// NewWatcher loads the policy at path (a file or a directory). A failed first
// load is returned as an error, and the watcher is still usable: Current
// returns nil until a good load.
func NewWatcher(path string, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	w := &Watcher{
		path:     path,
		watching: make(chan struct{}),
		debounce: 100 * time.Millisecond,
		log:      log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_policy_reloads_total",
			Help: "Policy loads by result (success, failure). A failure keeps the last good policy.",
		}, []string{"result"}),
		lastGood: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_policy_last_success_timestamp_seconds",
			Help: "When the policy in use was loaded.",
		}),
		routeCount: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_policy_routes",
			Help: "Routes in the policy in use.",
		}),
	}
	if reg != nil {
		reg.MustRegister(w.reloads, w.lastGood, w.routeCount)
	}
	return w, w.Reload()
}

// Current returns the policy in use, or nil before the first good load.
func (w *Watcher) Current() *Policy { return w.current.Load() }

// Reload loads the policy now; on failure the last good one stays.
func (w *Watcher) Reload() error {
	p, err := Load(w.path)
	if err != nil {
		w.failures.Add(1)
		w.reloads.WithLabelValues("failure").Inc()
		var le *LoadError
		if errors.As(err, &le) {
			for _, prob := range le.Problems {
				w.log.Error("policy problem", "file", prob.File, "line", prob.Line, "col", prob.Col, "problem", prob.Message)
			}
		}
		if w.current.Load() != nil {
			w.log.Error("policy reload failed; the last good policy stays in use", "path", w.path, "err", err)
		} else {
			w.log.Error("policy load failed", "path", w.path, "err", err)
		}
		return err
	}
	w.current.Store(p)
	w.loads.Add(1)
	w.reloads.WithLabelValues("success").Inc()
	w.lastGood.SetToCurrentTime()
	w.routeCount.Set(float64(len(p.routes)))
	w.log.Info("policy loaded", "path", w.path, "files", len(p.Files), "routes", len(p.routes))
	return nil
}

// Loads returns how many loads succeeded and failed since the start.
func (w *Watcher) Loads() (succeeded, failed uint64) { return w.loads.Load(), w.failures.Load() }

// Watching is closed once Run watches the files: an edit made after it is
// seen.
func (w *Watcher) Watching() <-chan struct{} { return w.watching }

// Run watches the policy's files until ctx ends, reloading shortly after
// the last of a burst of changes.
func (w *Watcher) Run(ctx context.Context) error {
	return fswatch.Watch(ctx, fswatch.Options{
		Path: w.path, Debounce: w.debounce, Relevant: isPolicyFile,
		OnChange:   func() { _ = w.Reload() },
		OnWatching: func() { w.watchingOnce.Do(func() { close(w.watching) }) },
		Log:        w.log,
	})
}
