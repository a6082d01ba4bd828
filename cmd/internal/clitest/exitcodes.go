package clitest

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/cmd/internal/cli"
)

// command is one command of a binary, found through --help.
type command struct {
	path []string
	// group has subcommands; needsArgs names an argument in its usage.
	group, needsArgs bool
}

var (
	subcommandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s`)
	// argPlaceholder is an argument named in a usage line: CLIENT_ID, POLICY.
	argPlaceholder = regexp.MustCompile(`\b[A-Z][A-Z0-9_]{2,}\b`)
)

// commands walks the binary's command tree through --help, as a person
// would, so that a command added later is checked too.
func commands(t *testing.T, run Run) []command {
	t.Helper()
	var out []command
	var walk func(path []string)
	walk = func(path []string) {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append(append([]string{}, path...), "--help"), &stdout, &stderr); err != nil {
			t.Fatalf("%v --help: %v", path, err)
		}
		help := stdout.String()
		c := command{path: path}
		inCommands := false
		var subs []string
		for _, line := range strings.Split(help, "\n") {
			switch {
			case line == "Available Commands:":
				inCommands = true
			case inCommands && line == "":
				inCommands = false
			case inCommands:
				if m := subcommandLine.FindStringSubmatch(line); m != nil && m[1] != "help" && m[1] != "completion" {
					subs = append(subs, m[1])
				}
			}
		}
		if usage := usageLine(help); usage != "" && len(subs) == 0 {
			// Optional arguments are in brackets: only bare ones are required.
			bare := strings.ReplaceAll(usage, "[flags]", "")
			c.needsArgs = argPlaceholder.MatchString(bare) && !strings.Contains(bare, "[")
		}
		c.group = len(subs) > 0
		out = append(out, c)
		for _, s := range subs {
			walk(append(append([]string{}, path...), s))
		}
	}
	walk(nil)
	return out
}

// usageLine is the first line under "Usage:".
func usageLine(help string) string {
	_, after, ok := strings.Cut(help, "Usage:\n")
	if !ok {
		return ""
	}
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}

// UsageErrorsExitTwo checks every command of the binary: an unknown flag
// exits 2, an unknown subcommand of a group exits 2, and a command that
// names its arguments exits 2 when given none. It returns how many
// commands it checked.
func UsageErrorsExitTwo(t *testing.T, run Run) int {
	t.Helper()
	all := commands(t, run)
	for _, c := range all {
		status := func(args ...string) int {
			var stdout, stderr bytes.Buffer
			return cli.Code(run(context.Background(), append(append([]string{}, c.path...), args...), &stdout, &stderr))
		}
		if got := status("--no-such-flag"); got != 2 {
			t.Errorf("%q with an unknown flag: exit %d, want 2", strings.Join(c.path, " "), got)
		}
		if c.group && len(c.path) > 0 {
			if got := status("no-such-command"); got != 2 {
				t.Errorf("%q with an unknown subcommand: exit %d, want 2", strings.Join(c.path, " "), got)
			}
		}
		if c.needsArgs {
			if got := status(); got != 2 {
				t.Errorf("%q without its arguments: exit %d, want 2", strings.Join(c.path, " "), got)
			}
		}
	}
	return len(all)
}

// Case is a command line and the status it must exit with.
type Case struct {
	Name string
	Args []string
	Code int
}

// ExitCodes runs each case and checks its exit status.
func ExitCodes(t *testing.T, run Run, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.Args, &stdout, &stderr)
		if got := cli.Code(err); got != tc.Code {
			t.Errorf("%s (%s): exit %d, want %d (%v)\n%s", tc.Name, strings.Join(tc.Args, " "), got, tc.Code, err, stderr.String())
		}
	}
}
