// Package authz decides whether a request may reach the API: the Check
// decision (ARCHITECTURE.md, "How a Check flows"), token verification, the user directory, and the gRPC
// service Envoy calls.
package authz

import (
	"bytes"
	"encoding/json"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Reason is the stable code of a decision: it is the "reasons" entry of the
// denial body, the reason field of the decision log and the metric label.
type Reason string

// Reasons, in the order of the decision table.
const (
	ReasonAllowed               Reason = "allowed"
	ReasonPublic                Reason = "public"
	ReasonInvalidPath           Reason = "invalid-path"
	ReasonMissingToken          Reason = "missing-token"
	ReasonMalformedToken        Reason = "malformed-token"
	ReasonInvalidToken          Reason = "invalid-token"
	ReasonTokenExpired          Reason = "token-expired"
	ReasonTokenRevoked          Reason = "token-revoked"
	ReasonNoMatchingRoute       Reason = "no-matching-route"
	ReasonMissingScope          Reason = "missing-scope"
	ReasonInvalidOnBehalfOf     Reason = "invalid-on-behalf-of"
	ReasonUserContextRequired   Reason = "user-context-required"
	ReasonUserContextNotAllowed Reason = "user-context-not-allowed"
	ReasonUnknownUser           Reason = "unknown-user"
	ReasonUserBlocked           Reason = "user-blocked"
	ReasonUnavailable           Reason = "unavailable"
	// ReasonOverloaded is a new token refused because too many are being
	// verified already: answered as unavailable, with Retry-After.
	ReasonOverloaded Reason = "overloaded"
	// ReasonUntrustedProxy is an HTTP authorization request from an
	// address outside http.trusted_proxies: only a proxy may say what
	// request it is asking about.
	ReasonUntrustedProxy Reason = "untrusted-proxy"
	// ReasonSpoofedHeader is a request asked about over HTTP that carries
	// an underscore spelling of a trusted header (x_auth_user_id): the
	// proxy cannot be told to remove it, so the request is refused.
	ReasonSpoofedHeader Reason = "spoofed-header"
)

// DenialReasons lists every reason answered with a denial: the codes of
// the decision log, the metrics and the policy test cases' expect.
func DenialReasons() []Reason { return reasonsWithDenials() }

// reasonsWithDenials lists every reason that is answered with a denial.
func reasonsWithDenials() []Reason {
	out := make([]Reason, 0, len(denialSpecs))
	for r := range denialSpecs {
		out = append(out, r)
	}
	return out
}

// denialSpec is how a reason is answered.
type denialSpec struct {
	status  int
	code    string
	message string
	grpc    codes.Code
	// retryAfter is the Retry-After of a denial worth retrying soon, in
	// seconds ("" for none).
	retryAfter string
}

var denialSpecs = map[Reason]denialSpec{
	ReasonInvalidPath:           {http.StatusBadRequest, "invalid-request", "The request path is not valid", codes.InvalidArgument, ""},
	ReasonMissingToken:          {http.StatusUnauthorized, "unauthorized", "An access token is required: send Authorization: Bearer <accessToken>", codes.Unauthenticated, ""},
	ReasonMalformedToken:        {http.StatusUnauthorized, "unauthorized", "The Authorization header must be exactly one Bearer access token", codes.Unauthenticated, ""},
	ReasonInvalidToken:          {http.StatusUnauthorized, "unauthorized", "The access token is not valid", codes.Unauthenticated, ""},
	ReasonTokenExpired:          {http.StatusUnauthorized, "unauthorized", "The access token has expired", codes.Unauthenticated, ""},
	ReasonTokenRevoked:          {http.StatusUnauthorized, "unauthorized", "The access token has been revoked", codes.Unauthenticated, ""},
	ReasonNoMatchingRoute:       {http.StatusForbidden, "forbidden", "No route of this API allows this request", codes.PermissionDenied, ""},
	ReasonMissingScope:          {http.StatusForbidden, "forbidden", "The access token lacks a scope this endpoint requires", codes.PermissionDenied, ""},
	ReasonInvalidOnBehalfOf:     {http.StatusBadRequest, "invalid-request", "The X-On-Behalf-Of header must be exactly one value of the form: user {userId}", codes.InvalidArgument, ""},
	ReasonUserContextRequired:   {http.StatusBadRequest, "invalid-request", "This endpoint must be called on behalf of a user: send X-On-Behalf-Of: user {userId}", codes.InvalidArgument, ""},
	ReasonUserContextNotAllowed: {http.StatusBadRequest, "invalid-request", "This endpoint cannot be called on behalf of a user: remove X-On-Behalf-Of", codes.InvalidArgument, ""},
	ReasonUnknownUser:           {http.StatusForbidden, "forbidden", "The user is not known or not accessible to this client", codes.PermissionDenied, ""},
	ReasonUserBlocked:           {http.StatusConflict, "operation-not-allowed", "The current status of the user does not allow calling this endpoint", codes.FailedPrecondition, ""},
	ReasonUnavailable:           {http.StatusServiceUnavailable, "unavailable", "Authorization is temporarily unavailable; retry later", codes.Unavailable, ""},
	ReasonOverloaded:            {http.StatusServiceUnavailable, "unavailable", "Too many new access tokens are being checked; retry in a second", codes.Unavailable, "1"},
	ReasonUntrustedProxy:        {http.StatusForbidden, "forbidden", "This address may not ask for authorization decisions", codes.PermissionDenied, ""},
	ReasonSpoofedHeader:         {http.StatusBadRequest, "invalid-request", "The request carries a header name with underscores that imitates a header this API sets; remove it", codes.InvalidArgument, ""},
}

// Denial is a refused request as the client will see it.
type Denial struct {
	Reason Reason
	Status int
	// GRPCCode is the status code of the CheckResponse.
	GRPCCode codes.Code
	// Body is the JSON body {"code","message","reasons"}.
	Body []byte
	// WWWAuthenticate is the challenge of a 401, or of a 403 for a missing scope.
	WWWAuthenticate string
	// RetryAfter is the Retry-After of a denial worth retrying soon.
	RetryAfter string
}

// denialBody is the JSON shape of every denial (ARCHITECTURE.md, "Denials").
type denialBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Reasons []string `json:"reasons"`
}

