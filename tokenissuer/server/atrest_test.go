package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/internal/secretfile"
)

// openForTest opens the store and keys as `issuer serve` does.
func openForTest(t *testing.T, cfg server.Config) (tokenissuer.Store, *keys.Manager, error) {
	t.Helper()
	ctx := operatorContext()
	if _, err := server.LoadHasher(cfg.Store); err != nil {
		return nil, nil, err
	}
	store, err := server.OpenStore(ctx, cfg.Store, tokenissuer.SystemClock{})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { store.Close() })
	km, err := server.NewKeyManagerFor(cfg, store, fakeclock.New(), discardLogger())
	if err != nil {
		return store, nil, err
	}
	return store, km, km.Load(ctx)
}

// TestStoreAndKeyFilesAreOwnerOnly runs with the most permissive umask (so
// not in parallel: the umask is the process's): the database, its WAL
// sidecars, the secret hashing key, the key-encryption key and the
// directory made for them are still owner-only.
func TestStoreAndKeyFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state")
	cfg := testConfig(dir)
	store, _, err := openForTest(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A write makes sure the WAL and shared-memory files exist.
	if _, _, err := tokenissuer.NewAdmin(store, mustHasher(t, cfg), fakeclock.New(), cfg.AdminLimits()).CreateClient(operatorContext(), tokenissuer.NewClient{ID: "c", Scopes: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(sqlstore.SQLiteFiles(cfg.Store.SQLitePath), cfg.Store.SecretHashKeyFile, server.DefaultKeyEncryptionKeyFile(cfg.Store)) {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", p, info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("state directory: mode %04o, want 0700", info.Mode().Perm())
	}
}

func mustHasher(t *testing.T, cfg server.Config) *tokenissuer.SecretHasher {
	h, err := server.LoadHasher(cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestExposedStoreOrKeyFilesAreRefused: a database, sidecar or key file that
// group or others can read stops the issuer with the fix in the message.
func TestExposedStoreOrKeyFilesAreRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir)
	store, _, err := openForTest(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	for _, p := range append(sqlstore.SQLiteFiles(cfg.Store.SQLitePath)[:2], cfg.Store.SecretHashKeyFile, server.DefaultKeyEncryptionKeyFile(cfg.Store)) {
		t.Run(filepath.Base(p), func(t *testing.T) {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				if err := os.WriteFile(p, nil, 0o600); err != nil { // an empty WAL left by a clean close
					t.Fatal(err)
				}
			}
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(p, 0o600)
			_, _, err := openForTest(t, cfg)
			var exposed *secretfile.ExposedError
			if !errors.As(err, &exposed) || exposed.Path != p || !strings.Contains(err.Error(), "chmod 600 "+p) {
				t.Fatalf("%s readable by others: %v", p, err)
			}
		})
	}
}

// TestSigningKeysAreEncryptedOnSQLiteByDefault: with no key-encryption key
// configured, one is created beside the secret hashing key, and no private
// key reaches the database in clear.
func TestSigningKeysAreEncryptedOnSQLiteByDefault(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	store, km, err := openForTest(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := km.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(server.DefaultKeyEncryptionKeyFile(cfg.Store)) != filepath.Dir(cfg.Store.SecretHashKeyFile) {
		t.Fatalf("the key-encryption key is not beside the secret hashing key: %s", server.DefaultKeyEncryptionKeyFile(cfg.Store))
	}
	stored, err := store.SigningKeys(context.Background())
	if err != nil || len(stored) != 2 {
		t.Fatalf("%d keys, %v", len(stored), err)
	}
	for _, sk := range stored {
		if !keys.IsSealed(sk.PrivateJWK) || strings.Contains(string(sk.PrivateJWK), `"d"`) {
			t.Errorf("key %s is stored in clear", sk.KID)
		}
	}
	// Restarting with the same files reads the keys back.
	if _, _, err := openForTest(t, cfg); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

// plantKey stores a private key as a database writer could: in clear, or
// sealed, under kid.
func plantKey(t *testing.T, store tokenissuer.Store, kid string, jwkJSON []byte) {
	t.Helper()
	if _, err := store.AddSigningKey(context.Background(), keys.SigningKey{KID: kid, Algorithm: "ES256", PrivateJWK: jwkJSON, CreatedAt: fakeclock.New().Now(), ActiveAt: fakeclock.New().Now()}, fakeclock.New().Now().Add(1<<40), time.Unix(1<<40, 0)); err != nil {
		t.Fatal(err)
	}
}

// clearKey is an issuer-generated key as older versions stored it: a P-256
// private JWK in clear, under its RFC 7638 thumbprint.
func clearKey(t *testing.T) (kid string, jwkJSON []byte) {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := jwk.AssignKeyID(key); err != nil {
		t.Fatal(err)
	}
	key.Set(jwk.AlgorithmKey, "ES256")
	encoded, err := json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	return key.KeyID(), encoded
}

// TestKeysInClearAreRefusedThenEncryptedByTheCLI: with a key-encryption
// key, a key row in clear (planted, or left by an older version) stops the
// issuer until `issuer keys encrypt` seals it.
func TestKeysInClearAreRefusedThenEncryptedByTheCLI(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	store, _, err := openForTest(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kid, jwkJSON := clearKey(t)
	plantKey(t, store, kid, jwkJSON)
	_, km, err := openForTest(t, cfg)
	if !errors.Is(err, keys.ErrKeyInClear) || !strings.Contains(err.Error(), kid) || !strings.Contains(err.Error(), "issuer keys encrypt") {
		t.Fatalf("a key in clear: %v", err)
	}
	n, err := km.EncryptStoredKeys(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("encrypt: %d %v", n, err)
	}
	if _, _, err := openForTest(t, cfg); err != nil {
		t.Fatalf("after encrypting: %v", err)
	}
}

// TestKeyWhoseKidIsNotItsThumbprintIsRefused: a sealed key under a kid that
// is not its RFC 7638 thumbprint was not written by the issuer.
func TestKeyWhoseKidIsNotItsThumbprintIsRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	store, km, err := openForTest(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, jwkJSON := clearKey(t)
	key, _ := jwk.ParseKey(jwkJSON)
	key.Set(jwk.KeyIDKey, "chosen-kid")
	relabelled, _ := json.Marshal(key)
	plantKey(t, store, "chosen-kid", km.Encrypter().Seal("chosen-kid", relabelled))
	if _, _, err := openForTest(t, cfg); err == nil || !strings.Contains(err.Error(), "RFC 7638 thumbprint") {
		t.Fatalf("relabelled key: %v", err)
	}
}

// TestKeyEncryptionKeyMustBe32Bytes: a key of the wrong length is reported
// as a key-encryption key problem and never truncated or padded.
func TestKeyEncryptionKeyMustBe32Bytes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{16, 31, 33, 48, 64} {
		raw := make([]byte, n)
		rand.Read(raw)
		_, err := keys.LoadEncrypter(base64.StdEncoding.EncodeToString(raw), "")
		if err == nil || !strings.Contains(err.Error(), "keys.encryption_key") || !strings.Contains(err.Error(), "key-encryption key must be 32 bytes") || strings.Contains(err.Error(), "hashing") {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err := keys.LoadEncrypter("not base64!", ""); err == nil || !strings.Contains(err.Error(), "key-encryption key is not valid base64") {
		t.Errorf("garbage: %v", err)
	}
	file := filepath.Join(t.TempDir(), "kek")
	os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))), 0o600)
	if _, err := keys.LoadEncrypter("", file); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "got 16") {
		t.Errorf("short key in a file: %v", err)
	}
}
