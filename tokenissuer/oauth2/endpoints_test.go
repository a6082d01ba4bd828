package oauth2_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

type tokenReply struct {
	status int
	header http.Header
	body   map[string]any
}

// postForm sends a raw POST; contentType and authorization are sent
// verbatim when set.
func postForm(t *testing.T, url, contentType, body, authorization string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, resp.Header
}

// postToken sends a raw token request; authorization is sent verbatim when set.
func postToken(t *testing.T, base, contentType, body, authorization string) tokenReply {
	t.Helper()
	status, raw, header := postForm(t, base+"/oauth2/token", contentType, body, authorization)
	reply := tokenReply{status: status, header: header}
	if err := json.Unmarshal(raw, &reply.body); err != nil {
		t.Fatalf("response body is not JSON: %q", raw)
	}
	return reply
}

const formType = "application/x-www-form-urlencoded"

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// verifyToken checks an issued token's signature against the served JWKS
// and returns it parsed.
func verifyToken(t *testing.T, ti *testIssuer, token string) (jwt.Token, jws.Headers) {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), ti.http.URL+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		t.Fatal(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	tok, err := jwt.Parse([]byte(token), jwt.WithKeySet(set, jws.WithRequireKid(true)), jwt.WithValidate(true), jwt.WithClock(jwt.ClockFunc(ti.clock.Now)),
		jwt.WithIssuer(ti.cfg.Issuer), jwt.WithAudience(ti.cfg.Audience))
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	return tok, hdr
}

func TestTokenIssuedWithBasicAuthAndVerifiedAgainstJWKS(t *testing.T) {
	t.Parallel()
	for _, alg := range keys.SupportedAlgorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t.TempDir())
			cfg.Keys.Algorithm = alg
			clock := fakeclock.New()
			ti := startIssuer(t, cfg, clock)
			c, secret := ti.createClient(tokenissuer.NewClient{ID: "acme.billing-1", Name: "Billing", TenantID: "acme", Scopes: []string{"accounts:read", "accounts:write"}})

			r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
			if r.status != http.StatusOK {
				t.Fatalf("status %d, body %v", r.status, r.body)
			}
			// RFC 6749 §5.1 headers.
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := r.header.Get("Pragma"); got != "no-cache" {
				t.Errorf("Pragma = %q", got)
			}
			if r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(900) || r.body["scope"] != "accounts:read accounts:write" {
				t.Errorf("body = %v", r.body)
			}
			tok, hdr := verifyToken(t, ti, r.body["access_token"].(string))
			if hdr.Type() != "at+jwt" {
				t.Errorf("typ = %q, want at+jwt", hdr.Type())
			}
			if hdr.Algorithm().String() != alg {
				t.Errorf("alg = %q, want %s", hdr.Algorithm(), alg)
			}
			if hdr.KeyID() != ti.keys.Keys()[0].KID {
				t.Errorf("kid = %q", hdr.KeyID())
			}
			now := clock.Now().Truncate(time.Second)
			if tok.Subject() != c.ID || tok.Issuer() != ti.cfg.Issuer || !tok.IssuedAt().Equal(now) || !tok.Expiration().Equal(now.Add(15*time.Minute)) {
				t.Errorf("claims sub=%q iss=%q iat=%v exp=%v", tok.Subject(), tok.Issuer(), tok.IssuedAt(), tok.Expiration())
			}
			if aud := tok.Audience(); len(aud) != 1 || aud[0] != ti.cfg.Audience {
				t.Errorf("aud = %v", aud)
			}
			if tok.JwtID() == "" {
				t.Error("jti missing")
			}
			for claim, want := range map[string]string{"client_id": c.ID, "scope": "accounts:read accounts:write", "tenant_id": "acme"} {
				if got, _ := tok.Get(claim); got != want {
					t.Errorf("%s = %v, want %q", claim, got, want)
				}
			}
		})
	}
}

