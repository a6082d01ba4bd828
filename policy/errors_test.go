package policy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestLoadErrors")

// TestLoadErrors loads each testdata/errors/*.yaml and compares the reported
// problems with the .golden file beside it: one case per file, exact messages.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no error fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			_, err := Load(file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./policy -run TestLoadErrors -update)", err)
			}
			if got != string(want) {
				t.Fatalf("problems differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/errors/bad-templates.yaml")
	le, ok := err.(*LoadError)
	if !ok {
		t.Fatalf("error %T, want *LoadError", err)
	}
	if len(le.Problems) != 9 {
		t.Fatalf("%d problems, want all 9:\n%v", len(le.Problems), err)
	}
}
