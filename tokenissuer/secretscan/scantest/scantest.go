// Package scantest plays GitHub's secret scanning for tests: a reporter
// with its own signing key (made by the test, for tests only), its keys
// document, and signed reports.
package scantest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// Reporter signs reports with its key, named ID in its keys document.
type Reporter struct {
	ID  string
	key *ecdsa.PrivateKey
}

// NewReporter makes a reporter with a new P-256 key.
func NewReporter(t testing.TB, id string) *Reporter {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Reporter{ID: id, key: key}
}

// KeysDocument is the reporter's public key as GitHub publishes its own.
func (r *Reporter) KeysDocument(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&r.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"public_keys": []map[string]any{{
		"key_identifier": r.ID,
		"key":            string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"is_current":     true,
	}}}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// WriteKeysFile writes the keys document into dir and returns its path.
func (r *Reporter) WriteKeysFile(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "github-secret-scanning-keys.json")
	if err := os.WriteFile(path, r.KeysDocument(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Match is one secret found, as GitHub reports it.
type Match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// Sign is the Github-Public-Key-Signature of body.
func (r *Reporter) Sign(t testing.TB, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, r.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// Send posts matches to url, signed, and returns the answer.
func (r *Reporter) Send(t testing.TB, url string, matches ...Match) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(matches)
	if err != nil {
		t.Fatal(err)
	}
	return Post(t, url, body, r.ID, r.Sign(t, body))
}

// Post posts body with the given key identifier and signature as they are.
func Post(t testing.TB, url string, body []byte, keyID, signature string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if keyID != "" {
		req.Header.Set("Github-Public-Key-Identifier", keyID)
	}
	if signature != "" {
		req.Header.Set("Github-Public-Key-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}
