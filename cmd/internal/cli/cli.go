// Package cli holds what the binaries do the same way: the command tree's
// conventions (cobra, one error line, exit codes), loggers and loading a
// validated configuration.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portcullis/portcullis/internal/buildinfo"
	"github.com/portcullis/portcullis/internal/configfile"
	"github.com/portcullis/portcullis/internal/suggest"
)

// UsageError is a mistake in the command line: exit code 2, with a pointer
// to the command's --help.
type UsageError struct {
	Msg string
	// Command is the full command path ("authz check"), for the --help hint.
	Command string
}

func (e UsageError) Error() string { return e.Msg }

// ConfigError is a configuration that cannot be used: a file that cannot
// be read, an unknown key or variable, a refused value. Like a usage error
// it exits 2: the command was not run.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// ExitError ends the program with Code and no message of its own: the
// command's output already said what happened (lint problems, a denied check).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit %d", e.Code) }

// UnreachableError is a server the command could not reach: exit code 2, so
// scripts tell an outage from a denial (1).
type UnreachableError struct{ Err error }

func (e UnreachableError) Error() string { return e.Err.Error() }
func (e UnreachableError) Unwrap() error { return e.Err }

// Main runs a binary's command tree until it finishes or SIGINT/SIGTERM
// cancels its context, and exits as Exit says.
func Main(program string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	Exit(program, err)
}

// Execute runs the command tree on args. Errors are returned, never printed
// by cobra, so each is printed once by Exit.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) error {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SilenceErrors, root.SilenceUsage = true, true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return UsageError{Msg: err.Error() + flagSuggestion(c, err), Command: c.CommandPath()}
	})
	// A mistyped command gets the closest one, as a mistyped key does.
	root.SuggestionsMinimumDistance = 2
	return root.ExecuteContext(ctx)
}

// Code is the exit status err means: 0 for nil, the code of an ExitError,
// 2 for a usage error or an unreachable server, else 1.
func Code(err error) int {
	var ue UsageError
	var ee ExitError
	var unreachable UnreachableError
	var ce ConfigError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue), errors.As(err, &unreachable), errors.As(err, &ce):
		return 2
	}
	return 1
}

// Exit ends the program with Code(err), printing the error on one line
// (and, for a usage error, how to get help).
func Exit(program string, err error) {
	var ue UsageError
	var ee ExitError
	switch {
	case err == nil, errors.As(err, &ee):
	case errors.As(err, &ue):
		cmd := ue.Command
		if cmd == "" {
			cmd = program
		}
		fmt.Fprintf(os.Stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd, err, cmd)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
	}
	os.Exit(Code(err))
}

// Group is the RunE of a command that only holds subcommands: run bare or
// with an unknown subcommand, it is a usage error naming the choices.
func Group(c *cobra.Command, args []string) error {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if len(args) == 0 {
		return UsageError{Msg: fmt.Sprintf("a command is required: %v", names), Command: c.CommandPath()}
	}
	msg := fmt.Sprintf("unknown command %q; choose from %v", args[0], names)
	if near := suggest.Closest(args[0], names); near != "" {
		msg = fmt.Sprintf("unknown command %q (did you mean %q?); choose from %v", args[0], near, names)
	}
	return UsageError{Msg: msg, Command: c.CommandPath()}
}

// ExactArgs requires n positional arguments, named in what ("METHOD PATH").
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return UsageError{Msg: fmt.Sprintf("expected %s, got %d argument(s)", what, len(args)), Command: c.CommandPath()}
		}
		return nil
	}
}

// NoArgs refuses positional arguments.
func NoArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return UsageError{Msg: fmt.Sprintf("unexpected argument %q", args[0]), Command: c.CommandPath()}
	}
	return nil
}

// NewLogger returns a JSON logger at level (debug, info, warn or error).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Validator is a configuration that can check itself.
type Validator interface{ Validate() error }

// ConfigPath is the file named by --config, or $<envPrefix>_CONFIG.
func ConfigPath(flag, envPrefix string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(envPrefix + "_CONFIG")
}

// LoadConfig fills dst (holding defaults) from the file at path (see
// ConfigPath), applies the environment overrides and validates the result,
// naming the file in the error.
func LoadConfig(path, envPrefix string, dst Validator) error {
	if err := configfile.CheckEnv(envPrefix, dst, os.Environ()); err != nil {
		return ConfigError{err}
	}
	if err := configfile.Load(path, envPrefix, dst); err != nil {
		return ConfigError{err}
	}
	if err := dst.Validate(); err != nil {
		// Each problem names where its value came from: the variable
		// that set it, or the file's line.
		return ConfigError{fmt.Errorf("invalid configuration:\n%s", configfile.Source(path, envPrefix, dst, err.Error(), os.LookupEnv))}
	}
	return nil
}

// EnvCommand lists the environment variables that override settings.
func EnvCommand(envPrefix string, defaults any) *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "List the environment variables that override settings",
		Long: "Every setting of the configuration file can be overridden by an environment variable:\n" +
			envPrefix + "_ and the setting's path in capitals. " + envPrefix + "_CONFIG names the file.",
		Args: NoArgs,
		Example: "  " + strings.ToLower(strings.TrimPrefix(envPrefix, "PORTCULLIS_")) + " env\n  " +
			strings.ToLower(strings.TrimPrefix(envPrefix, "PORTCULLIS_")) + " env -o json",
		RunE: func(c *cobra.Command, _ []string) error {
			vars := append([]configfile.EnvVar{{Name: envPrefix + "_CONFIG", Setting: "(the configuration file)", Syntax: "path"}},
				configfile.EnvVars(envPrefix, defaults)...)
			return Print(c, vars)
		},
	}
}

// AddVersion gives root a `version` command and a --version flag, both
// naming this build (buildinfo): an operator can tell which build a
// sidecar runs, as with kubectl, opa and istioctl. `version -o json|yaml`
// prints it for scripts.
func AddVersion(root *cobra.Command) {
	v := buildinfo.Get()
	root.Version = v.String()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:     "version",
		Short:   "Print which build this is",
		Example: "  " + root.Name() + " version\n  " + root.Name() + " version -o json",
		Args:    NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f := c.Flag("output"); f != nil && (f.Value.String() == "json" || f.Value.String() == "yaml") {
				return Print(c, v)
			}
			_, err := fmt.Fprintf(c.OutOrStdout(), "%s %s\n", root.Name(), v)
			return err
		},
	})
}

// flagSuggestion is " (did you mean --x?)" for an unknown flag near a real
// one of c.
func flagSuggestion(c *cobra.Command, err error) string {
	msg := err.Error()
	i := strings.Index(msg, "unknown flag: --")
	if i < 0 {
		return ""
	}
	name := strings.Fields(msg[i+len("unknown flag: --"):])
	if len(name) == 0 {
		return ""
	}
	var known []string
	c.Flags().VisitAll(func(f *pflag.Flag) { known = append(known, f.Name) })
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) { known = append(known, f.Name) })
	if near := suggest.Closest(name[0], known); near != "" {
		return " (did you mean --" + near + "?)"
	}
	return ""
}