// The body of a 409 for a blocked user is fixed by the API's contract.
var blockedUserBody = []byte(`{
  "code": "operation-not-allowed",
  "message": "The current status of the user does not allow calling this endpoint",
  "reasons": ["user-blocked"]
}`)

// denials are built once: a denial on the request path only picks one.
type denialTable struct {
	byReason map[Reason]*Denial
}

func newDenialTable(realm string) *denialTable {
	t := &denialTable{byReason: make(map[Reason]*Denial, len(denialSpecs))}
	for reason, spec := range denialSpecs {
		d := &Denial{Reason: reason, Status: spec.status, GRPCCode: spec.grpc, RetryAfter: spec.retryAfter}
		if reason == ReasonUserBlocked {
			d.Body = blockedUserBody
		} else {
			d.Body = marshalDenialBody(denialBody{Code: spec.code, Message: spec.message, Reasons: []string{string(reason)}})
		}
		if spec.status == http.StatusUnauthorized {
			d.WWWAuthenticate = bearerChallenge(realm, reason, spec.message)
		}
		t.byReason[reason] = d
	}
	return t
}

// marshalDenialBody encodes without HTML escaping: the message's "<" and ">"
// are meant for people reading JSON, not for a browser.
func marshalDenialBody(b denialBody) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(b)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// bearerChallenge builds the RFC 6750 §3 challenge: no error attribute when
// the token is simply missing (§3.1), error="invalid_token" otherwise.
func bearerChallenge(realm string, reason Reason, description string) string {
	c := `Bearer realm="` + quoteEscape(realm) + `"`
	if reason != ReasonMissingToken {
		c += `, error="invalid_token", error_description="` + quoteEscape(description) + `"`
	}
	return c
}

// scopeChallenge is the RFC 6750 §3.1 insufficient_scope challenge.
func scopeChallenge(realm, scopes string) string {
	return `Bearer realm="` + quoteEscape(realm) + `", error="insufficient_scope", scope="` + quoteEscape(scopes) + `"`
}

func quoteEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			out = append(out, '\\')
		}
		if c < 0x20 || c == 0x7f {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

func (t *denialTable) get(r Reason) *Denial { return t.byReason[r] }
