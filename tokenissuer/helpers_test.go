package tokenissuer_test

import (
	"context"
	"log/slog"

	"github.com/portcullis/portcullis/tokenissuer"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testOperator is the platform operator the tests act as, as the CLI does.
var testOperator = tokenissuer.Actor{ID: "cli:test", Operator: true}

// operatorContext is a context in which testOperator acts: the service
// layer lets a context without an actor do nothing.
func operatorContext() context.Context {
	return tokenissuer.WithActor(context.Background(), testOperator)
}