func TestBasicCredentialsAreFormURLDecoded(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{ID: "team.a_b-c", Scopes: []string{"x"}})
	// RFC 6749 §2.3.1: the ID and secret are form-urlencoded before base64,
	// so every character may arrive percent-encoded.
	var encID strings.Builder
	for _, b := range []byte(c.ID) {
		encID.WriteString("%" + strings.ToUpper(hexByte(b)))
	}
	header := "Basic " + base64.StdEncoding.EncodeToString([]byte(encID.String()+":"+url.QueryEscape(secret)))
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", header); r.status != http.StatusOK {
		t.Fatalf("percent-encoded Basic credentials: status %d %v", r.status, r.body)
	}
	// The standard library's OAuth2 client speaks the same dialect.
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
	}{{"header", oauth2.AuthStyleInHeader}, {"params", oauth2.AuthStyleInParams}} {
		cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: secret, TokenURL: ti.http.URL + "/oauth2/token", AuthStyle: style.style}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("x/oauth2 client with auth in %s: %v", style.name, err)
		}
		verifyToken(t, ti, tok.AccessToken)
	}
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func TestClientSecretPost(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a", "b"}})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {secret}}
	r := postToken(t, ti.http.URL, formType+"; charset=UTF-8", form.Encode(), "")
	if r.status != http.StatusOK {
		t.Fatalf("status %d %v", r.status, r.body)
	}
	verifyToken(t, ti, r.body["access_token"].(string))
}

func TestScopeNarrowing(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"accounts:read", "accounts:write", "cards:read"}})
	tests := []struct {
		name      string
		scope     string
		wantCode  string
		wantScope string
	}{
		{"subset", "cards:read accounts:read", "", "cards:read accounts:read"},
		{"one", "accounts:write", "", "accounts:write"},
		{"duplicates collapse", "cards:read cards:read", "", "cards:read"},
		{"not granted to client", "accounts:read admin", "invalid_scope", ""},
		{"empty", "", "invalid_scope", ""},
		{"double space", "accounts:read  cards:read", "invalid_scope", ""},
		{"quote", `accounts"read`, "invalid_scope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {tt.scope}}
			r := postToken(t, ti.http.URL, formType, form.Encode(), basic(c.ID, secret))
			if tt.wantCode != "" {
				if r.status != http.StatusBadRequest || r.body["error"] != tt.wantCode {
					t.Fatalf("got %d %v, want 400 %s", r.status, r.body, tt.wantCode)
				}
				return
			}
			if r.status != http.StatusOK || r.body["scope"] != tt.wantScope {
				t.Fatalf("got %d %v, want scope %q", r.status, r.body, tt.wantScope)
			}
			tok, _ := verifyToken(t, ti, r.body["access_token"].(string))
			if got, _ := tok.Get("scope"); got != tt.wantScope {
				t.Errorf("token scope %v", got)
			}
		})
	}
}

