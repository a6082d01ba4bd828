package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/cmd/internal/cli"
)

func TestDeveloperToolsExplainThemselves(t *testing.T) {
	for args, want := range map[string][]string{
		"load --help":  {"--duration", "--warmup", "--concurrency", "--mix", "--sample", "--baseline", "Example"},
		"local --help": {"--state", "Example"},
		"--help":       {"local", "load", "completion"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), strings.Fields(args), &stdout, &stderr); err != nil {
			t.Errorf("%s: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%s: no %q in\n%s", args, w, stdout.String())
			}
		}
		if strings.Contains(stdout.String(), "load-baseline") {
			t.Errorf("%s shows the hidden server commands", args)
		}
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"load", "--concurrency", "0"}, &out, &out)
	var ue cli.UsageError
	if !errors.As(err, &ue) {
		t.Errorf("load --concurrency 0: %v", err)
	}
}
