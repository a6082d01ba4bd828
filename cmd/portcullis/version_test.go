package main

import (
	"testing"

	"github.com/portcullis/portcullis/cmd/internal/clitest"
)

// TestVersion: the build is named, so an operator can tell which one runs.
func TestVersion(t *testing.T) { clitest.Version(t, "portcullis", run) }
