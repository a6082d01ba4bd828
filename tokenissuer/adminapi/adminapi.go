// Package adminapi is the issuer's admin HTTP API (/admin/v1/): a thin
// adapter over tokenissuer.Admin, where the rules and the audit trail live.
// Callers authenticate with this issuer's own access tokens: scope
// portcullis.clients:manage manages the token's tenant's clients only
// (another tenant's objects are 404, so their existence does not leak),
// portcullis.people:manage its people and invitations as its admin would,
// and portcullis.admin is for platform operators. Errors are RFC 9457 problem
// details.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
)

// The scopes of the admin API. Only an operator grants them (issuer clients
// create ... --scopes portcullis.admin); no caller can grant them through
// the API.
const (
	ScopeManageClients = "portcullis.clients:manage"
	ScopeAdmin         = "portcullis.admin"
)

// maxBody bounds a request body; a client description is a few hundred bytes.
const maxBody = 64 << 10

// TokenVerifier verifies this issuer's access tokens.
type TokenVerifier interface {
	VerifyAccessToken(token string) (keys.AccessToken, error)
}

// VerifierFunc adapts a function to TokenVerifier.
type VerifierFunc func(token string) (keys.AccessToken, error)

// VerifyAccessToken implements TokenVerifier.
func (f VerifierFunc) VerifyAccessToken(token string) (keys.AccessToken, error) {
	return f(token)
}

// API serves /admin/v1/. It reads and changes everything through Admin,
// which decides what the caller may see and do; the API only translates.
type API struct {
	admin  *tokenissuer.Admin
	store  tokenissuer.IdempotencyStore
	tokens TokenVerifier
	keys   *keys.Manager
	log    *slog.Logger
	// accounts and invitationURL serve the people endpoints (People).
	accounts      *tokenissuer.Accounts
	invitationURL func(token string) string
}

// New returns the admin API; store remembers idempotency keys.
func New(admin *tokenissuer.Admin, store tokenissuer.IdempotencyStore, tokens TokenVerifier, keys *keys.Manager, log *slog.Logger) *API {
	return &API{admin: admin, store: store, tokens: tokens, keys: keys, log: log}
}

// caller is who calls: a verified token, and whether it is an operator's.
type caller struct {
	token keys.AccessToken
	admin bool
}

