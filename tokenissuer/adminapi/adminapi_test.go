package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/adminapi"
	"github.com/portcullis/portcullis/tokenissuer/server"
)

// env is a real issuer on loopback, with its admin API on its own listener.
type env struct {
	t       *testing.T
	router  routers.Router
	srv     *server.Server
	public  string
	admin   string
	operate *tokenissuer.Admin
}

func start(t *testing.T) *env { return startOn(t, "sqlite") }

// startOn is start on a store driver: sqlite, or postgres (a fresh
// database on the test server).
func startOn(t *testing.T, driver string) *env { return startWith(t, driver, nil) }

// startWith is startOn with prepare called on the server before it runs.
func startWith(t *testing.T, driver string, prepare func(*server.Server)) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store.SQLitePath, cfg.Store.SecretHashKeyFile = filepath.Join(dir, "issuer.db"), filepath.Join(dir, "hash.key")
	if driver == "postgres" {
		cfg.Store.Driver, cfg.Store.PostgresDSN = "postgres", pgtest.FreshDatabase(t)
		cfg.Store.SecretHashKey = "dGVzdC1vbmx5LXNlY3JldC1oYXNoLWtleS0zMi1ieXRlcyE" // for tests only
		cfg.Keys.EncryptionKey = "dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI"      // for tests only
	}
	cfg.ClientCacheTTL = 0 // each request sees the last change
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The issuer's URL names its own listener, so it must be known first.
	srv, err := server.NewServer(context.Background(), cfg, tokenissuer.SystemClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	doc, err := adminapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: "http://admin.test/admin/v1"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, router: router, srv: srv, public: "http://" + srv.Addr().String(), admin: "http://" + srv.AdminAddr().String(),
		operate: srv.Admin()}
	return e
}

// token gets an access token at the token endpoint, as a client would.
func (e *env) token(id, secret string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	resp, err := http.PostForm(e.public+"/oauth2/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (e *env) mustToken(id, secret string) string {
	e.t.Helper()
	status, body := e.token(id, secret)
	if status != http.StatusOK {
		e.t.Fatalf("token for %s: %d %v", id, status, body)
	}
	return body["access_token"].(string)
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) call(method, path, token, body string) reply {
	e.t.Helper()
	return e.callIf(method, path, token, body, "")
}

// problemType asserts an RFC 9457 answer and returns its type.
func (r reply) problemType(t *testing.T) string {
	t.Helper()
	if r.header.Get("Content-Type") != "application/problem+json" || r.body["status"] != float64(r.status) || r.body["title"] == nil {
		t.Fatalf("not a problem answer: %d %v %s", r.status, r.header, r.raw)
	}
	return strings.TrimPrefix(r.body["type"].(string), "urn:portcullis:problem:")
}

// TestTenantAutomationManagesItsOwnClients walks the admin API as a
// business's automation would, with a token of its own tenant.
func TestTenantAutomationManagesItsOwnClients(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			testTenantAutomation(t, startOn(t, driver))
		})
	}
}

