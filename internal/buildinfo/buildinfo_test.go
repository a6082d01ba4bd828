package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestInfoFromWhatTheToolchainRecorded(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		bi   debug.BuildInfo
		want Info
	}{
		"go install module@version": {debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			Info{Version: "v1.4.0", GoVersion: "go1.26.8"}},
		"go build in a clean checkout": {debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}},
			Info{Version: "devel", Revision: "0123456789ab", GoVersion: "go1.26.8"}},
		"go build with uncommitted changes": {debug.BuildInfo{GoVersion: "go1.26.8",
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}},
			Info{Version: "devel", Revision: "0123456789ab-dirty", GoVersion: "go1.26.8"}},
	} {
		if got := fromBuildInfo(&tc.bi); got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector("authz"))
	if n, err := testutil.GatherAndCount(reg, "portcullis_build_info"); err != nil || n != 1 {
		t.Fatalf("%d series, %v", n, err)
	}
	expected := `# HELP portcullis_build_info Which build runs: always 1, with the version, VCS revision and Go version as labels.
# TYPE portcullis_build_info gauge
portcullis_build_info{go_version="` + Get().GoVersion + `",process="authz",revision="` + Get().Revision + `",version="` + Get().Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected), "portcullis_build_info"); err != nil {
		t.Fatal(err)
	}
}
