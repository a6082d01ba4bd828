package loadtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/revocation"
)

// Mix names a request mix.
type Mix string

// Mixes.
const (
	// MixRealistic: mostly allowed reads and writes, some on behalf of users,
	// public routes, and a share of 401, 403 and 409 denials.
	MixRealistic Mix = "realistic"
	// MixAllowOnBehalfOf: only the hot path, a cached token allowed on behalf
	// of a cached user.
	MixAllowOnBehalfOf Mix = "allow-obo"
)

// Issuer is the load run's token issuer: an EdDSA or ES256 key whose JWKS
// is served on loopback, so authz verifies real signatures.
type Issuer struct {
	URL     string // the "iss" of the tokens
	JWKSURL string
	// Algorithm signs the tokens.
	Algorithm jwa.SignatureAlgorithm
	key       jwk.Key
	server    *httptest.Server

	mu   sync.Mutex
	feed revocation.Feed
}

// Audience is the "aud" of the load run's tokens.
const Audience = "https://api.example.com"

// NewIssuer creates a key for alg (EdDSA or ES256) and serves its JWKS;
// Close stops it.
func NewIssuer(alg jwa.SignatureAlgorithm) (*Issuer, error) {
	var priv any
	var err error
	switch alg {
	case jwa.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jwa.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("algorithm %s: the load tool signs with EdDSA or ES256", alg)
	}
	if err != nil {
		return nil, err
	}
	key, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, err
	}
	if err := jwk.AssignKeyID(key); err != nil {
		return nil, err
	}
	key.Set(jwk.AlgorithmKey, alg)
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	set.AddKey(pub)
	body, _ := json.Marshal(set)
	iss := &Issuer{URL: "https://load.test", Algorithm: alg, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	})
	// authz's own token and the revocation feed, for runs that follow it.
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"load-follower","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("GET "+revocation.FeedPath, iss.serveFeed)
	srv := httptest.NewServer(mux)
	iss.JWKSURL, iss.server = srv.URL, srv
	return iss, nil
}

// Revoke makes the feed hold n revocations: tokens, clients and tenants the
// workload does not use, so every check looks them up and none is refused.
func (i *Issuer) Revoke(n int) {
	now := time.Now()
	feed := revocation.Feed{Version: int64(n), Full: true, Entries: make([]revocation.Entry, 0, n)}
	for k := range n {
		e := revocation.Entry{Seq: int64(k + 1), Expires: now.Add(time.Hour).Unix(), Cause: "load", At: now}
		switch k % 3 {
		case 0:
			e.Kind, e.Subject = revocation.KindToken, fmt.Sprintf("revoked-jti-%d", k)
		case 1:
			e.Kind, e.Subject, e.Before = revocation.KindClient, fmt.Sprintf("revoked-client-%d", k), now.Unix()+60
		default:
			e.Kind, e.Subject, e.Before = revocation.KindTenant, fmt.Sprintf("revoked-tenant-%d", k), now.Unix()+60
		}
		feed.Entries = append(feed.Entries, e)
	}
	i.mu.Lock()
	i.feed = feed
	i.mu.Unlock()
}

// serveFeed answers a fresh follower with the whole set, in pages of
// feedPage entries as the issuer does, and holds a follower at the set's
// version for its wait.
func (i *Issuer) serveFeed(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	feed := i.feed
	i.mu.Unlock()
	q := r.URL.Query()
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	if q.Has("since") && since >= feed.Version {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second):
		}
		feed = revocation.Feed{Version: feed.Version, Entries: []revocation.Entry{}}
	} else {
		// Entries are in Seq order, Seq = index + 1.
		rest := feed.Entries[min(int(since), len(feed.Entries)):]
		page := revocation.Feed{Version: feed.Version, Full: !q.Has("since"), Entries: rest[:min(len(rest), feedPage)]}
		if len(rest) > feedPage {
			page.More, page.Version = true, page.Entries[feedPage-1].Seq
		}
		feed = page
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(feed)
}

// feedPage is how many entries one answer of the load run's feed holds.
const feedPage = 10_000

// Close stops the JWKS server.
func (i *Issuer) Close() { i.server.Close() }

// Token mints an access token.
func (i *Issuer) Token(clientID, tenant, scope, jti string, lifetime time.Duration) (string, error) {
	now := time.Now()
	claims := map[string]any{"iss": i.URL, "sub": clientID, "client_id": clientID, "aud": Audience,
		"iat": now.Unix(), "exp": now.Add(lifetime).Unix(), "jti": jti, "scope": scope, "tenant_id": tenant}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	hdr.Set(jws.TypeKey, "at+jwt")
	hdr.Set(jws.KeyIDKey, i.key.KeyID())
	signed, err := jws.Sign(payload, jws.WithKey(i.Algorithm, i.key, jws.WithProtectedHeaders(hdr)))
	return string(signed), err
}