func testTenantAutomation(t *testing.T, e *env) {
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:ops"})
	for id, ceiling := range map[string][]string{"acme": {"accounts:read", "accounts:write", adminapi.ScopeManageClients}, "globex": {"accounts:read"}} {
		if _, err := e.operate.CreateTenant(ops, tokenissuer.NewTenant{ID: id, Name: id, ScopeCeiling: ceiling}); err != nil {
			t.Fatal(err)
		}
	}
	_, botSecret, err := e.operate.CreateClient(ops, tokenissuer.NewClient{ID: "acme-bot", TenantID: "acme", Scopes: []string{adminapi.ScopeManageClients}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.operate.CreateClient(ops, tokenissuer.NewClient{ID: "globex-app", TenantID: "globex", Scopes: []string{"accounts:read"}}); err != nil {
		t.Fatal(err)
	}
	bot := e.mustToken("acme-bot", botSecret)

	// Create a client: the secret is in this answer only, and it works.
	// The issuer chooses the ID of a tenant's client.
	created := e.call("POST", "/admin/v1/clients", bot, `{"name":"Billing","scopes":["accounts:read"]}`)
	billingID, _ := created.body["client_id"].(string)
	if created.status != http.StatusCreated || created.body["client_secret"] == nil || created.body["tenant_id"] != "acme" || billingID == "" || created.header.Get("Location") != "/admin/v1/clients/"+billingID {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	secret := created.body["client_secret"].(string)
	billing := e.mustToken(billingID, secret)
	if got := e.call("GET", "/admin/v1/clients/"+billingID, bot, ""); got.status != 200 || got.body["client_secret"] != nil || strings.Contains(got.raw, secret) {
		t.Fatalf("get shows the secret or fails: %d %s", got.status, got.raw)
	}

	// Only its own tenant exists for it.
	list := e.call("GET", "/admin/v1/clients", bot, "")
	if list.status != 200 || strings.Contains(list.raw, "globex-app") || !strings.Contains(list.raw, billingID) {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/admin/v1/clients/globex-app"}, {"DELETE", "/admin/v1/clients/globex-app"},
		{"POST", "/admin/v1/clients/globex-app/rotate-secret"}, {"POST", "/admin/v1/clients/globex-app/disable"},
		{"POST", "/admin/v1/clients/globex-app/revoke-tokens"}, {"GET", "/admin/v1/clients/no-such-client"},
	} {
		if r := e.call(c.method, c.path, bot, ""); r.status != 404 || r.problemType(t) != "not-found" {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.status, r.raw)
		}
	}

	// Rotation: both secrets work until the old one is revoked.
	rotated := e.call("POST", "/admin/v1/clients/"+billingID+"/rotate-secret", bot, "")
	if rotated.status != 200 || rotated.body["client_secret"] == nil {
		t.Fatalf("rotate: %d %s", rotated.status, rotated.raw)
	}
	newSecret := rotated.body["client_secret"].(string)
	e.mustToken(billingID, secret)
	e.mustToken(billingID, newSecret)
	if r := e.call("POST", "/admin/v1/clients/"+billingID+"/revoke-secret", bot, ""); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if status, _ := e.token(billingID, secret); status != http.StatusUnauthorized {
		t.Fatalf("revoked secret: %d", status)
	}
	e.mustToken(billingID, newSecret)

	// What a tenant may not do.
	for body, want := range map[string]string{
		`{"name":"x","scopes":["portcullis.admin"]}`:            "forbidden",
		`{"name":"x","scopes":["transactions:read"]}`:           "invalid-request",
		`{"name":"x","scopes":["accounts:read"],"oops":1}`:      "invalid-request",
		`{"name":"x","tenant_id":"globex","scopes":[]}`:         "not-found",
		`{"client_id":"globex-app","scopes":["accounts:read"]}`: "invalid-request", // not "conflict": IDs tell nothing of other tenants
	} {
		if r := e.call("POST", "/admin/v1/clients", bot, body); r.problemType(t) != want {
			t.Errorf("%s: %d %s, want %s", body, r.status, r.raw, want)
		}
	}
	if r := e.call("POST", "/admin/v1/clients", bot, `{"name":"`+strings.Repeat("x", 70<<10)+`"}`); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", r.status)
	}
	if r := e.call("GET", "/admin/v1/clients", "", ""); r.status != 401 || r.header.Get("WWW-Authenticate") == "" || r.problemType(t) != "unauthorized" {
		t.Errorf("no token: %d %v", r.status, r.header)
	}
	if r := e.call("GET", "/admin/v1/clients", billing, ""); r.status != 403 || r.problemType(t) != "forbidden" {
		t.Errorf("a token without the admin scopes: %d %s", r.status, r.raw)
	}
	if r := e.call("GET", "/admin/v1/clients", bot+"x", ""); r.status != 401 {
		t.Errorf("a forged token: %d", r.status)
	}

	// A disabled client, and a disabled tenant, get no token.
	if r := e.call("POST", "/admin/v1/clients/"+billingID+"/disable", bot, ""); r.status != 200 || r.body["status"] != "disabled" {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	if status, _ := e.token(billingID, newSecret); status != http.StatusBadRequest {
		t.Fatalf("disabled client: %d", status)
	}
	e.call("POST", "/admin/v1/clients/"+billingID+"/enable", bot, "")
	e.mustToken(billingID, newSecret)

	// Every change is in the tenant's audit trail, by the automation, with
	// no secret.
	audit := e.call("GET", "/admin/v1/audit", bot, "")
	if audit.status != 200 {
		t.Fatalf("audit: %d %s", audit.status, audit.raw)
	}
	var actions []string
	for _, rec := range audit.body["records"].([]any) {
		r := rec.(map[string]any)
		if r["tenant_id"] != "acme" {
			t.Errorf("another tenant's record: %v", r)
		}
		if strings.HasPrefix(r["action"].(string), "client.") && r["target_id"] == billingID {
			actions = append(actions, r["action"].(string))
			if r["actor"] != "client:acme-bot" || r["address"] != "127.0.0.1" {
				t.Errorf("actor %v from %v", r["actor"], r["address"])
			}
		}
	}
	if strings.Contains(audit.raw, secret) || strings.Contains(audit.raw, newSecret) {
		t.Fatal("the audit trail holds a secret")
	}
	// since and until bound the records by time; a time that is not RFC
	// 3339 is a 400, not ignored.
	count := func(query string) int {
		t.Helper()
		r := e.call("GET", "/admin/v1/audit?"+query, bot, "")
		if r.status != 200 {
			t.Fatalf("audit?%s: %d %s", query, r.status, r.raw)
		}
		return len(r.body["records"].([]any))
	}
	hourAgo, inAnHour := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if all, recent, future, past := len(audit.body["records"].([]any)), count("since="+hourAgo), count("since="+inAnHour), count("until="+hourAgo); recent != all || future != 0 || past != 0 {
		t.Fatalf("all %d, since an hour ago %d, since in an hour %d, until an hour ago %d", all, recent, future, past)
	}
	if r := e.call("GET", "/admin/v1/audit?since=yesterday", bot, ""); r.status != http.StatusBadRequest {
		t.Fatalf("since=yesterday: %d %s", r.status, r.raw)
	}
	// The portal's filters: by action or kind of action, newest first.
	if n := count("action=client.rotate_secret&target=" + billingID); n != 1 {
		t.Fatalf("one action: %d records", n)
	}
	if n := count("action=client.&target=" + billingID); n != len(actions) {
		t.Fatalf("a kind of action: %d records, want %d", n, len(actions))
	}
	newest := e.call("GET", "/admin/v1/audit?order=newest&limit=2&action=client.&target="+billingID, bot, "")
	page := newest.body["records"].([]any)
	older := e.call("GET", fmt.Sprintf("/admin/v1/audit?order=newest&limit=2&action=client.&target=%s&before=%v", billingID, newest.body["next_before"]), bot, "")
	if len(page) != 2 || page[0].(map[string]any)["action"] != "client.enable" || page[1].(map[string]any)["action"] != "client.disable" ||
		older.body["records"].([]any)[0].(map[string]any)["action"] != "client.revoke_secret" {
		t.Fatalf("newest first: %s then %s", newest.raw, older.raw)
	}
	for _, bad := range []string{"order=sideways", "action=client%25", "before=x"} {
		if r := e.call("GET", "/admin/v1/audit?"+bad, bot, ""); r.status != http.StatusBadRequest {
			t.Errorf("audit?%s: %d, want 400", bad, r.status)
		}
	}
	if got := strings.Join(actions, " "); got != "client.create client.rotate_secret client.revoke_secret client.disable client.enable" {
		t.Fatalf("audited: %s", got)
	}

	// A leaked secret: revoke it and every token the client holds.
	again := e.call("POST", "/admin/v1/clients/"+billingID+"/rotate-secret", bot, "")
	if again.status != 200 {
		t.Fatalf("rotate again: %d %s", again.status, again.raw)
	}
	if r := e.call("POST", "/admin/v1/clients/"+billingID+"/revoke-secret", bot, `{"revoke_tokens":true}`); r.status != 200 {
		t.Fatalf("revoke with tokens: %d %s", r.status, r.raw)
	}
	if r := e.call("POST", "/admin/v1/clients/"+billingID+"/revoke-tokens", bot, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoke tokens: %d %s", r.status, r.raw)
	}
	records, err := e.operate.Audit(tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true}), tokenissuer.AuditQuery{TargetID: billingID})
	if err != nil {
		t.Fatal(err)
	}
	revocations := 0
	for _, rec := range records {
		if rec.Action == "revocation.client" {
			revocations++
		}
	}
	if revocations != 3 { // the disable above, revoke_tokens, revoke-tokens
		t.Fatalf("%d client revocations audited, want 3", revocations)
	}

	if r := e.call("PATCH", "/admin/v1/clients/"+billingID, bot, `{"name":"Billing (EU)"}`); r.status != 200 || r.body["name"] != "Billing (EU)" {
		t.Fatalf("rename: %d %s", r.status, r.raw)
	}
	if r := e.call("DELETE", "/admin/v1/clients/"+billingID, bot, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if status, _ := e.token(billingID, newSecret); status != http.StatusUnauthorized {
		t.Fatalf("deleted client: %d", status)
	}
}

// TestOperatorsSeeEveryTenant: portcullis.admin is not bound to a tenant.
func TestOperatorsSeeEveryTenant(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
	e.operate.CreateTenant(ctx, tokenissuer.NewTenant{ID: "globex", ScopeCeiling: []string{"accounts:read"}})
	e.operate.CreateClient(ctx, tokenissuer.NewClient{ID: "globex-app", TenantID: "globex", Scopes: []string{"accounts:read"}})
	_, opsSecret, err := e.operate.CreateClient(ctx, tokenissuer.NewClient{ID: "platform-ops", Scopes: []string{adminapi.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	ops := e.mustToken("platform-ops", opsSecret)
	resp, err := http.Get(e.admin + "/admin/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if resp.StatusCode != 200 || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d %v", resp.StatusCode, doc["openapi"])
	}
	if r := e.call("GET", "/admin/v1/clients/globex-app", ops, ""); r.status != 200 {
		t.Fatalf("operator: %d %s", r.status, r.raw)
	}
	if r := e.call("GET", "/admin/v1/clients?tenant_id=globex", ops, ""); r.status != 200 || strings.Contains(r.raw, "platform-ops") {
		t.Fatalf("filtered list: %d %s", r.status, r.raw)
	}
	created := e.call("POST", "/admin/v1/clients", ops, `{"name":"a","tenant_id":"globex","scopes":["accounts:read"]}`)
	if created.status != 201 || created.body["tenant_id"] != "globex" {
		t.Fatalf("operator creates in a tenant: %d %s", created.status, created.raw)
	}
}

// callIf sends a request to the admin API (with If-Match when set), and
// checks the request and the answer against the OpenAPI document: every
// request the tests make, and every answer, keep the document true.
func (e *env) callIf(method, path, token, body, ifMatch string) reply {
	e.t.Helper()
	return e.send(method, path, token, body, map[string]string{"If-Match": ifMatch})
}

// send is callIf with any extra headers (empty values are not sent).
func (e *env) send(method, path, token, body string, extra map[string]string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.admin+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for name, v := range extra {
		if v != "" {
			req.Header.Set(name, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	e.conforms(method, path, body, req.Header, resp, raw)
	return r
}

// conforms validates one exchange against the OpenAPI document. A request
// the server refused as malformed (400 invalid-request, 413) may break the
// document: sending such requests is the point of those tests.
func (e *env) conforms(method, path, body string, header http.Header, resp *http.Response, respBody []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, "http://admin.test/admin/v1"+strings.TrimPrefix(path, "/admin/v1"), strings.NewReader(body))
	req.Header = header.Clone()
	route, params, err := e.router.FindRoute(req)
	if err != nil {
		e.t.Errorf("%s %s is not in the OpenAPI document: %v", method, path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
	refusedAsMalformed := resp.StatusCode == http.StatusRequestEntityTooLarge ||
		(resp.StatusCode == http.StatusBadRequest && strings.Contains(string(respBody), "invalid-request"))
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && !refusedAsMalformed {
		e.t.Errorf("%s %s: the request breaks the OpenAPI document: %v", method, path, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: in.Options}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		e.t.Errorf("%s %s: the %d answer breaks the OpenAPI document: %v", method, path, resp.StatusCode, err)
	}
}

func (e *env) operator() string {
	e.t.Helper()
	_, secret, err := e.operate.CreateClient(tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true}), tokenissuer.NewClient{ID: "platform-ops", Scopes: []string{adminapi.ScopeAdmin}})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.mustToken("platform-ops", secret)
}

// TestConcurrentUpdatesWithOneETag: of writers that read the same version,
// exactly one wins; the others get 412 instead of overwriting it.
func TestConcurrentUpdatesWithOneETag(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			testConcurrentUpdates(t, startOn(t, driver))
		})
	}
}

func testConcurrentUpdates(t *testing.T, e *env) {
	ops := e.operator()
	e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","name":"Acme","scope_ceiling":["a","b","c"]}`)
	created := e.call("POST", "/admin/v1/clients", ops, `{"client_id":"app","tenant_id":"acme","scopes":["a"]}`)
	tag := created.header.Get("ETag")
	if created.status != 201 || tag == "" {
		t.Fatalf("create: %d %v", created.status, created.header)
	}
	if got := e.call("GET", "/admin/v1/clients/app", ops, ""); got.header.Get("ETag") != tag {
		t.Fatalf("GET ETag %q, create said %q", got.header.Get("ETag"), tag)
	}
	const writers = 8
	statuses := make(chan int, writers)
	for i := 0; i < writers; i++ {
		scope := []string{"a", "b", "c"}[i%3]
		go func() {
			statuses <- e.callIf("PUT", "/admin/v1/clients/app/scopes", ops, `{"scopes":["`+scope+`"]}`, tag).status
		}()
	}
	won, refused := 0, 0
	for i := 0; i < writers; i++ {
		switch s := <-statuses; s {
		case http.StatusOK:
			won++
		case http.StatusPreconditionFailed:
			refused++
		default:
			t.Errorf("status %d", s)
		}
	}
	if won != 1 || refused != writers-1 {
		t.Fatalf("%d won, %d refused; want exactly one winner", won, refused)
	}
	if r := e.callIf("POST", "/admin/v1/clients/app/disable", ops, "", tag); r.status != http.StatusPreconditionFailed || r.problemType(t) != "precondition-failed" {
		t.Fatalf("a stale ETag: %d %s", r.status, r.raw)
	}
	fresh := e.call("GET", "/admin/v1/clients/app", ops, "").header.Get("ETag")
	// If-Match compares strongly: the current tag made weak is refused.
	if r := e.callIf("POST", "/admin/v1/clients/app/disable", ops, "", "W/"+fresh); r.status != http.StatusPreconditionFailed {
		t.Fatalf("a weak ETag: %d %s", r.status, r.raw)
	}
	if r := e.callIf("POST", "/admin/v1/clients/app/disable", ops, "", fresh); r.status != 200 || r.header.Get("ETag") == fresh {
		t.Fatalf("the current ETag: %d, new ETag %q", r.status, r.header.Get("ETag"))
	}

	// A change and a delete with one ETag: never both. The delete compares
	// the version inside its transaction, not before it.
	for round := range 20 {
		id := fmt.Sprint("race-", round)
		r := e.call("POST", "/admin/v1/clients", ops, `{"client_id":"`+id+`","tenant_id":"acme","scopes":["a"]}`)
		tag := r.header.Get("ETag")
		results := make(chan int, 2)
		go func() {
			results <- e.callIf("PUT", "/admin/v1/clients/"+id+"/scopes", ops, `{"scopes":["b"]}`, tag).status
		}()
		go func() { results <- e.callIf("DELETE", "/admin/v1/clients/"+id, ops, "", tag).status }()
		a, b := <-results, <-results
		won := 0
		for _, s := range []int{a, b} {
			if s == http.StatusOK || s == http.StatusNoContent {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("round %d: a change and a delete with one ETag answered %d and %d", round, a, b)
		}
	}
}

// TestOperatorsManageTenantsAndKeys: tenants and keys are for operators; a
// tenant's caller reads its own tenant only.
func TestOperatorsManageTenantsAndKeys(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	if r := e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","name":"Acme","scope_ceiling":["accounts:read","portcullis.clients:manage"]}`); r.status != 201 || r.body["scope_ceiling"] == nil {
		t.Fatalf("create tenant: %d %s", r.status, r.raw)
	}
	e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"globex","name":"Globex","scope_ceiling":["accounts:read"]}`)
	bot := e.call("POST", "/admin/v1/clients", ops, `{"client_id":"acme-bot","tenant_id":"acme","scopes":["portcullis.clients:manage"]}`)
	botToken := e.mustToken("acme-bot", bot.body["client_secret"].(string))
	app := e.call("POST", "/admin/v1/clients", ops, `{"client_id":"acme-app","tenant_id":"acme","scopes":["accounts:read"]}`)
	appSecret := app.body["client_secret"].(string)

	if r := e.call("GET", "/admin/v1/tenants/acme", botToken, ""); r.status != 200 || r.body["name"] != "Acme" {
		t.Fatalf("own tenant: %d %s", r.status, r.raw)
	}
	if r := e.call("GET", "/admin/v1/tenants/globex", botToken, ""); r.status != 404 {
		t.Fatalf("another tenant: %d", r.status)
	}
	if r := e.call("GET", "/admin/v1/tenants", botToken, ""); r.status != 200 || strings.Contains(r.raw, "globex") || !strings.Contains(r.raw, `"acme"`) {
		t.Fatalf("a tenant's list of tenants is its own: %d %s", r.status, r.raw)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/v1/tenants", `{"tenant_id":"x"}`},
		{"POST", "/admin/v1/tenants/acme/disable", ""}, {"GET", "/admin/v1/keys", ""}, {"POST", "/admin/v1/keys/rotate", ""},
	} {
		if r := e.call(c.method, c.path, botToken, c.body); r.status != 403 || r.problemType(t) != "forbidden" {
			t.Errorf("tenant caller %s %s: %d", c.method, c.path, r.status)
		}
	}

	// Narrowing below a client is a conflict naming it, unless forced.
	if r := e.call("PUT", "/admin/v1/tenants/acme/scope-ceiling", ops, `{"scope_ceiling":["portcullis.clients:manage"]}`); r.status != 409 || !strings.Contains(r.raw, "acme-app") {
		t.Fatalf("narrowing: %d %s", r.status, r.raw)
	}
	if r := e.call("PATCH", "/admin/v1/tenants/acme", ops, `{"name":"Acme Corp"}`); r.status != 200 || r.body["name"] != "Acme Corp" {
		t.Fatalf("rename: %d %s", r.status, r.raw)
	}
	// A disabled tenant's clients get no token.
	if r := e.call("POST", "/admin/v1/tenants/acme/disable", ops, ""); r.status != 200 || r.body["status"] != "disabled" {
		t.Fatalf("disable tenant: %d %s", r.status, r.raw)
	}
	if status, body := e.token("acme-app", appSecret); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
		t.Fatalf("disabled tenant's client: %d %v", status, body)
	}

	keys := e.call("GET", "/admin/v1/keys", ops, "")
	rotated := e.call("POST", "/admin/v1/keys/rotate", ops, "")
	if keys.status != 200 || rotated.status != 200 || len(rotated.body["keys"].([]any)) != len(keys.body["keys"].([]any))+1 {
		t.Fatalf("keys: %d %s, then %d %s", keys.status, keys.raw, rotated.status, rotated.raw)
	}
	audit := e.call("GET", "/admin/v1/audit?target=", ops, "")
	for _, action := range []string{"tenant.create", "tenant.rename", "tenant.disable", "key.rotate"} {
		if !strings.Contains(audit.raw, `"action":"`+action+`"`) {
			t.Errorf("%s is not in the audit trail", action)
		}
	}
}

// TestRetriedChangesWithAnIdempotencyKeyHappenOnce: a retried create or
// rotation gets the first outcome (without a secret) instead of a second
// client, secret or key.
func TestRetriedChangesWithAnIdempotencyKeyHappenOnce(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			testRetriedChanges(t, startOn(t, driver))
		})
	}
}

func testRetriedChanges(t *testing.T, e *env) {
	ops := e.operator()
	key := map[string]string{"Idempotency-Key": "create-acme-1"}
	first := e.send("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","scope_ceiling":["a"]}`, key)
	again := e.send("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","scope_ceiling":["a"]}`, key)
	if first.status != 201 || again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || again.body["tenant_id"] != "acme" {
		t.Fatalf("retried tenant create: %d, then %d %v %s", first.status, again.status, again.header, again.raw)
	}

	key = map[string]string{"Idempotency-Key": "create-app-1"}
	created := e.send("POST", "/admin/v1/clients", ops, `{"name":"App","tenant_id":"acme","scopes":["a"]}`, key)
	retried := e.send("POST", "/admin/v1/clients", ops, `{"name":"App","tenant_id":"acme","scopes":["a"]}`, key)
	if created.status != 201 || retried.status != 201 || retried.body["client_id"] != created.body["client_id"] || retried.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried create: %s, then %d %s", created.raw, retried.status, retried.raw)
	}
	if retried.body["client_secret"] != nil {
		t.Fatal("a replayed answer carries a secret")
	}
	if list := e.call("GET", "/admin/v1/clients?tenant_id=acme", ops, ""); len(list.body["clients"].([]any)) != 1 {
		t.Fatalf("a retried create made %d clients", len(list.body["clients"].([]any)))
	}
	if r := e.send("POST", "/admin/v1/clients", ops, `{"name":"Other","tenant_id":"acme","scopes":["a"]}`, key); r.status != 422 || r.problemType(t) != "idempotency-key-reused" {
		t.Fatalf("the key with another request: %d %s", r.status, r.raw)
	}

	id := created.body["client_id"].(string)
	rotate := map[string]string{"Idempotency-Key": "rotate-1"}
	r1 := e.send("POST", "/admin/v1/clients/"+id+"/rotate-secret", ops, "", rotate)
	r2 := e.send("POST", "/admin/v1/clients/"+id+"/rotate-secret", ops, "", rotate)
	if r1.status != 200 || r1.body["client_secret"] == nil || r2.status != 200 || r2.body["client_secret"] != nil || len(r2.body["secrets"].([]any)) != 2 {
		t.Fatalf("retried rotation: %d %s, then %d %s", r1.status, r1.raw, r2.status, r2.raw)
	}

	before := len(e.call("GET", "/admin/v1/keys", ops, "").body["keys"].([]any))
	keys := map[string]string{"Idempotency-Key": "rotate-keys-1"}
	e.send("POST", "/admin/v1/keys/rotate", ops, "", keys)
	e.send("POST", "/admin/v1/keys/rotate", ops, "", keys)
	if after := len(e.call("GET", "/admin/v1/keys", ops, "").body["keys"].([]any)); after != before+1 {
		t.Fatalf("a retried key rotation: %d keys, then %d", before, after)
	}
	// A failed request does not use its key up.
	fail := map[string]string{"Idempotency-Key": "bad-1"}
	if r := e.send("POST", "/admin/v1/clients", ops, `{"name":"x","tenant_id":"acme","scopes":["zzz"]}`, fail); r.status != 400 {
		t.Fatalf("a refused create: %d", r.status)
	}
	if r := e.send("POST", "/admin/v1/clients", ops, `{"name":"x","tenant_id":"acme","scopes":["zzz"]}`, fail); r.status != 400 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a refused create is not replayed: %d %v", r.status, r.header)
	}
}

func TestClientListIsPaged(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","scope_ceiling":["a"]}`)
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
		e.call("POST", "/admin/v1/clients", ops, `{"client_id":"`+id+`","tenant_id":"acme","scopes":["a"]}`)
	}
	var seen []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		r := e.call("GET", "/admin/v1/clients?tenant_id=acme&limit=2&after="+after, ops, "")
		for _, c := range r.body["clients"].([]any) {
			seen = append(seen, c.(map[string]any)["client_id"].(string))
		}
		next, more := r.body["next_after"].(string)
		if !more {
			break
		}
		after = next
	}
	if got := strings.Join(seen, " "); got != "c1 c2 c3 c4 c5" {
		t.Fatalf("pages gave %s", got)
	}
	if r := e.call("GET", "/admin/v1/clients?limit=0", ops, ""); r.status != 400 {
		t.Fatalf("limit 0: %d", r.status)
	}
}