type handler func(w http.ResponseWriter, r *http.Request, c caller) error

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string]handler{
		"GET /admin/v1/clients":                     a.listClients,
		"POST /admin/v1/clients":                    a.idempotent(a.createClient, a.replayClient),
		"GET /admin/v1/clients/{id}":                a.getClient,
		"PATCH /admin/v1/clients/{id}":              a.renameClient,
		"DELETE /admin/v1/clients/{id}":             a.deleteClient,
		"POST /admin/v1/clients/{id}/rotate-secret": a.idempotent(a.rotateSecret, a.replayClient),
		"POST /admin/v1/clients/{id}/revoke-secret": a.revokeSecret,
		"POST /admin/v1/clients/{id}/revoke-tokens": a.revokeTokens,
		"POST /admin/v1/clients/{id}/disable":       a.setStatus(tokenissuer.ClientDisabled),
		"POST /admin/v1/clients/{id}/enable":        a.setStatus(tokenissuer.ClientActive),
		"PUT /admin/v1/clients/{id}/scopes":         a.setScopes,
		"PUT /admin/v1/clients/{id}/keys":           a.setKeys,
		"GET /admin/v1/audit":                       a.listAudit,
		"GET /admin/v1/tenants":                     a.listTenants,
		"POST /admin/v1/tenants":                    a.idempotent(a.createTenant, a.replayTenant),
		"GET /admin/v1/tenants/{id}":                a.getTenant,
		"PATCH /admin/v1/tenants/{id}":              a.renameTenant,
		"DELETE /admin/v1/tenants/{id}":             a.deleteTenant,
		"PUT /admin/v1/tenants/{id}/scope-ceiling":  a.setCeiling,
		"POST /admin/v1/tenants/{id}/disable":       a.setTenantStatus(tokenissuer.TenantDisabled),
		"POST /admin/v1/tenants/{id}/enable":        a.setTenantStatus(tokenissuer.TenantActive),
		"GET /admin/v1/keys":                        a.listKeys,
		"POST /admin/v1/keys/rotate":                a.idempotent(a.rotateKeys, a.replayKeys),
	}
	for pattern, h := range routes {
		mux.Handle(pattern, a.authenticated(managingClients(h)))
	}
	people := map[string]handler{
		"GET /admin/v1/people":                 a.people(a.listPeople),
		"GET /admin/v1/people/{id}":            a.people(a.getPerson),
		"PUT /admin/v1/people/{id}/role":       a.people(a.setRole),
		"POST /admin/v1/people/{id}/disable":   a.people(a.setPersonStatus(tokenissuer.AccountDisabled)),
		"POST /admin/v1/people/{id}/enable":    a.people(a.setPersonStatus(tokenissuer.AccountActive)),
		"DELETE /admin/v1/people/{id}":         a.people(a.deletePerson),
		"GET /admin/v1/invitations":            a.people(a.listInvitations),
		"POST /admin/v1/invitations":           a.people(a.invite),
		"DELETE /admin/v1/invitations/{email}": a.people(a.revokeInvitation),
	}
	for pattern, h := range people {
		mux.Handle(pattern, a.authenticated(h))
	}
	if doc, err := openAPIHandler(); err == nil {
		mux.Handle("GET /admin/v1/openapi.json", doc)
	} else {
		a.log.Error("the admin API's OpenAPI document is broken", "err", err) // TestOpenAPIDocument keeps it whole
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problemNotFound.with("no such resource: "+r.Method+" "+r.URL.Path))
	})
	return mux
}

// managingClients refuses a tenant's token without
// portcullis.clients:manage (one that manages only people).
func managingClients(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error {
		if !c.admin && !c.token.HasScope(ScopeManageClients) {
			writeProblem(w, problemForbidden.with("the token needs scope "+ScopeManageClients+" or "+ScopeAdmin))
			return nil
		}
		return h(w, r, c)
	}
}

// authenticated verifies the bearer token, sets the audit actor, and turns
// the handler's error into a problem response.
func (a *API) authenticated(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, p := a.authenticate(r)
		if p != nil {
			writeProblem(w, p)
			return
		}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		actor := tokenissuer.Actor{ID: "client:" + c.token.ClientID, Address: host, Operator: c.admin}
		if !c.admin {
			actor.TenantID = c.token.TenantID
		}
		ctx := tokenissuer.WithActor(r.Context(), actor)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := h(w, r.WithContext(ctx), c); err != nil {
			p := problemFor(err)
			if p.Status >= 500 {
				a.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "client_id", c.token.ClientID, "err", err)
			}
			writeProblem(w, p)
		}
	})
}

func (a *API) authenticate(r *http.Request) (caller, *problem) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return caller{}, problemUnauthorized.with("send Authorization: Bearer <access token of this issuer>")
	}
	at, err := a.tokens.VerifyAccessToken(token)
	if err != nil {
		return caller{}, problemUnauthorized.with("the access token is not valid")
	}
	// What the token may do is what its client may do now, not when the
	// token was issued.
	if at, err = a.admin.CurrentGrant(r.Context(), at); errors.Is(err, tokenissuer.ErrAuthorityGone) {
		return caller{}, problemUnauthorized.with(err.Error())
	} else if err != nil {
		return caller{}, problemInternal.with("the request could not be completed; retry later")
	}
	c := caller{token: at, admin: at.HasScope(ScopeAdmin)}
	switch {
	case c.admin:
	case !at.HasScope(ScopeManageClients) && !at.HasScope(ScopeManagePeople):
		return caller{}, problemForbidden.with("the token needs scope " + ScopeManageClients + ", " + ScopeManagePeople + " or " + ScopeAdmin)
	case at.TenantID == "":
		return caller{}, problemForbidden.with("scopes " + ScopeManageClients + " and " + ScopeManagePeople + " manage the token's tenant, and this token has none")
	}
	return c, nil
}

