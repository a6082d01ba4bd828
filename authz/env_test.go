package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "https://api.example.com"
)

// signingKey is a private key the test JWKS server publishes.
type signingKey struct {
	kid     string
	alg     jwa.SignatureAlgorithm
	private jwk.Key
}

func newSigningKey(t testing.TB, kid string, alg jwa.SignatureAlgorithm) signingKey {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case jwa.RS256:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	case jwa.ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.EdDSA:
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	k.Set(jwk.KeyIDKey, kid)
	k.Set(jwk.AlgorithmKey, alg)
	return signingKey{kid: kid, alg: alg, private: k}
}

func (k signingKey) public(t testing.TB) jwk.Key {
	pub, err := k.private.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// jwksServer is a real HTTP JWKS endpoint whose keys and failures tests control.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int64
	// gate, when set, holds every request until it is closed.
	gate chan struct{}
	// waiting counts requests held at the gate.
	waiting atomic.Int64
	// declareLength sends Content-Length even for bodies net/http would chunk.
	declareLength bool
}

func newJWKSServer(t testing.TB, keys ...signingKey) *jwksServer {
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, gate, declareLength := s.body, s.status, s.gate, s.declareLength
		s.mu.Unlock()
		if gate != nil {
			s.waiting.Add(1)
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if declareLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...signingKey) {
	set := jwk.NewSet()
	for _, k := range keys {
		set.AddKey(k.public(t))
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(http.StatusOK, body)
}

func (s *jwksServer) setBody(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func (s *jwksServer) setGate(g chan struct{}) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
}

// claims returns valid claims for the test issuer, to be adjusted per test.
func claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"sub":       "client-1",
		"client_id": "client-1",
		"aud":       testAudience,
		"iat":       now.Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       "jti-" + now.String(),
		"scope":     "accounts:read accounts:write users:read core.users:act-on-behalf-of",
		"tenant_id": "acme",
	}
}

// sign makes a JWS with the given protected header fields and claims.
func sign(t testing.TB, k signingKey, header map[string]any, cl map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, k.kid)
	hdr.Set(jws.TypeKey, "at+jwt")
	for name, v := range header {
		hdr.Set(name, v)
	}
	signed, err := jws.Sign(payload, jws.WithKey(k.alg, k.private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// copyDir copies the files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
	}
	return dst
}

// testAuthz is an authz server on loopback with its gRPC client.
type testAuthz struct {
	srv    *Server
	client authv3.AuthorizationClient
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
}

// testConfig points authz at the sample policy and users (copied, so tests
// may edit them) and at jwksURL.
func testConfig(t testing.TB, jwksURL string) Config {
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Policy = copyDir(t, "../examples/policy")
	users := copyDir(t, "../examples/users")
	cfg.Users.File = filepath.Join(users, "users.yaml")
	cfg.Token.Issuer, cfg.Token.Audience, cfg.Token.JWKSURL = testIssuer, testAudience, jwksURL
	cfg.Token.JWKSMinRefetchInterval = 0
	// Generous: a busy machine must not turn a slow check into a 503. Tests
	// of the timeouts set their own.
	cfg.Token.JWKSFetchTimeout = 10 * time.Second
	cfg.CheckTimeout = 30 * time.Second
	cfg.Users.Timeout = 10 * time.Second
	cfg.LogLevel = "error"
	return cfg
}

func startAuthz(t testing.TB, cfg Config, clock Clock) *testAuthz {
	t.Helper()
	srv, err := NewServer(cfg, clock, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAuthz{srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ta.conn, ta.client = conn, authv3.NewAuthorizationClient(conn)
	t.Cleanup(ta.stop)
	return ta
}

func (ta *testAuthz) stop() {
	if ta.cancel == nil {
		return
	}
	ta.cancel()
	ta.conn.Close()
	<-ta.done
	ta.cancel = nil
}

func (ta *testAuthz) waitReady(t testing.TB) {
	t.Helper()
	waitUntil(t, "authz to become ready", ta.srv.Ready)
}

// waitWatching waits until authz watches its policy and users files, so an
// edit made from then on is seen.
func (ta *testAuthz) waitWatching(t testing.TB) {
	t.Helper()
	for _, watching := range []<-chan struct{}{ta.srv.Policies.Watching(), ta.srv.fileDir.Watching()} {
		select {
		case <-watching:
		case <-time.After(patience):
			t.Fatal("authz never started watching its files")
		}
	}
}

// patience bounds how long a test waits for something that must happen: long
// enough for a busy 2-core machine, since only a hang should ever reach it.
const patience = time.Minute

// waitUntil polls cond until it holds. Tests wait on what they expect to
// happen, never for a fixed time; the deadline only catches a hang.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