// Workload is a set of requests and the outcome each expects.
type Workload struct {
	specs []requestSpec
	// prebuilt holds the CheckRequests when there are few enough to keep;
	// a million-token workload builds each request when it is sent instead.
	prebuilt []*authv3.CheckRequest
	// UsersFile is the user directory written for authz.
	UsersFile string
	// cursor is the next request to send. It carries on from one run to
	// the next, so a workload of more tokens than authz caches keeps
	// sending tokens it has not seen (or has forgotten), round after round.
	cursor atomic.Int64
}

// next returns the index of the next request to send.
func (w *Workload) next() int { return int((w.cursor.Add(1) - 1) % int64(len(w.specs))) }

type requestSpec struct {
	method, path, token, obo string
	// expected is the HTTP status the request should get (0: not checked).
	expected int
}

// prebuildLimit bounds the requests kept in memory (a few KB each).
const prebuildLimit = 200_000

// Len is the number of distinct requests.
func (w *Workload) Len() int { return len(w.specs) }

// Expected is the status request i should get (0: not checked).
func (w *Workload) Expected(i int) int { return w.specs[i].expected }

// tamper flips one bit in the middle of the token's signature: a token
// whose every part is still canonical base64url, certain to fail its
// signature check. (Changing the last characters could leave the bytes as
// they were, or touch only bits base64url leaves unused.)
func tamper(token string) string {
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil || len(sig) == 0 {
		return token + "x"
	}
	sig[len(sig)/2] ^= 0x10
	return token[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// forge returns a token with token's header and claims and a random
// signature of the same length: what an attacker without keys can send, a
// new cache key each time and a full signature check for authz.
func forge(token string) string {
	dot := strings.LastIndexByte(token, '.')
	sig := make([]byte, base64.RawURLEncoding.DecodedLen(len(token)-dot-1))
	rand.Read(sig)
	return token[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// Describe writes request i as it can be replayed with authz check.
func (w *Workload) Describe(i int) string {
	s := w.specs[i]
	cmd := "authz check"
	if s.token != "" {
		cmd += fmt.Sprintf(" --token %q", s.token)
	}
	if s.obo != "" {
		cmd += fmt.Sprintf(" --on-behalf-of %q", s.obo)
	}
	return fmt.Sprintf("%s %s %q", cmd, s.method, s.path)
}

// Forged returns request i with a forged token (see forge), or nil when
// request i carries no token.
func (w *Workload) Forged(i int) *authv3.CheckRequest {
	s := w.specs[i]
	if s.token == "" {
		return nil
	}
	s.token = forge(s.token)
	return s.build(i)
}

// Request returns request i as Envoy would send it.
func (w *Workload) Request(i int) *authv3.CheckRequest {
	if w.prebuilt != nil {
		return w.prebuilt[i]
	}
	return w.specs[i].build(i)
}

func (s requestSpec) build(i int) *authv3.CheckRequest {
	h := [][2]string{{":authority", "api.example.com"}, {":method", s.method}, {":path", s.path}, {":scheme", "https"},
		{"accept", "application/json"}, {"user-agent", "portcullis-load/1"}, {"x-request-id", fmt.Sprintf("load-%d", i)},
		{"x-forwarded-proto", "https"}}
	if s.token != "" {
		h = append(h, [2]string{"authorization", "Bearer " + s.token})
	}
	if s.obo != "" {
		h = append(h, [2]string{"x-on-behalf-of", s.obo})
	}
	return authz.NewCheckRequest(s.method, s.path, "api.example.com", h, false)
}

const fullScope = "accounts:read accounts:write transactions:read cards:read users:read " + authz.ActOnBehalfOfScope

// BuildWorkload mints tokens for clients and tenants, writes a user
// directory of users (every tenth blocked) into dir, and prepares requests
// in the chosen mix. Tokens are minted in parallel.
func BuildWorkload(iss *Issuer, mix Mix, tokens, users int, dir string) (*Workload, error) {
	if users < 40 || tokens < 1 {
		return nil, fmt.Errorf("need at least 40 users and 1 token")
	}
	tenants := []string{"acme", "globex", "initech", "umbrella"}
	var userDoc strings.Builder
	userDoc.WriteString("users:\n")
	// Every tenant has blocked users: those whose u/len(tenants) ends in 9.
	blocked := func(u int) bool { return (u/len(tenants))%10 == 9 }
	for u := 0; u < users; u++ {
		status := "active"
		if blocked(u) {
			status = "blocked"
		}
		fmt.Fprintf(&userDoc, "  - {id: \"u%d\", status: %s, tenant_id: %s}\n", u, status, tenants[u%len(tenants)])
	}
	w := &Workload{UsersFile: filepath.Join(dir, "users.yaml")}
	if err := os.WriteFile(w.UsersFile, []byte(userDoc.String()), 0o644); err != nil {
		return nil, err
	}
	minted := make([]string, tokens)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for worker := 0; worker < 8; worker++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			for t := worker; t < tokens; t += 8 {
				client := fmt.Sprintf("client-%d", t%max(tokens/10, 1))
				tok, err := iss.Token(client, tenants[t%len(tenants)], fullScope, fmt.Sprintf("jti-%d", t), time.Hour)
				if err != nil {
					errs <- err
					return
				}
				minted[t] = tok
			}
		}(worker)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	readOnly, err := iss.Token("client-ro", "acme", "accounts:read", "jti-ro", time.Hour)
	if err != nil {
		return nil, err
	}
	// Users u ≡ t (mod len(tenants)) share token t's tenant.
	userFor := func(t, k int) string {
		u := (t%len(tenants) + len(tenants)*k) % (users - users%len(tenants))
		if blocked(u) { // keep the allow path on active users
			u = (u + len(tenants)) % (users - users%len(tenants))
		}
		return fmt.Sprintf("u%d", u)
	}
	blockedFor := func(t int) string {
		return fmt.Sprintf("u%d", len(tenants)*9+t%len(tenants))
	}
	add := func(method, path, token, obo string, status int) {
		w.specs = append(w.specs, requestSpec{method: method, path: path, token: token, obo: obo, expected: status})
	}
	for t, tok := range minted {
		k := t / len(tenants)
		switch mix {
		case MixAllowOnBehalfOf:
			add("GET", fmt.Sprintf("/v1/accounts/%d?expand=owner", t), tok, "user "+userFor(t, k), 200)
			continue
		case MixRealistic:
		default:
			return nil, fmt.Errorf("unknown mix %q (realistic or allow-obo)", mix)
		}
		// Per 20 requests: 11 allowed reads/writes, 3 on behalf of a user,
		// 1 public, 2 × 401, 1 × 403, 1 × 409, 1 unknown user.
		add("GET", fmt.Sprintf("/v1/accounts/%d", t), tok, "", 200)
		add("GET", "/v1/accounts?limit=20", tok, "", 200)
		add("GET", fmt.Sprintf("/v1/accounts/%d/transactions/tx%d", t, t), tok, "", 200)
		add("PATCH", fmt.Sprintf("/v1/accounts/%d", t), tok, "", 200)
		add("GET", fmt.Sprintf("/v1/cards/c%d", t), tok, "", 200)
		add("GET", "/v1/cards", tok, "", 200)
		add("GET", fmt.Sprintf("/v1/users/u%d", t), tok, "", 200)
		add("GET", fmt.Sprintf("/v1/accounts/%d/statements/2026/11", t), tok, "", 200)
		add("GET", fmt.Sprintf("/v1/accounts/%d", t+1), tok, "", 200)
		add("PUT", fmt.Sprintf("/v1/accounts/%d", t), tok, "", 200)
		add("GET", "/v1/accounts", tok, "", 200)
		add("POST", "/v1/accounts", tok, "user "+userFor(t, k), 200)
		add("GET", fmt.Sprintf("/v1/accounts/%d", t), tok, "user "+userFor(t, k+1), 200)
		add("POST", fmt.Sprintf("/v1/accounts/%d/transfers", t), tok, "user "+userFor(t, k+2), 403) // no transactions:write
		add("GET", "/healthz", "", "", 200)
		add("GET", fmt.Sprintf("/v1/accounts/%d", t), "", "", 401)
		add("GET", fmt.Sprintf("/v1/accounts/%d", t), tamper(tok), "", 401)
		add("PUT", fmt.Sprintf("/v1/accounts/%d", t), readOnly, "", 403)
		add("POST", "/v1/accounts", tok, "user "+blockedFor(t), 409)
		add("GET", "/v1/accounts/1", tok, "user nobody", 403)
	}
	if len(w.specs) <= prebuildLimit {
		w.prebuilt = make([]*authv3.CheckRequest, len(w.specs))
		for i, s := range w.specs {
			w.prebuilt[i] = s.build(i)
		}
	}
	return w, nil
}
