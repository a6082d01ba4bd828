// Package secretfile creates and checks the files that hold secrets (the
// issuer's database, its keys, local development state): owner-only, whatever
// the umask, and refused when someone else could read them.
package secretfile

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Mode is the permission of a file holding secrets; DirMode of a directory
// created for one.
const (
	Mode    fs.FileMode = 0o600
	DirMode fs.FileMode = 0o700
)

// ExposedError is a secret file that group or others may access.
type ExposedError struct {
	Path string
	Mode fs.FileMode
}

func (e *ExposedError) Error() string {
	return fmt.Sprintf("%s is accessible by group or others (mode %04o) but holds secrets: run `chmod 600 %s`", e.Path, e.Mode.Perm(), e.Path)
}

// Check refuses a file that group or others may read or write. A file that
// does not exist passes: the caller creates it.
func Check(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return &ExposedError{Path: path, Mode: info.Mode()}
	}
	return nil
}

// EnsureDir creates dir (and its parents) owner-only when it does not exist.
// An existing directory is left as it is: it may be shared on purpose.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return nil
}

// Touch creates path empty and owner-only when it does not exist, so that a
// program which then opens it (SQLite) never creates it with the umask's mode.
func Touch(path string) error {
	if err := Create(path, nil); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// Create writes a new owner-only file; it fails if path exists, so a
// secret is never silently replaced.
func Create(path string, data []byte) error {
	if err := EnsureDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, Mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The umask can only remove bits from 0600, but say it explicitly.
	if err := f.Chmod(Mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Write creates or replaces path with data, owner-only even when the file
// existed with a wider mode.
func Write(path string, data []byte) error {
	if err := EnsureDir(filepath.Dir(path)); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(Mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read reads a secret file after checking that only its owner can access it.
func Read(path string) ([]byte, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// LoadOrCreateKey returns the base64 key held in path, first creating the
// file (owner-only) with 256 fresh random bits when it does not exist.
func LoadOrCreateKey(path string) (key string, created bool, err error) {
	raw, err := Read(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", false, err
		}
		enc := base64.RawURLEncoding.EncodeToString(b)
		if err := Create(path, []byte(enc+"\n")); err != nil {
			return "", false, err
		}
		return enc, true, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(raw)), false, nil
}

// DecodeKey decodes a key written in any of the base64 alphabets, padded
// or not.
func DecodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			return key, nil
		}
	}
	return nil, errors.New("not valid base64")
}
