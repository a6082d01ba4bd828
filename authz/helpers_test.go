package authz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/portcullis/portcullis/policy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
	s.setBody(http.StatusOK, jwksBody(t, keys...))
}

// jwksBody is the JWKS publishing the public halves of keys.
func jwksBody(t testing.TB, keys ...signingKey) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		set.AddKey(k.public(t))
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return body
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

// signRaw signs a header and a payload given as JSON text, as no JOSE
// library would write them (a member given twice, say).
func signRaw(t testing.TB, k signingKey, header, payload string) string {
	t.Helper()
	input := strings.TrimRight(encodeB64([]byte(header)), "=") + "." + strings.TrimRight(encodeB64([]byte(payload)), "=")
	signer, err := jws.NewSigner(k.alg)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign([]byte(input), k.private)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + strings.TrimRight(encodeB64(sig), "=")
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
	// Refused tokens are answered at once, except in the test of the delay.
	cfg.Token.RefusalDelay = 0
	cfg.CheckTimeout = 30 * time.Second
	cfg.Users.Timeout = 10 * time.Second
	cfg.LogLevel = "error"
	return cfg
}

func startAuthz(t testing.TB, cfg Config, clock Clock) *testAuthz {
	t.Helper()
	return startAuthzLogging(t, cfg, clock, discard())
}

// startAuthzLogging is startAuthz logging to log.
func startAuthzLogging(t testing.TB, cfg Config, clock Clock, log *slog.Logger) *testAuthz {
	t.Helper()
	srv, err := NewServer(cfg, clock, log)
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

func encodeB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeB64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// newDeciderFixture is the real decision without the gRPC server: a JWKS
// served on loopback with keys, the verifier, the sample policy and the
// sample users behind the cache (decider, verifier and metrics are set).
func newDeciderFixture(tb testing.TB, algorithms []string, keys ...signingKey) *fixture {
	tb.Helper()
	jwks := newJWKSServer(tb, keys...)
	m := newMetrics(nil)
	source := NewJWKSSource(JWKSConfig{URL: jwks.URL, RefreshInterval: time.Hour, MinRefetchInterval: time.Hour, FetchTimeout: 10 * time.Second}, SystemClock{}, discard(), m)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	source.Start(ctx)
	waitUntil(tb, "the JWKS", source.Ready)
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Algorithms: algorithms, ClockSkew: time.Second, CacheMaxTokens: 1000}, source, SystemClock{}, m)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	pol, err := newBenchPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	files, err := NewFileDirectory("../examples/users/users.yaml", discard())
	if err != nil {
		tb.Fatal(err)
	}
	users, err := NewCachedDirectory(files, CacheConfig{TTL: time.Hour, MaxStale: time.Hour, MaxUsers: 1000}, SystemClock{}, m)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(users.Close)
	return &fixture{jwks: jwks, decider: NewDecider(pol, v, users, DeciderConfig{Headers: DefaultHeaderNames(), Realm: "api"}), verifier: v, metrics: m}
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Current() *policy.Policy { return s.p }

func newBenchPolicy() (staticPolicy, error) {
	p, err := policy.Load("../examples/policy")
	return staticPolicy{p}, err
}

// reply is a CheckResponse as Envoy would act on it.
type reply struct {
	allowed  bool
	status   int
	grpcCode codes.Code
	reason   string
	// revocation names the revocation that refused the token.
	revocation string
	body       string
	headers    map[string]string // set on the upstream request, or on the denial
	removed    []string
	setCount   map[string]int
}