func TestTokenRequestErrors(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	disabled, disabledSecret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	if _, err := ti.admin.SetStatus(operatorContext(), disabled.ID, tokenissuer.ClientDisabled); err != nil {
		t.Fatal(err)
	}
	good := basic(c.ID, secret)
	postCreds := "&client_id=" + url.QueryEscape(c.ID) + "&client_secret=" + url.QueryEscape(secret)
	tests := []struct {
		name          string
		contentType   string
		body          string
		authorization string
		wantStatus    int
		wantCode      string
		wantBasic     bool
	}{
		{"missing grant_type", formType, "scope=a", good, 400, "invalid_request", false},
		{"unsupported grant", formType, "grant_type=password&username=u&password=p", good, 400, "unsupported_grant_type", false},
		{"authorization code grant", formType, "grant_type=authorization_code&code=x", good, 400, "unsupported_grant_type", false},
		{"JSON body", "application/json", `{"grant_type":"client_credentials"}`, good, 400, "invalid_request", false},
		{"no content type", "", "grant_type=client_credentials", good, 400, "invalid_request", false},
		{"repeated grant_type", formType, "grant_type=client_credentials&grant_type=client_credentials", good, 400, "invalid_request", false},
		{"repeated scope", formType, "grant_type=client_credentials&scope=a&scope=a", good, 400, "invalid_request", false},
		{"basic and form secret", formType, "grant_type=client_credentials" + postCreds, good, 400, "invalid_request", false},
		{"basic and different form client_id", formType, "grant_type=client_credentials&client_id=other", good, 400, "invalid_request", false},
		{"non-UTF-8 body", formType, "grant_type=client_credentials&x=\xff", good, 400, "invalid_request", false},
		{"non-UTF-8 after decoding", formType, "grant_type=client_credentials&x=%ff", good, 400, "invalid_request", false},
		{"bad percent encoding", formType, "grant_type=client_credentials&x=%zz", good, 400, "invalid_request", false},
		{"no credentials", formType, "grant_type=client_credentials", "", 401, "invalid_client", false},
		{"wrong secret basic", formType, "grant_type=client_credentials", basic(c.ID, "wrong"), 401, "invalid_client", true},
		{"wrong secret post", formType, "grant_type=client_credentials&client_id=" + c.ID + "&client_secret=wrong", "", 401, "invalid_client", false},
		{"unknown client basic", formType, "grant_type=client_credentials", basic("nobody", secret), 401, "invalid_client", true},
		{"malformed basic", formType, "grant_type=client_credentials", "Basic !!!", 401, "invalid_client", true},
		{"bearer scheme", formType, "grant_type=client_credentials", "Bearer abc", 401, "invalid_client", true},
		{"other client's secret", formType, "grant_type=client_credentials", basic(disabled.ID, secret), 401, "invalid_client", true},
		{"disabled client", formType, "grant_type=client_credentials", basic(disabled.ID, disabledSecret), 400, "unauthorized_client", false},
		{"scope not allowed", formType, "grant_type=client_credentials&scope=b", good, 400, "invalid_scope", false},
		{"oversized body", formType, "grant_type=client_credentials&pad=" + strings.Repeat("x", 64<<10), good, 413, "invalid_request", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postToken(t, ti.http.URL, tt.contentType, tt.body, tt.authorization)
			if r.status != tt.wantStatus || r.body["error"] != tt.wantCode {
				t.Fatalf("got %d %v, want %d %s", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
				t.Errorf("error response lacks no-store headers: %v", r.header)
			}
			challenge := r.header.Get("WWW-Authenticate")
			if tt.wantBasic != strings.HasPrefix(challenge, "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want Basic challenge: %v", challenge, tt.wantBasic)
			}
			if strings.Contains(r.body["error_description"].(string), secret) {
				t.Error("error description echoes the secret")
			}
		})
	}
}

func TestTokenEndpointRejectsGET(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	resp, err := http.Get(ti.http.URL + "/oauth2/token?grant_type=client_credentials")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	ti := startIssuer(t, testConfig(t.TempDir()), clock)
	ctx := operatorContext()
	c, oldSecret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	clock.Advance(time.Hour)
	_, added, newSecret, err := ti.admin.RotateSecret(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"old": oldSecret, "new": newSecret} {
		if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, s)); r.status != 200 {
			t.Fatalf("%s secret during rotation: %d %v", name, r.status, r.body)
		}
	}
	if _, _, _, err := ti.admin.RotateSecret(ctx, c.ID); err != tokenissuer.ErrTooManySecrets {
		t.Fatalf("third secret: %v, want ErrTooManySecrets", err)
	}
	after, err := ti.admin.RevokeSecret(ctx, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Secrets) != 1 || after.Secrets[0].ID != added.ID {
		t.Fatalf("revoking the oldest left %+v", after.Secrets)
	}
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, oldSecret)); r.status != 401 {
		t.Fatalf("revoked secret: %d %v", r.status, r.body)
	}
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, newSecret)); r.status != 200 {
		t.Fatalf("new secret after revoke: %d %v", r.status, r.body)
	}
	if _, err := ti.admin.RevokeSecret(ctx, c.ID, ""); err != tokenissuer.ErrLastSecret {
		t.Fatalf("revoking the last secret: %v", err)
	}
}

func TestSecretsAreStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) < 32 {
		t.Fatalf("secret %q has fewer than 256 bits", secret)
	}
	stored, err := ti.store.Client(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stored.Secrets {
		if strings.Contains(string(s.Hash), secret) || len(s.Hash) != 32 {
			t.Fatalf("stored secret is not a 32-byte hash: %q", s.Hash)
		}
	}
}