// TestBodiesAreReadStrictly: member names exactly as documented, once each,
// nothing unknown and nothing after the object; problems are told in the
// API's terms (JSON pointers and kinds), never its Go types.
func TestBodiesAreReadStrictly(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","name":"Acme","scope_ceiling":["a","b"]}`)
	for body, want := range map[string]string{
		`{"client_id":"x1","tenant_id":"acme","scopes":["a"],"scopes":["b"]}`: `member "scopes" appears more than once`,
		`{"client_id":"x2","tenant_id":"acme","Scopes":["a"]}`:                `unknown member "Scopes"`,
		`{"client_id":"x3","tenant_id":"acme","scopes":["a"],"admin":true}`:   `unknown member "admin"`,
		`{"client_id":"x4","tenant_id":"acme","scopes":["a"]} {}`:             `invalid JSON`,
		`{"client_id":"x5","tenant_id":"acme","scopes":"a"}`:                  `/scopes must be an array of strings`,
	} {
		r := e.call("POST", "/admin/v1/clients", ops, body)
		if detail, _ := r.body["detail"].(string); r.status != http.StatusBadRequest || !strings.Contains(detail, want) {
			t.Errorf("%s: %d %s, want 400 saying %s", body, r.status, r.raw, want)
		}
		if strings.Contains(r.raw, "Request") || strings.Contains(r.raw, "[]string") || strings.Contains(r.raw, "Go ") {
			t.Errorf("%s: the problem names Go types: %s", body, r.raw)
		}
	}
	if r := e.call("GET", "/admin/v1/clients/x1", ops, ""); r.status != http.StatusNotFound {
		t.Fatalf("a refused body created a client: %d", r.status)
	}
}

