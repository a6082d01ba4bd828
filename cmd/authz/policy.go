package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/authz/policycases"
	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/policy"
	"github.com/portcullis/portcullis/policy/coverage"
)

func newPolicyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Lint, explain and test route policy",
		Long: `Tools for route policy files (a file, or a directory of *.yaml files), with exit
codes for CI: 0 when all is well, 1 when the policy or a test case is wrong, 2 for
a usage error.`,
		Args: cobra.ArbitraryArgs,
		RunE: cli.Group,
	}
	c.AddCommand(&cobra.Command{
		Use:     "lint POLICY",
		Short:   "Check policy files; every problem as file:line:col: message",
		Example: "  authz policy lint examples/policy",
		Args:    cli.ExactArgs(1, "POLICY (a file or directory)"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := missingInput(c, "POLICY", args[0]); err != nil {
				return err
			}
			if structured(c) {
				p, err := policy.Load(args[0])
				v, err := viewLint(args[0], p, err)
				if err != nil {
					fmt.Fprintln(c.ErrOrStderr(), err)
					return exitError{Code: 1}
				}
				if err := cli.Print(c, v); err != nil {
					return err
				}
				if !v.OK {
					return exitError{Code: 1}
				}
				return nil
			}
			p, err := loadPolicy(args[0], c.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: ok, %d routes in %d files\n", args[0], len(p.Routes()), len(p.Files))
			return nil
		},
	}, &cobra.Command{
		Use:   "explain POLICY METHOD PATH",
		Short: "Say which route a request matches, and why the others do not",
		Long: `Match METHOD and PATH (a query string is allowed and ignored, as authz does) against
the policy and explain the outcome: the route that wins with its parameters, or
why none does, and for every other route whose template matches, why it lost.
A path authz refuses before matching (dot segments, encoded separators, ";", ...)
is reported with the reason.`,
		Example: "  authz policy explain examples/policy GET /v1/accounts/42\n  authz policy explain examples/policy POST '/v1/cards/9/freeze?x=1'",
		Args:    cli.ExactArgs(3, "POLICY METHOD PATH"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := policy.CheckMethod(args[1]); err != nil {
				return usageError{Msg: err.Error(), Command: c.CommandPath()}
			}
			if err := missingInput(c, "POLICY", args[0]); err != nil {
				return err
			}
			p, err := loadPolicy(args[0], c.ErrOrStderr())
			if err != nil {
				return err
			}
			ex := p.Explain(args[1], args[2])
			if structured(c) {
				return cli.Print(c, viewExplanation(ex))
			}
			fmt.Fprint(c.OutOrStdout(), ex.String())
			return nil
		},
	})
	var requireCoverage bool
	test := &cobra.Command{
		Use:   "test POLICY CASES",
		Short: "Run policy test cases through the real decision",
		Long: `Run a YAML list of requests and expected outcomes (allow, public, or a denial
reason such as missing-scope) through authz's decision with the policy, and
report each case, then the routes no case exercises (file:line). Exit status 1
when a case fails (or, with --require-coverage, when a route has no case).`,
		Example: "  authz policy test examples/policy examples/policy-tests/cases.yaml\n  authz policy test --require-coverage POLICY CASES   # also fail when a route has no case",
		Args:    cli.ExactArgs(2, "POLICY CASES"),
		RunE: func(c *cobra.Command, args []string) error {
			for i, what := range []string{"POLICY", "CASES"} {
				if err := missingInput(c, what, args[i]); err != nil {
					return err
				}
			}
			p, err := loadPolicy(args[0], c.ErrOrStderr())
			if err != nil {
				return err
			}
			cases, err := policycases.Load(args[1])
			if err != nil {
				fmt.Fprintln(c.ErrOrStderr(), err)
				return exitError{Code: 1}
			}
			results := policycases.Run(c.Context(), p, cases)
			var failed, missed int
			if structured(c) {
				v := viewTest(args[1], p, results)
				if err := cli.Print(c, v); err != nil {
					return err
				}
				failed, missed = v.Failed, len(v.Unexercised)
			} else {
				failed = policycases.Report(c.OutOrStdout(), args[1], results)
				missed = policycases.ReportCoverage(c.OutOrStdout(), p, results)
			}
			if failed > 0 || (requireCoverage && missed > 0) {
				return exitError{Code: 1}
			}
			return nil
		},
	}
	test.Flags().BoolVar(&requireCoverage, "require-coverage", false, "exit 1 when a route is exercised by no case")
	c.AddCommand(test, newCoverageCommand(), newDiffCommand())
	return c
}

// missingInput is exit status 2 for an input path that cannot be read: a
// mistyped path is a usage error, never "the policy changed" or "a case
// failed" to the CI gate reading the status.
func missingInput(c *cobra.Command, what, path string) error {
	if _, err := os.Stat(path); err != nil {
		return cli.UsageError{Msg: fmt.Sprintf("%s %s: %v", what, path, errors.Unwrap(err)), Command: c.CommandPath()}
	}
	return nil
}

