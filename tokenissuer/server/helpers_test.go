package server_test

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testConfig returns a configuration whose files live in dir.
func testConfig(dir string) server.Config {
	cfg := server.DefaultConfig()
	cfg.Store.SQLitePath = filepath.Join(dir, "issuer.db")
	cfg.Store.SecretHashKeyFile = filepath.Join(dir, "hash.key")
	return cfg
}

// operatorContext is a context in which a platform operator acts, as the CLI does.
func operatorContext() context.Context {
	return tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
}
