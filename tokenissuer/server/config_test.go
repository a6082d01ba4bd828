package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/tokenissuer/server"
)

func TestConfigValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*server.Config)
		want   string
	}{
		{"bad algorithm", func(c *server.Config) { c.Keys.Algorithm = "HS256" }, `keys.algorithm: "HS256" is not supported`},
		{"publish delay too short", func(c *server.Config) { c.Keys.PublishDelay = time.Minute }, "keys.publish_delay: 1m0s must be longer than keys.jwks_max_age"},
		{"issuer not a URL", func(c *server.Config) { c.Issuer = "issuer.example.com" }, "issuer:"},
		{"unknown driver", func(c *server.Config) { c.Store.Driver = "mysql" }, `store.driver: "mysql"`},
		{"postgres without DSN", func(c *server.Config) { c.Store.Driver = "postgres" }, "store.postgres_dsn: required"},
		{"bad listen", func(c *server.Config) { c.Listen = "8080" }, "listen:"},
		{"max lifetime below lifetime", func(c *server.Config) { c.Tokens.MaxLifetime = time.Minute }, "tokens.max_lifetime"},
		{"log level", func(c *server.Config) { c.LogLevel = "verbose" }, "log_level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	cfg := server.DefaultConfig()
	cfg.Keys.Algorithm, cfg.Listen = "none", "x"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "keys.algorithm") || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("every problem should be reported at once: %v", err)
	}
	def := server.DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}
