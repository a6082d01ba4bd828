package secretscan_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/issuertest"
	"github.com/portcullis/portcullis/tokenissuer/secretformat"
	"github.com/portcullis/portcullis/tokenissuer/secretscan"
	"github.com/portcullis/portcullis/tokenissuer/secretscan/scantest"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

var ops = tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})

type verdict struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestASignedReportRevokesTheSecretAndItsTokens: GitHub's report of a
// leaked secret revokes it and every token of its client, records where it
// was found, and answers each match by its format alone: a well-formed
// secret nobody holds gets the same answer as a live one.
func TestASignedReportRevokesTheSecretAndItsTokens(t *testing.T) {
	t.Parallel()
	github := scantest.NewReporter(t, "github-key-1")
	iss := issuertest.Start(t, issuertest.Options{TenantID: "acme", Scopes: []string{"a"}, Configure: func(c *server.Config) {
		c.SecretScanning.KeysFile = github.WriteKeysFile(t, t.TempDir())
	}})
	admin := iss.Server.Admin()
	leaked := iss.ClientSecret
	if secretformat.Check(leaked) != nil {
		t.Fatalf("the client's secret is not of the scannable format: %q", leaked)
	}
	_, _, kept, err := admin.RotateSecret(ops, iss.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	before := iss.Token(t, "")
	nobodys, _ := secretformat.New()

	status, raw := github.Send(t, iss.URL+secretscan.Path,
		scantest.Match{Token: leaked, Type: "portcullis_client_secret", URL: "https://github.com/acme/app/blob/main/config.yaml", Source: "content"},
		scantest.Match{Token: nobodys, Type: "portcullis_client_secret", URL: "https://github.com/x/y", Source: "commit"},
		scantest.Match{Token: "portcullis_lookalike", Type: "portcullis_client_secret", Source: "content"})
	if status != http.StatusOK {
		t.Fatalf("a signed report: %d %s", status, raw)
	}
	var verdicts []verdict
	if err := json.Unmarshal(raw, &verdicts); err != nil || len(verdicts) != 3 {
		t.Fatalf("the answer: %s", raw)
	}
	for i, want := range []struct{ secret, label string }{{leaked, "true_positive"}, {nobodys, "true_positive"}, {"portcullis_lookalike", "false_positive"}} {
		if verdicts[i].TokenHash != hashOf(want.secret) || verdicts[i].Label != want.label || verdicts[i].TokenType != "portcullis_client_secret" {
			t.Errorf("verdict %d: %+v, want %s", i, verdicts[i], want.label)
		}
	}
	if strings.Contains(string(raw), leaked) {
		t.Fatal("the answer carries the secret")
	}

	if got := issuertest.TokenStatus(t, iss.URL, iss.ClientID, leaked); got != http.StatusUnauthorized {
		t.Errorf("the leaked secret after the report: %d", got)
	}
	if got := issuertest.TokenStatus(t, iss.URL, iss.ClientID, kept); got != http.StatusOK {
		t.Errorf("the client's other secret: %d", got)
	}
	if _, err := iss.Server.VerifyAccessToken(before); err == nil || !strings.Contains(err.Error(), "revoked (client.secret_leaked)") {
		t.Errorf("a token the client held before the report: %v", err)
	}
	records, err := admin.Audit(ops, tokenissuer.AuditQuery{Action: tokenissuer.ActionSecretLeaked})
	if err != nil || len(records) != 1 || records[0].Actor != "secret-scanning:github" || !strings.Contains(string(records[0].After), "https://github.com/acme/app/blob/main/config.yaml") || records[0].TenantID != "acme" {
		t.Fatalf("the trail: %v %+v", err, records)
	}
	if strings.Contains(string(records[0].After), leaked) || strings.Contains(string(records[0].Before), leaked) {
		t.Fatal("the trail holds the secret")
	}

	// GitHub sends a report again when unsure it arrived: the same answer.
	if status, again := github.Send(t, iss.URL+secretscan.Path, scantest.Match{Token: leaked, Type: "portcullis_client_secret"}); status != http.StatusOK || !strings.Contains(string(again), "true_positive") {
		t.Fatalf("the same report again: %d %s", status, again)
	}
}

// TestReportsThatDoNotVerifyChangeNothing: a tampered body, another key,
// an unknown key ID, no signature: 401, and the secret still works.
func TestReportsThatDoNotVerifyChangeNothing(t *testing.T) {
	t.Parallel()
	github := scantest.NewReporter(t, "github-key-1")
	forger := scantest.NewReporter(t, "github-key-1") // claims GitHub's key ID
	iss := issuertest.Start(t, issuertest.Options{TenantID: "acme", Scopes: []string{"a"}, Configure: func(c *server.Config) {
		c.SecretScanning.KeysFile = github.WriteKeysFile(t, t.TempDir())
	}})
	report, _ := json.Marshal([]scantest.Match{{Token: iss.ClientSecret, Type: "portcullis_client_secret"}})
	tampered, _ := json.Marshal([]scantest.Match{{Token: iss.ClientSecret, Type: "portcullis_client_secret", URL: "https://elsewhere"}})
	url := iss.URL + secretscan.Path
	for name, send := range map[string]func() (int, []byte){
		"a forged signature":       func() (int, []byte) { return forger.Send(t, url, scantest.Match{Token: iss.ClientSecret}) },
		"a tampered body":          func() (int, []byte) { return scantest.Post(t, url, tampered, github.ID, github.Sign(t, report)) },
		"an unknown key":           func() (int, []byte) { return scantest.Post(t, url, report, "github-key-9", github.Sign(t, report)) },
		"no signature":             func() (int, []byte) { return scantest.Post(t, url, report, github.ID, "") },
		"a signature that is junk": func() (int, []byte) { return scantest.Post(t, url, report, github.ID, "not base64!") },
	} {
		if status, raw := send(); status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}
	if got := issuertest.TokenStatus(t, iss.URL, iss.ClientID, iss.ClientSecret); got != http.StatusOK {
		t.Fatalf("the secret after reports that did not verify: %d", got)
	}
	if records, _ := iss.Server.Admin().Audit(ops, tokenissuer.AuditQuery{Action: tokenissuer.ActionSecretLeaked}); len(records) != 0 {
		t.Fatal("a report that did not verify was recorded")
	}
	// The endpoint is public: one address gets a bounded number of tries.
	limited := false
	for range 70 {
		if status, _ := scantest.Post(t, url, report, github.ID, ""); status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("an address sent 70 reports in a minute unhindered")
	}
}

// TestKeysFromGitHubsURLAreFetchedAgainForANewKey: GitHub rotates its keys;
// a report signed by a key the issuer has not seen makes it read the
// document again (at most once a minute), and then verifies.
func TestKeysFromGitHubsURLAreFetchedAgainForANewKey(t *testing.T) {
	t.Parallel()
	old, rotated := scantest.NewReporter(t, "github-key-1"), scantest.NewReporter(t, "github-key-2")
	var current atomic.Pointer[scantest.Reporter]
	current.Store(old)
	var fetches atomic.Int32
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(current.Load().KeysDocument(t))
	}))
	t.Cleanup(keys.Close)
	iss := issuertest.Start(t, issuertest.Options{TenantID: "acme", Scopes: []string{"a"}, Configure: func(c *server.Config) {
		c.SecretScanning.KeysURL = keys.URL
	}})
	other, _ := secretformat.New()
	if status, raw := old.Send(t, iss.URL+secretscan.Path, scantest.Match{Token: other}); status != http.StatusOK {
		t.Fatalf("signed by the key fetched at start: %d %s", status, raw)
	}
	current.Store(rotated)
	if status, raw := rotated.Send(t, iss.URL+secretscan.Path, scantest.Match{Token: iss.ClientSecret}); status != http.StatusOK {
		t.Fatalf("signed by GitHub's new key: %d %s", status, raw)
	}
	if got := issuertest.TokenStatus(t, iss.URL, iss.ClientID, iss.ClientSecret); got != http.StatusUnauthorized {
		t.Errorf("the reported secret: %d", got)
	}
	before := fetches.Load()
	for range 5 {
		scantest.Post(t, iss.URL+secretscan.Path, []byte("[]"), "github-key-bogus", rotated.Sign(t, []byte("[]")))
	}
	if fetches.Load() != before {
		t.Errorf("unknown key IDs made the issuer fetch GitHub's keys %d more times within a minute", fetches.Load()-before)
	}
}
