package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func issuerCmd(t *testing.T, config string, args ...string) (map[string]any, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	// args are COMMAND SUBCOMMAND [ARGS...]; flags go before the arguments.
	full := append([]string{args[0], args[1], "--config", config}, args[2:]...)
	err := run(context.Background(), full, &stdout, &stderr)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if strings.HasPrefix(strings.TrimSpace(stdout.String()), "{") {
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("output is not JSON: %s", stdout.String())
		}
	}
	return out, nil
}

func TestClientLifecycle(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "issuer.yaml")
	os.WriteFile(config, []byte("store:\n  sqlite_path: "+filepath.Join(dir, "i.db")+"\n  secret_hash_key_file: "+filepath.Join(dir, "k")+"\n"), 0o644)

	created, err := issuerCmd(t, config, "clients", "create", "--id", "acme-app", "--tenant", "acme", "--scopes", "a b,c")
	if err != nil {
		t.Fatal(err)
	}
	if created["client_secret"] == nil || created["tenant_id"] != "acme" || len(created["scopes"].([]any)) != 3 {
		t.Fatalf("create: %v", created)
	}
	shown, _ := issuerCmd(t, config, "clients", "show", "acme-app")
	if _, leaked := shown["client_secret"]; leaked || strings.Contains(mustJSON(shown), created["client_secret"].(string)) {
		t.Fatal("show prints the secret")
	}
	rotated, err := issuerCmd(t, config, "clients", "rotate-secret", "acme-app")
	if err != nil || rotated["client_secret"] == nil || len(rotated["secrets"].([]any)) != 2 {
		t.Fatalf("rotate: %v %v", rotated, err)
	}
	revoked, err := issuerCmd(t, config, "clients", "revoke-secret", "acme-app")
	if err != nil || len(revoked["secrets"].([]any)) != 1 {
		t.Fatalf("revoke: %v %v", revoked, err)
	}
	if d, _ := issuerCmd(t, config, "clients", "disable", "acme-app"); d["status"] != "disabled" {
		t.Fatalf("disable: %v", d)
	}
	if e, _ := issuerCmd(t, config, "clients", "enable", "acme-app"); e["status"] != "active" {
		t.Fatalf("enable: %v", e)
	}
	if s, _ := issuerCmd(t, config, "clients", "set-scopes", "acme-app", "x"); len(s["scopes"].([]any)) != 1 {
		t.Fatalf("set-scopes: %v", s)
	}
	if _, err := issuerCmd(t, config, "clients", "delete", "acme-app"); err != nil {
		t.Fatal(err)
	}
	if _, err := issuerCmd(t, config, "clients", "show", "acme-app"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("show after delete: %v", err)
	}
	if _, err := issuerCmd(t, config, "keys", "rotate"); err != nil {
		t.Fatal(err)
	}
	// Keys are encrypted from the start: there is nothing left in clear.
	if _, err := issuerCmd(t, config, "keys", "encrypt"); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "issuer-key-encryption.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key-encryption key beside the hash key: %v %v", info, err)
	}
}

func TestBadConfigNamesTheSetting(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "issuer.yaml")
	os.WriteFile(config, []byte("keys:\n  algorithm: HS256\n"), 0o644)
	_, err := issuerCmd(t, config, "clients", "list")
	if err == nil || !strings.Contains(err.Error(), "keys.algorithm") {
		t.Fatalf("error %v", err)
	}
	t.Setenv("PORTCULLIS_ISSUER_KEYS_ALGORITHM", "EdDSA")
	os.WriteFile(config, []byte("store:\n  sqlite_path: "+filepath.Join(dir, "i.db")+"\n  secret_hash_key_file: "+filepath.Join(dir, "k")+"\n"), 0o644)
	if _, err := issuerCmd(t, config, "clients", "list"); err != nil {
		t.Fatalf("environment override: %v", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
