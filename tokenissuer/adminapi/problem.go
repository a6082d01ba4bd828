package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/portcullis/portcullis/tokenissuer"
)

// problem is an RFC 9457 problem detail. Type is stable per kind of error,
// so automation can switch on it; Detail is for people.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (p problem) with(detail string) *problem {
	p.Detail = detail
	return &p
}

const problemBase = "urn:portcullis:problem:"

var (
	problemUnauthorized = problem{Type: problemBase + "unauthorized", Title: "Authentication required", Status: http.StatusUnauthorized}
	problemForbidden    = problem{Type: problemBase + "forbidden", Title: "Not allowed", Status: http.StatusForbidden}
	problemNotFound     = problem{Type: problemBase + "not-found", Title: "Not found", Status: http.StatusNotFound}
	problemConflict     = problem{Type: problemBase + "conflict", Title: "Conflict with the current state", Status: http.StatusConflict}
	problemInvalid      = problem{Type: problemBase + "invalid-request", Title: "Invalid request", Status: http.StatusBadRequest}
	problemTooLarge     = problem{Type: problemBase + "too-large", Title: "Request too large", Status: http.StatusRequestEntityTooLarge}
	problemPrecondition = problem{Type: problemBase + "precondition-failed", Title: "The resource changed", Status: http.StatusPreconditionFailed}
	problemKeyReused    = problem{Type: problemBase + "idempotency-key-reused", Title: "Idempotency-Key used for another request", Status: http.StatusUnprocessableEntity}
	problemInternal     = problem{Type: problemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError}
)

// problemFor maps a service-layer error to its problem; an unexpected one
// is a 500 whose cause goes to the log, not to the caller.
func problemFor(err error) *problem {
	var invalid *tokenissuer.InvalidError
	var ceiling *tokenissuer.CeilingError
	var quota *tokenissuer.QuotaError
	var inUse *tokenissuer.TenantInUseError
	switch {
	case errors.Is(err, errKeyReused):
		return problemKeyReused.with(err.Error())
	case errors.Is(err, errKeyInProgress):
		return problemConflict.with(err.Error())
	case errors.Is(err, tokenissuer.ErrNotPermitted):
		return problemForbidden.with("the token does not allow this: tenants, keys and platform roles are for platform operators (scope " + ScopeAdmin + ")")
	case errors.Is(err, tokenissuer.ErrClientNotFound), errors.Is(err, tokenissuer.ErrTenantNotFound), errors.Is(err, tokenissuer.ErrSecretNotFound),
		errors.Is(err, tokenissuer.ErrAccountNotFound), errors.Is(err, tokenissuer.ErrInviteNotFound):
		return problemNotFound.with(err.Error())
	case errors.Is(err, errPeopleOff):
		return problemNotFound.with(err.Error())
	case errors.Is(err, tokenissuer.ErrClientExists), errors.Is(err, tokenissuer.ErrTenantExists), errors.Is(err, tokenissuer.ErrAccountExists),
		errors.Is(err, tokenissuer.ErrTooManySecrets), errors.Is(err, tokenissuer.ErrLastSecret), errors.As(err, &ceiling), errors.As(err, &quota), errors.As(err, &inUse):
		return problemConflict.with(err.Error())
	case errors.Is(err, tokenissuer.ErrVersionMismatch):
		return problemPrecondition.with("the resource changed since its ETag was read; read it again and retry")
	case errors.As(err, &invalid):
		return problemInvalid.with(invalid.Msg)
	case errors.Is(err, tokenissuer.ErrPlatformScope):
		return problemForbidden.with(err.Error())
	case errors.Is(err, errTooLarge):
		return problemTooLarge.with("the body is larger than 64 KiB")
	}
	return problemInternal.with("the request could not be completed; retry later")
}

// errPeopleOff is an API built without the people service.
var errPeopleOff = errors.New("this issuer serves no people endpoints")

func writeProblem(w http.ResponseWriter, p *problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
