package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/portcullis/portcullis/authz/policytest"
	"github.com/portcullis/portcullis/policy"
)

func policyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{Msg: "policy: a subcommand is required (lint, explain, test)"}
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "lint":
		if len(rest) != 1 {
			return usageError{Msg: "policy lint PATH"}
		}
		p, err := policy.Load(rest[0])
		if err != nil {
			printLoadError(stderr, err)
			return exitError{Code: 1}
		}
		fmt.Fprintf(stdout, "%s: ok, %d routes in %d files\n", rest[0], len(p.Routes()), len(p.Files))
		return nil
	case "explain":
		if len(rest) != 3 {
			return usageError{Msg: "policy explain PATH METHOD URLPATH"}
		}
		p, err := policy.Load(rest[0])
		if err != nil {
			printLoadError(stderr, err)
			return exitError{Code: 1}
		}
		fmt.Fprint(stdout, p.Explain(rest[1], rest[2]).String())
		return nil
	case "test":
		if len(rest) != 2 {
			return usageError{Msg: "policy test PATH CASES.yaml"}
		}
		p, err := policy.Load(rest[0])
		if err != nil {
			printLoadError(stderr, err)
			return exitError{Code: 1}
		}
		cases, err := policytest.Load(rest[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitError{Code: 1}
		}
		if policytest.Report(stdout, rest[1], policytest.Run(ctx, p, cases)) > 0 {
			return exitError{Code: 1}
		}
		return nil
	default:
		return usageError{Msg: fmt.Sprintf("policy: unknown subcommand %q", sub)}
	}
}

func printLoadError(w io.Writer, err error) {
	var le *policy.LoadError
	if errors.As(err, &le) {
		for _, p := range le.Problems {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
