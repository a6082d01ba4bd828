// Package buildinfo says which build is running, from what the Go
// toolchain records in the binary: the module version for `go install
// module@version`, or the VCS revision for a build in a checkout. Both
// processes print it (`version`), serve it (/readyz) and export it (the
// portcullis_build_info metric), so an operator can tell which build each
// sidecar runs.
package buildinfo

import (
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Info describes the running build.
type Info struct {
	// Version is the module version, or "devel" for a build in a checkout.
	Version string `json:"version"`
	// Revision is the VCS revision, with "-dirty" for uncommitted changes;
	// empty when the toolchain recorded none (go run, go test).
	Revision string `json:"revision,omitempty"`
	// GoVersion is the toolchain that built it.
	GoVersion string `json:"go_version"`
}

// String is the one line `version` prints.
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	if i.Revision != "" {
		b.WriteString(" (" + i.Revision + ")")
	}
	b.WriteString(" " + i.GoVersion)
	return b.String()
}

var read = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown", GoVersion: "unknown"}
	}
	return fromBuildInfo(bi)
})

// Get returns the running build's Info.
func Get() Info { return read() }

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	var revision string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if revision != "" && dirty {
		revision += "-dirty"
	}
	info.Revision = revision
	return info
}

// Collector is the portcullis_build_info gauge: always 1, its labels say
// which build runs (process is "authz" or "issuer").
func Collector(process string) prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "portcullis_build_info",
		Help:        "Which build runs: always 1, with the version, VCS revision and Go version as labels.",
		ConstLabels: prometheus.Labels{"process": process, "version": i.Version, "revision": i.Revision, "go_version": i.GoVersion},
	})
	g.Set(1)
	return g
}
