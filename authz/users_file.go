package authz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/internal/fswatch"
	"github.com/portcullis/portcullis/internal/yamlsyntax"
)

// FileDirectory is a user directory read from a YAML or JSON file (JSON is
// YAML), reloaded when the file changes. A bad edit keeps the last good
// directory.
type FileDirectory struct {
	path  string
	log   *slog.Logger
	users atomic.Pointer[map[string]User]
	// watching closes once Run watches the file.
	watching     chan struct{}
	watchingOnce sync.Once
}

var _ UserDirectory = (*FileDirectory)(nil)

// userFile is the file format:
//
//	users:
//	  - {id: "42", status: active, tenant_id: acme}
type userFile struct {
	Users []User `yaml:"users"`
}

// NewFileDirectory loads the file at path.
func NewFileDirectory(path string, log *slog.Logger) (*FileDirectory, error) {
	d := &FileDirectory{path: path, log: log, watching: make(chan struct{})}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseUserFile parses a user directory document; name is used in errors.
func ParseUserFile(name string, data []byte) (map[string]User, error) {
	if serr := yamlsyntax.Check(data); serr != nil {
		return nil, fmt.Errorf("user directory %s:%d: YAML syntax error: %s", name, serr.Line, serr.Message)
	}
	var f userFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("user directory %s: %w", name, err)
	}
	users := make(map[string]User, len(f.Users))
	var errs []error
	for i, u := range f.Users {
		if _, err := ParseOnBehalfOf("user " + u.ID); err != nil {
			errs = append(errs, fmt.Errorf("user directory %s: users[%d]: id %q: %v", name, i, u.ID, err))
			continue
		}
		if u.Status != UserActive && u.Status != UserBlocked {
			errs = append(errs, fmt.Errorf("user directory %s: users[%d] (%s): status %q must be active or blocked", name, i, u.ID, u.Status))
			continue
		}
		if _, dup := users[u.ID]; dup {
			errs = append(errs, fmt.Errorf("user directory %s: users[%d]: id %q appears twice", name, i, u.ID))
			continue
		}
		users[u.ID] = u
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return users, nil
}

// Reload reads the file again; on failure the last good directory stays.
func (d *FileDirectory) Reload() error {
	data, err := os.ReadFile(d.path)
	if err != nil {
		return fmt.Errorf("user directory: %w", err)
	}
	users, err := ParseUserFile(d.path, data)
	if err != nil {
		return err
	}
	d.users.Store(&users)
	return nil
}

// Watching is closed once Run watches the file: an edit made after it is
// seen.
func (d *FileDirectory) Watching() <-chan struct{} { return d.watching }

// Run reloads the file when it changes, until ctx ends.
func (d *FileDirectory) Run(ctx context.Context) error {
	return fswatch.Watch(ctx, fswatch.Options{
		Path: d.path, Debounce: 100 * time.Millisecond,
		OnChange: func() {
			if err := d.Reload(); err != nil {
				d.log.Error("user directory reload failed; the last good one stays in use", "err", err)
				return
			}
			d.log.Info("user directory reloaded", "path", d.path, "users", len(*d.users.Load()))
		},
		OnWatching: func() { d.watchingOnce.Do(func() { close(d.watching) }) },
		Log:        d.log,
	})
}

// LookupUser implements UserDirectory.
func (d *FileDirectory) LookupUser(_ context.Context, id string) (User, error) {
	if u, ok := (*d.users.Load())[id]; ok {
		return u, nil
	}
	return User{}, ErrUserNotFound
}
