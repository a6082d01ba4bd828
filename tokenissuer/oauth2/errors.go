package oauth2

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// OAuthError is an error response of the token endpoint (RFC 6749 §5.2).
// Code and Description are public; Cause is for logs only. The sentinel
// values below are never modified: WithDescription and WithCause return copies.
type OAuthError struct {
	Code        string
	Description string
	Status      int
	// Cause is logged, never sent to the client.
	Cause error
	// BasicChallenge adds WWW-Authenticate: Basic to a 401 (RFC 6749 §5.2:
	// required when the client authenticated with the Authorization header).
	BasicChallenge bool
	// RetryAfter, when positive, is sent as the Retry-After header of a 429.
	RetryAfter time.Duration
}

// RFC 6749 §5.2 error codes, plus the two HTTP-level refusals the endpoint makes
// before it can speak OAuth (rate limiting and oversized bodies).
var (
	ErrInvalidRequest       = &OAuthError{Code: "invalid_request", Status: http.StatusBadRequest}
	ErrInvalidClient        = &OAuthError{Code: "invalid_client", Status: http.StatusUnauthorized, Description: "client authentication failed"}
	ErrUnauthorizedClient   = &OAuthError{Code: "unauthorized_client", Status: http.StatusBadRequest}
	ErrUnsupportedGrantType = &OAuthError{Code: "unsupported_grant_type", Status: http.StatusBadRequest, Description: "only grant_type=client_credentials is supported"}
	ErrInvalidScope         = &OAuthError{Code: "invalid_scope", Status: http.StatusBadRequest}
	ErrTooManyRequests      = &OAuthError{Code: "too_many_requests", Status: http.StatusTooManyRequests, Description: "too many failed client authentications; retry later"}
	ErrRequestTooLarge      = &OAuthError{Code: "invalid_request", Status: http.StatusRequestEntityTooLarge, Description: "request body too large"}
	ErrServerError          = &OAuthError{Code: "server_error", Status: http.StatusInternalServerError, Description: "the server could not issue a token; retry later"}
)

func (e *OAuthError) Error() string {
	msg := e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap exposes the logged cause to errors.Is and errors.As.
func (e *OAuthError) Unwrap() error { return e.Cause }

// Is makes every copy of a sentinel match it, whatever its description.
func (e *OAuthError) Is(target error) bool {
	t, ok := target.(*OAuthError)
	return ok && t.Code == e.Code && t.Status == e.Status
}

// WithDescription returns a copy with a public, human-readable description.
func (e *OAuthError) WithDescription(d string) *OAuthError {
	c := *e
	c.Description = d
	return &c
}

// WithCause returns a copy carrying a cause for the logs.
func (e *OAuthError) WithCause(err error) *OAuthError {
	c := *e
	c.Cause = err
	return &c
}

func (e *OAuthError) withBasicChallenge() *OAuthError {
	c := *e
	c.BasicChallenge = true
	return &c
}

func (e *OAuthError) withRetryAfter(d time.Duration) *OAuthError {
	c := *e
	c.RetryAfter = d
	return &c
}

type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// write sends the error as RFC 6749 §5.2 JSON with the no-store headers of §5.1.
func (e *OAuthError) write(w http.ResponseWriter, realm string) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized && e.BasicChallenge {
		h.Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: e.Code, ErrorDescription: e.Description})
}
