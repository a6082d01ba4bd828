package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/cmd/internal/cli"
	"github.com/portcullis/portcullis/tokenissuer/server"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"
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

	if _, err := issuerCmd(t, config, "tenants", "create", "--id", "acme", "--ceiling", "a b c x"); err != nil {
		t.Fatal(err)
	}
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
	if err == nil || !strings.Contains(err.Error(), config+`:2:3: keys.algorithm: "HS256" is not supported`) {
		t.Fatalf("a bad value in the file names the file's line: %v", err)
	}
	// A bad value from the environment is blamed on its variable, not the file.
	t.Setenv("PORTCULLIS_ISSUER_LISTEN", "nonsense")
	if _, err := issuerCmd(t, config, "clients", "list"); err == nil || !strings.Contains(err.Error(), `PORTCULLIS_ISSUER_LISTEN (listen: "nonsense" is not host:port)`) {
		t.Fatalf("a bad value from the environment: %v", err)
	}
	os.Unsetenv("PORTCULLIS_ISSUER_LISTEN")
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

func writeConfig(t *testing.T, extra string) (dir, config string) {
	t.Helper()
	dir = t.TempDir()
	config = filepath.Join(dir, "issuer.yaml")
	os.WriteFile(config, []byte("store:\n  sqlite_path: "+filepath.Join(dir, "i.db")+"\n  secret_hash_key_file: "+filepath.Join(dir, "k")+"\n"+extra), 0o600)
	return dir, config
}

func runIssuer(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// TestFlagsGoAnywhere: the README's order (flags after the client ID) works
// for every subcommand, and each says which store it uses.
func TestFlagsGoAnywhere(t *testing.T) {
	_, config := writeConfig(t, "")
	if _, _, err := runIssuer(t, "clients", "create", "--id", "acme-app", "--scopes", "a", "--config", config); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"clients", "show", "acme-app", "--config", config},
		{"clients", "rotate-secret", "acme-app", "--config", config},
		{"clients", "revoke-secret", "acme-app", "--config", config},
		{"clients", "disable", "acme-app", "--config", config},
		{"clients", "enable", "acme-app", "--config", config},
		{"clients", "set-scopes", "acme-app", "a b", "--config", config},
		{"--config", config, "clients", "show", "acme-app"},
		{"clients", "delete", "acme-app", "--config", config},
	} {
		_, stderr, err := runIssuer(t, args...)
		if err != nil || !strings.Contains(stderr, "store: sqlite ") {
			t.Errorf("%v: %v %s", args, err, stderr)
		}
	}
}

// TestStateCommandsNeedAStore: without a configuration a command that would
// quietly create ./issuer.db refuses, and creates nothing.
func TestStateCommandsNeedAStore(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("PORTCULLIS_ISSUER_CONFIG", "")
	for _, args := range [][]string{{"clients", "list"}, {"keys", "list"}} {
		_, _, err := runIssuer(t, args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--config") {
			t.Errorf("%v without a config: %v", args, err)
		}
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Fatalf("created %v", entries)
	}
}

func TestCreateRefusesWhatWouldSurprise(t *testing.T) {
	_, config := writeConfig(t, "tokens:\n  max_lifetime: 1h\n")
	_, _, err := runIssuer(t, "clients", "create", "--id", "a", "--scopes", "x", "--token-lifetime", "5h", "--config", config)
	if err == nil || !strings.Contains(err.Error(), "tokens.max_lifetime (1h0m0s)") {
		t.Errorf("lifetime over the limit: %v", err)
	}
	_, _, err = runIssuer(t, "clients", "create", "--id", "a", "--config", config)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--no-scopes") {
		t.Errorf("no scopes: %v", err)
	}
	if _, _, err := runIssuer(t, "clients", "create", "--id", "a", "--no-scopes", "--config", config); err != nil {
		t.Errorf("--no-scopes: %v", err)
	}
	_, _, err = runIssuer(t, "clients", "create", "--id", "a", "--scopes", "x", "--config", config)
	if err == nil || !strings.Contains(err.Error(), `client "a": a client with this ID already exists`) {
		t.Errorf("duplicate: %v", err)
	}
}

func TestIssuerCommandsExplainThemselves(t *testing.T) {
	for args, want := range map[string][]string{
		"clients create --help":        {"--id", "--scopes", "--no-scopes", "--token-lifetime", "--config", "Example"},
		"clients revoke-secret --help": {"--secret-id", "CLIENT_ID"},
		"keys encrypt --help":          {"key-encryption key", "Example"},
		"--help":                       {"serve", "clients", "keys", "env", "completion"},
	} {
		out, _, err := runIssuer(t, strings.Fields(args)...)
		if err != nil {
			t.Errorf("%s: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", args, w, out)
			}
		}
	}
	_, stderr, err := runIssuer(t, "clients", "create", "--bogus")
	var ue usageError
	if !errors.As(err, &ue) || stderr != "" {
		t.Errorf("unknown flag: %v, printed %q (the error is printed once, by main)", err, stderr)
	}
}

