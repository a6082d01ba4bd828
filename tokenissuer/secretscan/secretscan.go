// Package secretscan receives the reports of GitHub's secret scanning
// partner program: when a Portcullis client secret turns up in a public
// repository, GitHub posts it here, signed; the secret and every token of
// its client are revoked at once (through the revocation feed), the trail
// records where it was found, and the tenant's portal shows it.
//
// The endpoint is public and answers anyone, so it trusts nothing but the
// signature: ECDSA P-256 with SHA-256 over the raw body, by a key that
// GitHub publishes (Github-Public-Key-Identifier names it), read from a
// file or fetched from GitHub's URL and cached. Bodies, entries and
// requests per address are bounded, and the answer for each secret depends
// on its format alone, never on whether it existed.
package secretscan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/limit"
	"github.com/portcullis/portcullis/tokenissuer/secretformat"
)

// Path is where the issuer's public listener takes GitHub's reports.
const Path = "/secret-scanning/github"

// GitHubKeysURL is where GitHub publishes the keys that sign its reports.
const GitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Bounds of one report and of the reporters.
const (
	maxBody           = 1 << 20
	maxEntries        = 1000
	maxKeysDocument   = 1 << 20
	reportsPerMinute  = 60
	refetchAtMostOnce = time.Minute
)

// Config says where the signing keys come from: KeysFile (GitHub's keys
// document, kept by the operator) or KeysURL (fetched, and fetched again
// when a report names a key not yet known, at most once a minute).
type Config struct {
	KeysFile string `yaml:"github_keys_file"`
	KeysURL  string `yaml:"github_keys_url"`
}

// Enabled reports whether reports are taken at all.
func (c Config) Enabled() bool { return c.KeysFile != "" || c.KeysURL != "" }

// Revoker revokes what a report names: tokenissuer.Admin.
type Revoker interface {
	RevokeLeakedSecret(ctx context.Context, r tokenissuer.LeakReport) (*tokenissuer.Client, error)
}

// Handler serves Path.
type Handler struct {
	cfg     Config
	revoker Revoker
	clock   tokenissuer.Clock
	log     *slog.Logger
	address func(*http.Request) string
	client  *http.Client
	limiter *limit.Failures

	mu        sync.Mutex
	keys      map[string]*ecdsa.PublicKey
	lastFetch time.Time
}

// New returns the handler; address names a request's sender (behind the
// issuer's trusted proxies). The keys are loaded now, so a bad file fails
// the start.
func New(ctx context.Context, cfg Config, revoker Revoker, clock tokenissuer.Clock, log *slog.Logger, address func(*http.Request) string) (*Handler, error) {
	h := &Handler{cfg: cfg, revoker: revoker, clock: clock, log: log, address: address,
		client:  &http.Client{Timeout: 10 * time.Second},
		limiter: limit.NewFailures(reportsPerMinute, time.Minute, 10_000, clock)}
	if err := h.reload(ctx); err != nil {
		if cfg.KeysFile != "" {
			return nil, fmt.Errorf("secret_scanning.github_keys_file: %w", err)
		}
		// A URL unreachable at start is fetched again at the first report.
		log.Warn("GitHub's secret scanning keys could not be fetched; trying again at the first report", "url", cfg.KeysURL, "err", err)
	}
	return h, nil
}

// keysDocument is GitHub's document of its signing keys.
type keysDocument struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
	} `json:"public_keys"`
}

// reload reads the keys again from the file or the URL.
func (h *Handler) reload(ctx context.Context) error {
	var raw []byte
	var err error
	if h.cfg.KeysFile != "" {
		raw, err = os.ReadFile(h.cfg.KeysFile)
	} else {
		raw, err = h.fetch(ctx)
	}
	if err != nil {
		return err
	}
	keys, err := parseKeys(raw)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.keys = keys
	h.mu.Unlock()
	return nil
}

func (h *Handler) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.cfg.KeysURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", h.cfg.KeysURL, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysDocument+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxKeysDocument {
		return nil, fmt.Errorf("%s sent more than %d bytes", h.cfg.KeysURL, maxKeysDocument)
	}
	return raw, nil
}

