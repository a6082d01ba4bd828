package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFilesAreOwnerOnlyWhateverTheUmask: with the most permissive umask,
// what this package creates is still 0600 (files) and 0700 (directories).
func TestFilesAreOwnerOnlyWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state", "deeper")
	for name, create := range map[string]func(string) error{
		"touched": Touch,
		"created": func(p string) error { return Create(p, []byte("k")) },
		"written": func(p string) error { return Write(p, []byte("k")) },
	} {
		p := filepath.Join(dir, name)
		if err := create(p); err != nil {
			t.Fatal(err)
		}
		if info, _ := os.Stat(p); info.Mode().Perm() != Mode {
			t.Errorf("%s: mode %04o", name, info.Mode().Perm())
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if info, _ := os.Stat(d); info.Mode().Perm() != DirMode {
			t.Errorf("%s: mode %04o", d, info.Mode().Perm())
		}
	}
}

func TestExposedFilesAreRefused(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	_, err := Read(p)
	var exposed *ExposedError
	if !errors.As(err, &exposed) || exposed.Path != p {
		t.Fatalf("a 0644 secret file: %v", err)
	}
	if err.Error() != p+" is accessible by group or others (mode 0644) but holds secrets: run `chmod 600 "+p+"`" {
		t.Fatalf("message: %v", err)
	}
	// Write repairs the mode of a file it replaces.
	if err := Write(p, []byte("k2")); err != nil {
		t.Fatal(err)
	}
	if data, err := Read(p); err != nil || string(data) != "k2" {
		t.Fatalf("after Write: %q %v", data, err)
	}
	if err := Check(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("a missing file is the caller's to create: %v", err)
	}
}