// loadPolicy loads the policy, printing every problem on its own line.
func loadPolicy(path string, stderr io.Writer) (*policy.Policy, error) {
	p, err := policy.Load(path)
	if err == nil {
		return p, nil
	}
	var le *policy.LoadError
	if errors.As(err, &le) {
		for _, prob := range le.Problems {
			fmt.Fprintln(stderr, prob.Error())
		}
	} else {
		fmt.Fprintln(stderr, err)
	}
	return nil, exitError{Code: 1}
}

func newCoverageCommand() *cobra.Command {
	var openAPI string
	var asJSON bool
	var ignore []string
	c := &cobra.Command{
		Use:   "coverage --openapi API.yaml POLICY",
		Short: "Check a policy against the API's OpenAPI document",
		Long: `Map each operation of an OpenAPI 3.0 or 3.1 document (method and path template,
under its server's base path) to the route that would decide it, and report:
operations no route covers (every call would be 403 in production), routes that
cover no operation, and operations whose OAuth2 scopes, or whose need for a
token, differ from their route's. Policy locations are file:line:col.
Exit status 0 when policy and document agree, 1 when there are findings.`,
		Example: `  authz policy coverage --openapi api.yaml examples/policy
  authz policy coverage --openapi api.yaml --ignore-route health --ignore-route oauth-token examples/policy
  authz policy coverage --openapi api.yaml --json examples/policy | jq '.findings[]'`,
		Args: cli.ExactArgs(1, "POLICY"),
		RunE: func(c *cobra.Command, args []string) error {
			if openAPI == "" {
				return usageError{Command: c.CommandPath(), Msg: "--openapi is required: the API's OpenAPI document"}
			}
			if err := missingInput(c, "POLICY", args[0]); err != nil {
				return err
			}
			p, err := loadPolicy(args[0], c.ErrOrStderr())
			if err != nil {
				return err
			}
			doc, err := coverage.LoadDocument(c.Context(), openAPI)
			if err != nil {
				fmt.Fprintln(c.ErrOrStderr(), err)
				return exitError{Code: 2}
			}
			rep := coverage.Check(doc, p, coverage.Options{IgnoreRoutes: ignore})
			if asJSON || structured(c) {
				if err := printData(c, rep); err != nil {
					return err
				}
			} else {
				printCoverage(c.OutOrStdout(), rep)
			}
			if len(rep.Findings) > 0 {
				return exitError{Code: 1}
			}
			return nil
		},
	}
	c.Flags().StringVar(&openAPI, "openapi", "", "the API's OpenAPI 3.0/3.1 document (YAML or JSON)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	c.Flags().StringArrayVar(&ignore, "ignore-route", nil, "a route that serves no operation of the document on purpose (repeatable)")
	return c
}

func printCoverage(w io.Writer, rep coverage.Report) {
	for _, f := range rep.Findings {
		switch f.Kind {
		case coverage.UnusedRoute:
			fmt.Fprintf(w, "%s: %s: route %q %s\n", f.Location, f.Kind, f.Route, f.Detail)
		case coverage.Uncovered:
			fmt.Fprintf(w, "%s %s (%s): %s: %s\n", f.Method, f.Path, f.OperationID, f.Kind, f.Detail)
		default:
			fmt.Fprintf(w, "%s: %s: %s %s (%s), route %q: %s\n", f.Location, f.Kind, f.Method, f.Path, f.OperationID, f.Route, f.Detail)
		}
	}
	fmt.Fprintf(w, "%d operations, %d routes, %d findings\n", rep.Operations, rep.Routes, len(rep.Findings))
}

func newDiffCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Report every request whose decision changes between two policies",
		Long: `Compare two policies (files or directories) and report every method and path whose
decision changes: newly routed or no longer routed (403 no-matching-route),
now public or no longer public, fewer, more or other scopes, a changed user rule,
with the routes and file:line:col on both sides. The requests are derived from both
policies' templates (each template instantiated, and at each position every literal
another route has there: the boundaries between overlapping routes), not sampled.
Exit status 0 when nothing changes, 1 when something does (for a pull request),
2 when a policy cannot be read or loaded.`,
		Example: "  authz policy diff main-branch/policy policy\n  authz policy diff --json old/ new/ | jq '.[] | select(.kind == \"now-public\")'",
		Args:    cli.ExactArgs(2, "OLD NEW"),
		RunE: func(c *cobra.Command, args []string) error {
			for i, what := range []string{"OLD", "NEW"} {
				if err := missingInput(c, what, args[i]); err != nil {
					return err
				}
			}
			// A policy that does not load cannot be compared: exit 2, not
			// the 1 that means "decisions change".
			old, err := loadPolicy(args[0], c.ErrOrStderr())
			if err != nil {
				return exitError{Code: 2}
			}
			next, err := loadPolicy(args[1], c.ErrOrStderr())
			if err != nil {
				return exitError{Code: 2}
			}
			changes := policy.Diff(old, next)
			if asJSON || structured(c) {
				if changes == nil {
					changes = []policy.Change{}
				}
				if err := printData(c, changes); err != nil {
					return err
				}
			} else {
				for _, ch := range changes {
					fmt.Fprintln(c.OutOrStdout(), ch.String())
				}
				fmt.Fprintf(c.OutOrStdout(), "%d decisions change\n", len(changes))
			}
			if len(changes) > 0 {
				return exitError{Code: 1}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the changes as JSON")
	return c
}