// parseKeys reads the keys document: every key must be a P-256 public key
// in PEM, or the document is refused whole.
func parseKeys(raw []byte) (map[string]*ecdsa.PublicKey, error) {
	var doc keysDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("the keys document is not JSON of the form {\"public_keys\": [{\"key_identifier\": ..., \"key\": PEM}]}: %w", err)
	}
	if len(doc.PublicKeys) == 0 {
		return nil, errors.New("the keys document lists no public_keys")
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, k := range doc.PublicKeys {
		block, _ := pem.Decode([]byte(k.Key))
		if block == nil {
			return nil, fmt.Errorf("key %q is not PEM", k.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %q is not an ECDSA P-256 key", k.KeyIdentifier)
		}
		keys[k.KeyIdentifier] = ec
	}
	return keys, nil
}

// key returns the key id names, reading the keys again (at most once a
// minute) when it is not known: GitHub rotates them.
func (h *Handler) key(ctx context.Context, id string) *ecdsa.PublicKey {
	h.mu.Lock()
	k, ok := h.keys[id]
	stale := !ok && h.clock.Now().Sub(h.lastFetch) >= refetchAtMostOnce
	if stale {
		h.lastFetch = h.clock.Now()
	}
	h.mu.Unlock()
	if ok || !stale {
		return k
	}
	if err := h.reload(ctx); err != nil {
		h.log.Warn("reading GitHub's secret scanning keys again failed", "err", err)
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keys[id]
}

// match is one found secret, as GitHub reports it.
type match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// verdict is the answer about one match: GitHub's false-positive feedback.
// The secret is named by its SHA-256, never sent back.
type verdict struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed, "reports are POSTed")
		return
	}
	address := h.address(r)
	if ok, wait := h.limiter.Take(address); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		refuse(w, http.StatusTooManyRequests, "too many reports from this address")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		refuse(w, http.StatusRequestEntityTooLarge, "a report is at most 1 MiB")
		return
	}
	if !h.verified(r, body) {
		h.log.Warn("a secret scanning report with a bad or missing signature was refused", "remote", address)
		refuse(w, http.StatusUnauthorized, "the report's signature does not verify")
		return
	}
	var matches []match
	if err := json.Unmarshal(body, &matches); err != nil {
		refuse(w, http.StatusBadRequest, "the report is not a JSON array of matches")
		return
	}
	if len(matches) > maxEntries {
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a report holds at most %d matches", maxEntries))
		return
	}
	ctx := tokenissuer.WithActor(r.Context(), tokenissuer.Actor{ID: "secret-scanning:github", Address: address})
	verdicts := make([]verdict, 0, len(matches))
	revoked := 0
	for _, m := range matches {
		client, err := h.revoker.RevokeLeakedSecret(ctx, tokenissuer.LeakReport{Secret: m.Token, URL: m.URL, Source: m.Source})
		if err != nil {
			// GitHub sends the report again: nothing is lost.
			h.log.Error("revoking a reported secret failed", "err", err)
			refuse(w, http.StatusServiceUnavailable, "the report could not be handled now; send it again")
			return
		}
		if client != nil {
			revoked++
		}
		label := "false_positive"
		if secretformat.Check(m.Token) == nil {
			label = "true_positive" // by its checksum: whether it existed is not told
		}
		sum := sha256.Sum256([]byte(m.Token))
		verdicts = append(verdicts, verdict{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: label})
	}
	h.log.Info("secret scanning report handled", "matches", len(matches), "revoked", revoked, "remote", address)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(verdicts)
}

// verified checks the report's signature against the key it names.
func (h *Handler) verified(r *http.Request, body []byte) bool {
	id := r.Header.Get("Github-Public-Key-Identifier")
	sig, err := base64.StdEncoding.DecodeString(r.Header.Get("Github-Public-Key-Signature"))
	if id == "" || len(id) > 256 || err != nil || len(sig) == 0 {
		return false
	}
	key := h.key(r.Context(), id)
	if key == nil {
		return false
	}
	digest := sha256.Sum256(body)
	return ecdsa.VerifyASN1(key, digest[:], sig)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