// TestAuthorityIsReadWhenUsed: a token's admin rights are its client's now.
// Removing the scope, disabling the client or its tenant takes effect at the
// next call, not when the token expires.
func TestAuthorityIsReadWhenUsed(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{ID: "cli:test", Operator: true})
	if _, err := e.operate.CreateTenant(ops, tokenissuer.NewTenant{ID: "acme", ScopeCeiling: []string{"accounts:read", adminapi.ScopeManageClients}}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.operate.CreateClient(ops, tokenissuer.NewClient{ID: "acme-bot", TenantID: "acme", Scopes: []string{adminapi.ScopeManageClients}})
	if err != nil {
		t.Fatal(err)
	}
	token := e.mustToken("acme-bot", secret)
	if r := e.call("GET", "/admin/v1/clients", token, ""); r.status != http.StatusOK {
		t.Fatalf("before: %d %s", r.status, r.raw)
	}
	if _, err := e.operate.SetScopes(ops, "acme-bot", []string{"accounts:read"}); err != nil {
		t.Fatal(err)
	}
	if r := e.call("GET", "/admin/v1/clients", token, ""); r.status != http.StatusForbidden {
		t.Fatalf("after the scope was removed: %d %s", r.status, r.raw)
	}
	if _, err := e.operate.SetScopes(ops, "acme-bot", []string{adminapi.ScopeManageClients}); err != nil {
		t.Fatal(err)
	}
	if r := e.call("GET", "/admin/v1/clients", token, ""); r.status != http.StatusOK {
		t.Fatalf("the scope given back: %d %s", r.status, r.raw)
	}
	if _, err := e.operate.SetTenantStatus(ops, "acme", tokenissuer.TenantDisabled); err != nil {
		t.Fatal(err)
	}
	if r := e.call("GET", "/admin/v1/clients", token, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("after the tenant was disabled: %d %s", r.status, r.raw)
	}
}