// clientView is a client as the API shows it: never a hash.
type clientView struct {
	ClientID      string                   `json:"client_id"`
	Name          string                   `json:"name"`
	TenantID      string                   `json:"tenant_id,omitempty"`
	Scopes        []string                 `json:"scopes"`
	Status        tokenissuer.ClientStatus `json:"status"`
	TokenLifetime string                   `json:"token_lifetime,omitempty"`
	Secrets       []secretView             `json:"secrets"`
	CreatedAt     time.Time                `json:"created_at"`
	UpdatedAt     time.Time                `json:"updated_at"`
	// LastUsedAt is when the client last got a token (to within a minute);
	// absent when it never has.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Keys are its public keys for private_key_jwt, when it has any, and
	// when each (by kid) last got a token.
	Keys           *tokenissuer.ClientKeys `json:"keys,omitempty"`
	KeysLastUsedAt map[string]time.Time    `json:"key_last_used_at,omitempty"`
	// ClientSecret is set only in the answers of create and rotate-secret:
	// it is shown once and never stored.
	ClientSecret string `json:"client_secret,omitempty"`
}

type secretView struct {
	ID         string    `json:"id"`
	Hint       string    `json:"hint,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// writeClient answers with a client and its version as ETag.
func writeClient(w http.ResponseWriter, status int, v clientView, c *tokenissuer.Client) error {
	w.Header().Set("ETag", etag(tokenissuer.ClientVersion(c)))
	return writeJSON(w, status, v)
}

func viewOf(c *tokenissuer.Client) clientView {
	v := clientView{ClientID: c.ID, Name: c.Name, TenantID: c.TenantID, Scopes: c.Scopes, Status: c.Status,
		Secrets: []secretView{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, LastUsedAt: c.LastUsedAt}
	if c.Keys.Any() {
		keys := c.Keys
		v.Keys, v.KeysLastUsedAt = &keys, c.KeysLastUsedAt
	}
	if c.TokenLifetime > 0 {
		v.TokenLifetime = c.TokenLifetime.String()
	}
	for _, s := range c.Secrets {
		v.Secrets = append(v.Secrets, secretView{ID: s.ID, Hint: s.Hint, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt})
	}
	return v
}

// Client list pages: at most maxPage clients, 100 unless ?limit= says.
const (
	defaultPage = 100
	maxPage     = 500
)

// listClients lists the clients the caller may see, ordered by ID, a page
// at a time: ?after= continues after the last ID seen (next_after).
func (a *API) listClients(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	limit := defaultPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return &tokenissuer.InvalidError{Msg: fmt.Sprintf("limit must be between 1 and %d", maxPage)}
		}
		limit = n
	}
	// One more than the page tells whether another page follows.
	clients, err := a.admin.Clients(r.Context(), tokenissuer.ClientQuery{TenantID: q.Get("tenant_id"), After: q.Get("after"), Limit: limit + 1})
	if err != nil {
		return err
	}
	page := map[string]any{}
	out := []clientView{}
	for _, cl := range clients {
		if len(out) == limit {
			page["next_after"] = out[len(out)-1].ClientID
			break
		}
		out = append(out, viewOf(cl))
	}
	page["clients"] = out
	return writeJSON(w, http.StatusOK, page)
}

type createClientRequest struct {
	ID            string   `json:"client_id"`
	Name          string   `json:"name"`
	TenantID      string   `json:"tenant_id"`
	Scopes        []string `json:"scopes"`
	TokenLifetime string   `json:"token_lifetime"`
	clientKeysRequest
}

// clientKeysRequest are a client's public keys for private_key_jwt.
type clientKeysRequest struct {
	JWKS    jsontext.Value `json:"jwks,omitempty"`
	JWKSURI string         `json:"jwks_uri,omitempty"`
	Only    bool           `json:"private_key_jwt_only,omitempty"`
}

func (k clientKeysRequest) keys() tokenissuer.ClientKeys {
	return tokenissuer.ClientKeys{JWKS: json.RawMessage(k.JWKS), JWKSURI: k.JWKSURI, Only: k.Only}
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request, c caller) error {
	var req createClientRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	nc := tokenissuer.NewClient{ID: req.ID, Name: req.Name, TenantID: req.TenantID, Scopes: req.Scopes, Keys: req.keys()}
	if req.TokenLifetime != "" {
		d, err := time.ParseDuration(req.TokenLifetime)
		if err != nil {
			return &tokenissuer.InvalidError{Msg: fmt.Sprintf("token_lifetime %q is not a duration (e.g. 15m, 1h)", req.TokenLifetime)}
		}
		nc.TokenLifetime = d
	}
	cl, secret, err := a.admin.CreateClient(r.Context(), nc)
	if err != nil {
		return err
	}
	v := viewOf(cl)
	v.ClientSecret = secret
	w.Header().Set("Location", "/admin/v1/clients/"+cl.ID)
	return writeClient(w, http.StatusCreated, v, cl)
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request, c caller) error {
	cl, err := a.admin.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeClient(w, http.StatusOK, viewOf(cl), cl)
}

func (a *API) renameClient(w http.ResponseWriter, r *http.Request, c caller) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	cl, err := a.admin.RenameClient(withIfMatch(r), r.PathValue("id"), req.Name)
	if err != nil {
		return err
	}
	return writeClient(w, http.StatusOK, viewOf(cl), cl)
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := a.admin.DeleteClient(withIfMatch(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, c caller) error {
	cl, _, secret, err := a.admin.RotateSecret(withIfMatch(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	v := viewOf(cl)
	v.ClientSecret = secret
	return writeClient(w, http.StatusOK, v, cl)
}

func (a *API) revokeSecret(w http.ResponseWriter, r *http.Request, c caller) error {
	var req struct {
		SecretID string `json:"secret_id"`
		// RevokeTokens also revokes every token the client holds: for a
		// secret that leaked.
		RevokeTokens bool `json:"revoke_tokens"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	cl, err := a.admin.RevokeSecret(withIfMatch(r), r.PathValue("id"), req.SecretID)
	if err != nil {
		return err
	}
	if req.RevokeTokens {
		if err := a.admin.RevokeClientTokens(r.Context(), cl.ID); err != nil {
			return err
		}
	}
	return writeClient(w, http.StatusOK, viewOf(cl), cl)
}