// TestTenantsAndAuditFromTheCLI: tenants are managed with the same rules as
// anywhere, and every change is in the audit trail as the operator's.
func TestTenantsAndAuditFromTheCLI(t *testing.T) {
	_, config := writeConfig(t, "")
	steps := [][]string{
		{"tenants", "create", "--id", "acme", "--name", "Acme", "--ceiling", "a b"},
		{"clients", "create", "--id", "acme-app", "--tenant", "acme", "--scopes", "a b"},
		{"tenants", "set-ceiling", "acme", "a", "--force"},
		{"tenants", "disable", "acme"},
		{"tenants", "enable", "acme"},
		{"tenants", "rename", "acme", "Acme Corp"},
	}
	for _, args := range steps {
		if _, _, err := runIssuer(t, append(args, "--config", config)...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	_, _, err := runIssuer(t, "tenants", "set-ceiling", "acme", "", "--config", config)
	if err == nil || !strings.Contains(err.Error(), "acme-app (a)") {
		t.Fatalf("narrowing below a client without --force: %v", err)
	}
	out, _, err := runIssuer(t, "tenants", "show", "acme", "--config", config)
	if err != nil || !strings.Contains(out, `"name": "Acme Corp"`) || !strings.Contains(out, `"scope_ceiling": [`) {
		t.Fatalf("show: %v %s", err, out)
	}
	out, _, err = runIssuer(t, "audit", "--tenant", "acme", "--config", config)
	var records []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &records) != nil {
		t.Fatalf("audit: %v %s", err, out)
	}
	var actions []string
	for _, r := range records {
		actions = append(actions, r["action"].(string))
		if !strings.HasPrefix(r["actor"].(string), "cli:") {
			t.Errorf("actor %v", r["actor"])
		}
	}
	if got := strings.Join(actions, " "); got != "tenant.create client.create client.set_scopes tenant.set_ceiling tenant.disable revocation.tenant tenant.enable tenant.rename" {
		t.Fatalf("audited actions: %s", got)
	}
	if _, _, err := runIssuer(t, "audit", "--since", "yesterday", "--config", config); err == nil {
		t.Fatal("a bad --since is accepted")
	}
}

func TestAccountsFromTheCLI(t *testing.T) {
	_, config := writeConfig(t, "portal:\n  url: https://admin.example.com/portal/\n")
	if _, err := issuerCmd(t, config, "tenants", "create", "--id", "acme", "--ceiling", "a"); err != nil {
		t.Fatal(err)
	}
	// Without a password: an invitation link for the person to set one.
	inv, err := issuerCmd(t, config, "accounts", "create", "--email", "Ada@Acme.example", "--role", "tenant-admin", "--tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if link, _ := inv["invitation_url"].(string); !strings.HasPrefix(link, "https://admin.example.com/portal/invitation/") || inv["email"] != "ada@acme.example" {
		t.Fatalf("invitation: %v", inv)
	}
	// With --password-stdin: an account that can sign in at once. (Not
	// parallel: standard input is the process's.)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("correct horse battery staple\n")
	w.Close()
	stdin := os.Stdin
	os.Stdin = r
	created, err := issuerCmd(t, config, "accounts", "create", "--email", "ops@example.com", "--role", "platform-admin", "--password-stdin")
	os.Stdin = stdin
	if err != nil || created["role"] != "platform-admin" || created["status"] != "active" {
		t.Fatalf("create with a password: %v %v", err, created)
	}
	if strings.Contains(mustJSON(created), "argon2") {
		t.Fatal("the CLI prints the password hash")
	}
	for _, bad := range [][]string{
		{"accounts", "create", "--email", "x@example.com", "--role", "tenant-admin"},                      // no tenant
		{"accounts", "create", "--email", "x@example.com", "--role", "owner"},                             // no such role
		{"accounts", "create", "--email", "not-an-email", "--role", "platform-admin"},                     // bad email
		{"accounts", "create", "--email", "x@example.com", "--role", "tenant-viewer", "--tenant", "nope"}, // no such tenant
	} {
		if _, err := issuerCmd(t, config, bad...); err == nil {
			t.Errorf("%v was accepted", bad)
		}
	}
	if out, err := issuerCmd(t, config, "accounts", "disable", "ops@example.com"); err != nil || out["status"] != "disabled" {
		t.Fatalf("disable: %v %v", err, out)
	}
	if out, err := issuerCmd(t, config, "accounts", "delete", "ops@example.com"); err != nil || out["deleted"] != "ops@example.com" {
		t.Fatalf("delete: %v %v", err, out)
	}
	stdout, _, err := runIssuer(t, "accounts", "list", "--config", config)
	if err != nil || strings.Contains(stdout, "ops@example.com") {
		t.Fatalf("list after delete: %v\n%s", err, stdout)
	}
	audit, _, err := runIssuer(t, "audit", "--config", config)
	if err != nil || !strings.Contains(audit, "account.invite") || !strings.Contains(audit, "account.delete") || strings.Contains(audit, "correct horse") {
		t.Fatalf("audit of account changes: %v\n%s", err, audit)
	}
}

func TestRevokingTokensFromTheCLI(t *testing.T) {
	_, config := writeConfig(t, "")
	if _, err := issuerCmd(t, config, "clients", "create", "--id", "acme-app", "--scopes", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := issuerCmd(t, config, "clients", "rotate-secret", "acme-app"); err != nil {
		t.Fatal(err)
	}
	if _, err := issuerCmd(t, config, "clients", "revoke-secret", "acme-app", "--revoke-tokens"); err != nil {
		t.Fatal(err)
	}
	if out, err := issuerCmd(t, config, "clients", "revoke-tokens", "acme-app"); err != nil || out["revoked_tokens_of"] != "acme-app" {
		t.Fatalf("revoke-tokens: %v %v", err, out)
	}
	if _, err := issuerCmd(t, config, "clients", "revoke-tokens", "nobody"); err == nil {
		t.Fatal("revoked the tokens of a client that does not exist")
	}
	audit, _, err := runIssuer(t, "audit", "--config", config)
	if err != nil || strings.Count(audit, `"revocation.client"`) != 2 {
		t.Fatalf("audit: %v\n%s", err, audit)
	}
}

// TestCreateWritesTheSecretToAFileOnce: the documented setup of authz's
// feed client writes its secret owner-only, prints none, and may run again.
func TestCreateWritesTheSecretToAFileOnce(t *testing.T) {
	dir, config := writeConfig(t, "")
	secretPath := filepath.Join(dir, "feed", "authz.secret")
	args := []string{"clients", "create", "--id", "authz", "--scopes", "portcullis.revocations:read", "--secret-file", secretPath, "--config", config}
	stdout, _, err := runIssuer(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "client_secret") {
		t.Fatalf("the secret was printed: %s", stdout)
	}
	info, err := os.Stat(secretPath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", info, err)
	}
	raw, _ := os.ReadFile(secretPath)
	// Run again: without --exists-ok it refuses; with it, nothing changes.
	if _, _, err := runIssuer(t, args...); err == nil || !strings.Contains(err.Error(), "--exists-ok") {
		t.Fatalf("second run without --exists-ok: %v", err)
	}
	if _, _, err := runIssuer(t, append(args, "--exists-ok")...); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(secretPath); string(again) != string(raw) {
		t.Fatal("the secret file changed")
	}
	// The secret in the file is the client's.
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "i.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hasher, err := server.LoadHasher(server.StoreConfig{SecretHashKeyFile: filepath.Join(dir, "k")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.Client(context.Background(), "authz")
	if err != nil {
		t.Fatal(err)
	}
	if !hasher.Matches(c.ID, strings.TrimSpace(string(raw)), c.SecretHashes()) {
		t.Fatal("the file's secret does not authenticate the client")
	}
}

// TestServeNeedsAConfiguration: `issuer serve` never makes a store in the
// current directory unasked.
func TestServeNeedsAConfiguration(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("PORTCULLIS_ISSUER_CONFIG", "")
	_, stderr, err := runIssuer(t, "serve")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("serve without a configuration: %v\n%s", err, stderr)
	}
	if _, err := os.Stat("issuer.db"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("serve made ./issuer.db: %v", err)
	}
}

// TestReportingALeakedSecret: an operator revokes a secret found somewhere
// from the secret alone; checking it offline says it is well-formed.
func TestReportingALeakedSecret(t *testing.T) {
	_, config := writeConfig(t, "")
	created, err := issuerCmd(t, config, "clients", "create", "--id", "leaky", "--scopes", "a")
	if err != nil {
		t.Fatal(err)
	}
	secret := created["client_secret"].(string)
	if _, _, err := runIssuer(t, "secrets", "check", secret); err != nil {
		t.Fatalf("a new secret does not check: %v", err)
	}
	out, err := issuerCmd(t, config, "secrets", "report", "--url", "https://paste.example/x", secret)
	if err != nil || out["revoked_secret_of"] != "leaky" {
		t.Fatalf("report: %v %v", err, out)
	}
	shown, err := issuerCmd(t, config, "clients", "show", "leaky")
	if err != nil || len(shown["secrets"].([]any)) != 0 {
		t.Fatalf("the client after the report: %v %v", err, shown)
	}
	if _, err := issuerCmd(t, config, "secrets", "report", secret); cli.Code(err) != 1 {
		t.Fatalf("reporting it again: %v", err)
	}
}