// TestClientsShowTheirLastUse: a client's and each secret's last token, and
// each secret's last four characters, as the OpenAPI document describes.
func TestClientsShowTheirLastUse(t *testing.T) {
	t.Parallel()
	e := start(t)
	ops := e.operator()
	e.call("POST", "/admin/v1/tenants", ops, `{"tenant_id":"acme","scope_ceiling":["a"]}`)
	created := e.call("POST", "/admin/v1/clients", ops, `{"client_id":"used","tenant_id":"acme","scopes":["a"]}`)
	secret := created.body["client_secret"].(string)
	first := created.body["secrets"].([]any)[0].(map[string]any)
	if first["hint"] != secret[len(secret)-4:] || first["last_used_at"] != nil || created.body["last_used_at"] != nil {
		t.Fatalf("a new client: %s", created.raw)
	}
	e.mustToken("used", secret)
	if err := e.srv.Endpoints.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.call("GET", "/admin/v1/clients/used", ops, "")
	used, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r.body["last_used_at"]))
	if time.Since(used) > time.Minute || r.body["secrets"].([]any)[0].(map[string]any)["last_used_at"] != r.body["last_used_at"] {
		t.Fatalf("after a token: %s", r.raw)
	}
	if r.header.Get("ETag") != created.header.Get("ETag") {
		t.Fatal("a token changed the client's ETag: a use is not a change")
	}
}