// revokeTokens revokes every token the client holds now; authz refuses
// them within seconds. Tokens it gets afterwards work.
func (a *API) revokeTokens(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := a.admin.RevokeClientTokens(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) setStatus(status tokenissuer.ClientStatus) handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error {
		cl, err := a.admin.SetStatus(withIfMatch(r), r.PathValue("id"), status)
		if err != nil {
			return err
		}
		return writeClient(w, http.StatusOK, viewOf(cl), cl)
	}
}

func (a *API) setKeys(w http.ResponseWriter, r *http.Request, c caller) error {
	var req clientKeysRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	cl, err := a.admin.SetClientKeys(withIfMatch(r), r.PathValue("id"), req.keys())
	if err != nil {
		return err
	}
	return writeClient(w, http.StatusOK, viewOf(cl), cl)
}

func (a *API) setScopes(w http.ResponseWriter, r *http.Request, c caller) error {
	var req struct {
		Scopes []string `json:"scopes"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	cl, err := a.admin.SetScopes(withIfMatch(r), r.PathValue("id"), req.Scopes)
	if err != nil {
		return err
	}
	return writeClient(w, http.StatusOK, viewOf(cl), cl)
}

// listAudit lists the audit trail, of the caller's tenant only unless the
// caller is an operator; ?after= continues from the last seq seen.
// auditAction is an audit query's action: one, or a kind ending in a dot.
var auditAction = regexp.MustCompile(`^[a-z_]+\.[a-z_]*$`)

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	aq := tokenissuer.AuditQuery{TenantID: q.Get("tenant_id"), TargetID: q.Get("target"), Actor: q.Get("actor"), Action: q.Get("action")}
	switch q.Get("order") {
	case "", "oldest":
	case "newest":
		aq.Newest = true
	default:
		return &tokenissuer.InvalidError{Msg: "order must be oldest or newest"}
	}
	if aq.Action != "" && !auditAction.MatchString(aq.Action) {
		return &tokenissuer.InvalidError{Msg: "action must be an action such as client.set_scopes, or a kind such as client."}
	}
	for name, dst := range map[string]*int64{"after": &aq.AfterSeq, "before": &aq.BeforeSeq} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return &tokenissuer.InvalidError{Msg: name + " must be a sequence number"}
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return &tokenissuer.InvalidError{Msg: "limit must be a positive number"}
		}
		aq.Limit = n
	}
	for name, dst := range map[string]*time.Time{"since": &aq.Since, "until": &aq.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return &tokenissuer.InvalidError{Msg: name + " must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"}
			}
			*dst = t
		}
	}
	records, err := a.admin.Audit(r.Context(), aq)
	if err != nil {
		return err
	}
	if records == nil {
		records = []tokenissuer.AuditRecord{}
	}
	page := map[string]any{"records": records}
	if len(records) > 0 {
		next := "next_after"
		if aq.Newest {
			next = "next_before"
		}
		page[next] = records[len(records)-1].Seq
	}
	return writeJSON(w, http.StatusOK, page)
}

// decode reads a strict JSON body: unknown fields are errors.
func decode(r *http.Request, into any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errTooLarge
		}
		return &tokenissuer.InvalidError{Msg: "the body could not be read"}
	}
	// Strictly: member names exactly as documented, each once, none
	// unknown, nothing after the object (encoding/json accepted "Scopes",
	// a repeated member and trailing data).
	if err := jsonv2.Unmarshal(body, into, jsonv2.RejectUnknownMembers(true)); err != nil {
		return &tokenissuer.InvalidError{Msg: "the body is not the expected JSON: " + jsonProblem(err)}
	}
	return nil
}

// jsonProblem says what is wrong with a body in the API's own words: JSON
// pointers and JSON kinds, never the Go types it is read into.
func jsonProblem(err error) string {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("member %q appears more than once", syn.JSONPointer.LastToken())
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.ByteOffset)
	case errors.As(err, &sem) && errors.Is(sem.Err, jsonv2.ErrUnknownName):
		return fmt.Sprintf("unknown member %q (names are case-sensitive; see the OpenAPI document)", sem.JSONPointer.LastToken())
	case errors.As(err, &sem):
		where := string(sem.JSONPointer)
		if where == "" {
			where = "the body"
		}
		return fmt.Sprintf("%s must be %s", where, expectedKind(sem.GoType))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends too early"
	}
	return "invalid JSON"
}

// expectedKind names what JSON a Go type reads.
func expectedKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(expectedKind(t.Elem()), "a ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return expectedKind(t.Elem())
	}
	return "of another type"
}

var errTooLarge = errors.New("request body too large")

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// etag quotes a version for the ETag header.
func etag(version string) string { return `"` + version + `"` }

// withIfMatch makes the request's change conditional on its If-Match.
func withIfMatch(r *http.Request) context.Context {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return r.Context()
	}
	if strings.HasPrefix(v, "W/") {
		// If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never
		// matches, so the change is refused (412).
		return tokenissuer.WithExpectedVersion(r.Context(), weakTag)
	}
	return tokenissuer.WithExpectedVersion(r.Context(), strings.Trim(v, `"`))
}

// weakTag is the expected version of a request whose If-Match was weak: no
// resource's version, which is base-36 digits, can equal it.
const weakTag = "W/"