func (ta *testAuthz) check(t *testing.T, method, path string, raw bool, headers ...[2]string) reply {
	t.Helper()
	all := append([][2]string{{":authority", "api.example.com"}, {":method", method}, {":path", path}, {":scheme", "https"}}, headers...)
	resp, err := ta.client.Check(context.Background(), NewCheckRequest(method, path, "api.example.com", all, raw))
	if err != nil {
		t.Fatalf("Check returned a gRPC error (Envoy would use status_on_error): %v", err)
	}
	r := reply{grpcCode: codes.Code(resp.GetStatus().GetCode()), headers: map[string]string{}, setCount: map[string]int{}}
	if md := resp.GetDynamicMetadata().GetFields(); md != nil {
		r.reason = md["reason"].GetStringValue()
		r.revocation = md["revocation"].GetStringValue()
	}
	if ok := resp.GetOkResponse(); ok != nil {
		r.allowed, r.status = true, 200
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction().String() != "OVERWRITE_IF_EXISTS_OR_ADD" || h.GetAppend() == nil || h.GetAppend().GetValue() {
				t.Errorf("header %s is not set with overwrite semantics: %v", h.GetHeader().GetKey(), h)
			}
			r.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			r.setCount[h.GetHeader().GetKey()]++
		}
		r.removed = ok.GetHeadersToRemove()
		for _, name := range r.removed {
			if _, both := r.headers[name]; both {
				t.Errorf("header %s is both set and removed", name)
			}
		}
		return r
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("response neither allows nor carries a denied response: %v", resp)
	}
	r.status, r.body = int(d.GetStatus().GetCode()), d.GetBody()
	for _, h := range d.GetHeaders() {
		r.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return r
}

func bearer(token string) [2]string { return [2]string{"authorization", "Bearer " + token} }

func obo(v string) [2]string { return [2]string{"x-on-behalf-of", v} }

// fixture is what a test of the decision needs: a JWKS served on loopback
// and, from newFixture, RSA, EC and Ed25519 keys in it and an authz over
// gRPC trusting it; from newDeciderFixture, the decision alone.
type fixture struct {
	jwks        *jwksServer
	rsa, ec, ed signingKey
	az          *testAuthz

	decider  *Decider
	verifier *Verifier
	metrics  *metrics
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{}
	f.rsa = newSigningKey(t, "rsa-1", jwa.RS256)
	f.ec = newSigningKey(t, "ec-1", jwa.ES256)
	f.ed = newSigningKey(t, "ed-1", jwa.EdDSA)
	f.jwks = newJWKSServer(t, f.rsa, f.ec, f.ed)
	f.az = startAuthz(t, testConfig(t, f.jwks.URL), SystemClock{})
	f.az.waitReady(t)
	return f
}

func (f *fixture) token(t *testing.T, mutate func(cl map[string]any)) string {
	cl := claims(time.Now())
	if mutate != nil {
		mutate(cl)
	}
	return sign(t, f.ec, nil, cl)
}

func withScope(scope string) func(map[string]any) {
	return func(cl map[string]any) { cl["scope"] = scope }
}

// rekeyed returns the same private key under another kid ("" for none).
func rekeyed(t *testing.T, k signingKey, kid string) signingKey {
	var raw any
	if err := k.private.Raw(&raw); err != nil {
		t.Fatal(err)
	}
	nk, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		nk.Set(jwk.KeyIDKey, kid)
	}
	return signingKey{kid: kid, alg: k.alg, private: nk}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

// respell returns p, canonical unpadded base64url with unused bits in its
// last character, with the lowest of those bits set: the same bytes to a
// lenient decoder, another string to everyone else.
func respell(t *testing.T, p string) string {
	t.Helper()
	if len(p)%4 < 2 {
		t.Fatalf("%q has no unused bits", p)
	}
	return respellAny(p)
}

// respellAny is respell, or p with one more character ("A" is 0 bits, but
// makes a length that no byte count has) when p has no unused bits.
func respellAny(p string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(p)%4 < 2 {
		return p + "A"
	}
	last := strings.IndexByte(alphabet, p[len(p)-1])
	return p[:len(p)-1] + string(alphabet[last|1])
}

// fakeClock moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// userService is a real HTTP user service whose answers tests control.
type userService struct {
	*httptest.Server
	down  atomic.Bool
	calls atomic.Int64
	delay atomic.Int64
	// gate, when set, holds every request until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func newUserService(t *testing.T, users map[string]string) *userService {
	s := &userService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if d := time.Duration(s.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		if g := s.gate.Load(); g != nil {
			select {
			case <-*g:
			case <-r.Context().Done():
				return
			}
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		body, ok := users[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