func TestMetadataAndJWKS(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	resp, err := http.Get(ti.http.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["issuer"] != ti.cfg.Issuer || md["token_endpoint"] != ti.cfg.Issuer+"/oauth2/token" || md["jwks_uri"] != ti.cfg.Issuer+"/.well-known/jwks.json" {
		t.Fatalf("metadata = %v", md)
	}
	resp, err = http.Get(ti.http.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if private, _ := jwk.IsPrivateKey(k); private {
			t.Fatal("JWKS publishes a private key")
		}
	}
	if strings.Contains(string(raw), `"d"`) {
		t.Fatal("JWKS contains a private exponent")
	}
}

func TestRestartKeepsKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir)
	clock := fakeclock.New()
	first := startIssuer(t, cfg, clock)
	c, secret := first.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})
	jwksBefore := string(first.keys.JWKS())
	token := postToken(t, first.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)).body["access_token"].(string)
	first.store.Close()

	second := startIssuer(t, cfg, clock)
	if got := string(second.keys.JWKS()); got != jwksBefore {
		t.Fatalf("JWKS changed across restart:\n%s\n%s", jwksBefore, got)
	}
	second.cfg.Issuer = first.cfg.Issuer // the token names the first server's URL
	verifyToken(t, second, token)
	if r := postToken(t, second.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)); r.status != 200 {
		t.Fatalf("secret after restart: %d %v", r.status, r.body)
	}
}

func TestPerClientTokenLifetime(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}, TokenLifetime: 2 * time.Minute})
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
	if r.body["expires_in"] != float64(120) {
		t.Fatalf("expires_in = %v", r.body["expires_in"])
	}
	// A client created when tokens.max_lifetime was longer: the endpoint
	// still caps its tokens.
	if _, _, err := ti.admin.CreateClient(operatorContext(), tokenissuer.NewClient{Scopes: []string{"a"}, TokenLifetime: 48 * time.Hour}); err == nil {
		t.Fatal("created a client whose tokens would outlive tokens.max_lifetime")
	}
	uncapped := tokenissuer.NewAdmin(ti.store, ti.hasher, ti.clock, tokenissuer.AdminLimits{})
	long, longSecret, err := uncapped.CreateClient(operatorContext(), tokenissuer.NewClient{Scopes: []string{"a"}, TokenLifetime: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r = postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(long.ID, longSecret))
	if r.body["expires_in"] != float64(3600) {
		t.Fatalf("lifetime above tokens.max_lifetime: expires_in = %v", r.body["expires_in"])
	}
}

// TestTheIssuersVerifierAcceptsOneSpellingOfAToken: the admin API, the
// revocation endpoint and the feed verify this issuer's tokens as authz
// does, refusing spellings of a valid token that are not canonical.
func TestTheIssuersVerifierAcceptsOneSpellingOfAToken(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	_, secret := ti.createClient(tokenissuer.NewClient{ID: "app", Scopes: []string{"a"}})
	tok := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic("app", secret)).body["access_token"].(string)
	if _, err := ti.keys.VerifyAccessToken(tok, ti.cfg.Issuer, ti.clock.Now()); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	// A signature of 64 bytes (EdDSA) ends in a character with unused bits:
	// flipping them spells the same bytes another way.
	sig := []byte(parts[2])
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	sig[len(sig)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1]
	for name, spelling := range map[string]string{
		"padded payload":      parts[0] + "." + parts[1] + "=." + parts[2],
		"a line break inside": parts[0] + "." + parts[1][:5] + "\n" + parts[1][5:] + "." + parts[2],
		"unused bits set":     parts[0] + "." + parts[1] + "." + string(sig),
		"standard alphabet":   parts[0] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[1]) + "." + parts[2],
	} {
		if spelling == tok {
			continue // this token's bytes left nothing to change
		}
		if _, err := ti.keys.VerifyAccessToken(spelling, ti.cfg.Issuer, ti.clock.Now()); !errors.Is(err, keys.ErrInvalidAccessToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
