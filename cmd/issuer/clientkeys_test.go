package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer/issuertest"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
)

// TestTheDocumentedPrivateKeyJWTWalkThrough: a key in a PEM file (as
// openssl genpkey makes it), its JWKS registered with a new keys-only
// client, and an assertion from the CLI get a token from a running issuer.
func TestTheDocumentedPrivateKeyJWTWalkThrough(t *testing.T) {
	iss := issuertest.Start(t, issuertest.Options{TenantID: "acme", Scopes: []string{"a"}})
	dir := t.TempDir()
	store := iss.Server.Config().Store
	config := filepath.Join(dir, "issuer.yaml")
	os.WriteFile(config, []byte("store:\n  sqlite_path: "+store.SQLitePath+"\n  secret_hash_key_file: "+store.SecretHashKeyFile+"\n"), 0o600)
	_, private, _ := ed25519.GenerateKey(rand.Reader) // made here, for this test only
	der, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "signer.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)

	jwks, _, err := runIssuer(t, "client-keys", "jwks", "--private-key", keyFile, "--kid", "k1")
	if err != nil || strings.Contains(jwks, `"d"`) || !strings.Contains(jwks, `"kid":"k1"`) {
		t.Fatalf("the JWKS: %v %s", err, jwks)
	}
	jwksFile := filepath.Join(dir, "signer.jwks.json")
	os.WriteFile(jwksFile, []byte(jwks), 0o600)
	created, err := issuerCmd(t, config, "clients", "create", "--id", "signer", "--tenant", "acme", "--scopes", "a", "--jwks-file", jwksFile, "--private-key-jwt-only")
	if err != nil || created["client_secret"] != nil {
		t.Fatalf("create: %v %v", err, created)
	}
	assertion, _, err := runIssuer(t, "client-keys", "assertion", "--private-key", keyFile, "--kid", "k1", "--client", "signer", "--audience", iss.URL+"/oauth2/token")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {oauth2.AssertionType}, "client_assertion": {strings.TrimSpace(assertion)}}
	resp, err := http.PostForm(iss.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a token with the CLI's assertion: %s", resp.Status)
	}
}
