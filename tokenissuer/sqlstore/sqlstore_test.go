package sqlstore_test

import (
	"testing"

	"github.com/portcullis/portcullis/tokenissuer/sqlstore/storetest"
)

// TestConformance runs the store conformance suite against every engine.
func TestConformance(t *testing.T) {
	t.Parallel()
	for name, open := range storetest.Engines() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, open)
		})
	}
}
