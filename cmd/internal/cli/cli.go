// Package cli holds what both binaries do the same way: exit codes, usage
// errors, loggers and loading a validated configuration.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/portcullis/portcullis/cmd/internal/configfile"
)

// UsageError is a mistake in the command line: the usage text follows it
// and the exit code is 2.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// ExitError ends the program with Code and no message: the command's
// output already said what happened (lint problems, a denied check).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit %d", e.Code) }

// Exit ends the program as err says: 0 for nil, 2 with usage for a
// UsageError, the code of an ExitError, else 1 with the error.
func Exit(program, usage string, err error) {
	var ue UsageError
	var ee ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &ee):
		os.Exit(ee.Code)
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "%s: %v\n\n%s", program, err, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(1)
	}
}

// NewLogger returns a JSON logger at level (debug, info, warn or error).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Validator is a configuration that can check itself.
type Validator interface{ Validate() error }

// LoadConfig fills dst (holding defaults) from the file at path, or from
// $<envPrefix>_CONFIG when path is empty, applies the environment overrides
// and validates the result, naming the file in the error.
func LoadConfig(path, envPrefix string, dst Validator) error {
	if path == "" {
		path = os.Getenv(envPrefix + "_CONFIG")
	}
	if err := configfile.Load(path, envPrefix, dst); err != nil {
		return err
	}
	if err := dst.Validate(); err != nil {
		where := "configuration"
		if path != "" {
			where = path
		}
		return fmt.Errorf("invalid %s:\n%w", where, err)
	}
	return nil
}
