package portal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/tokenissuer"
)

// pageError is a refusal with a message for the person and its status.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func errForbidden(msg string) error { return &pageError{status: http.StatusForbidden, msg: msg} }

// errNotFound is what a person gets for an object that does not exist or
// that belongs to another tenant: the two are told apart by nobody.
var errNotFound = &pageError{status: http.StatusNotFound, msg: "There is no such page. It may have been deleted; use the menu to find your way."}

// userMessage turns the service layer's errors into what a person can act
// on; ok is false for internal faults.
// countOf says how many: "1 client", "3 people".
func countOf(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case noun == "person":
		return fmt.Sprintf("%d people", n)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func userMessage(err error) (status int, msg string, ok bool) {
	var pe *pageError
	var inv *tokenissuer.InvalidError
	var ceiling *tokenissuer.CeilingError
	var limited *tokenissuer.RateLimitedError
	var quota *tokenissuer.QuotaError
	var inUse *tokenissuer.TenantInUseError
	switch {
	case errors.As(err, &inUse):
		return http.StatusConflict, fmt.Sprintf("The tenant still has %s and %s. Delete them first: deleting a tenant never deletes them for you.", countOf(inUse.Clients, "client"), countOf(inUse.People, "person")), true
	case errors.As(err, &pe):
		return pe.status, pe.msg, true
	case errors.As(err, &inv):
		return http.StatusUnprocessableEntity, inv.Msg, true
	case errors.As(err, &ceiling):
		return http.StatusConflict, ceiling.Error(), true
	case errors.As(err, &quota):
		return http.StatusConflict, quota.Msg + ".", true
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, limited.Error(), true
	case errors.Is(err, tokenissuer.ErrClientNotFound), errors.Is(err, tokenissuer.ErrTenantNotFound), errors.Is(err, tokenissuer.ErrAccountNotFound):
		return errNotFound.status, errNotFound.msg, true
	case errors.Is(err, tokenissuer.ErrTooManySecrets), errors.Is(err, tokenissuer.ErrLastSecret), errors.Is(err, tokenissuer.ErrSecretNotFound),
		errors.Is(err, tokenissuer.ErrClientExists), errors.Is(err, tokenissuer.ErrTenantExists), errors.Is(err, tokenissuer.ErrAccountExists):
		return http.StatusConflict, sentence(err), true
	case errors.Is(err, tokenissuer.ErrVersionMismatch):
		return http.StatusConflict, "This changed since you opened the page (in another tab, or by someone else). The current values are shown: make your change again.", true
	case errors.Is(err, tokenissuer.ErrNotPermitted):
		return http.StatusForbidden, "Your role does not allow this.", true
	case errors.Is(err, tokenissuer.ErrPlatformScope):
		return http.StatusForbidden, sentence(err) + " Ask your platform operator.", true
	case errors.Is(err, tokenissuer.ErrBusy):
		return http.StatusServiceUnavailable, sentence(err), true
	case errors.Is(err, tokenissuer.ErrSecondFactorOn):
		return http.StatusConflict, sentence(err), true
	case errors.Is(err, tokenissuer.ErrPasswordWrong):
		return http.StatusUnprocessableEntity, sentence(err), true
	case errors.Is(err, tokenissuer.ErrSignInFailed), errors.Is(err, tokenissuer.ErrSecondFactorFailed):
		return http.StatusUnauthorized, sentence(err), true
	case errors.Is(err, tokenissuer.ErrInviteNotFound):
		return http.StatusNotFound, "This invitation link was used already or has expired. Ask whoever invited you for a new one.", true
	}
	return 0, "", false
}

// sentence turns an error's message, which Go writes in lower case, into
// a sentence for a page.
func sentence(err error) string {
	msg := err.Error()
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// handleError answers a handler's error with a page.
func (p *Portal) handleError(w http.ResponseWriter, r *http.Request, v *visitor, err error) {
	if status, msg, ok := userMessage(err); ok {
		p.renderError(w, r, v, status, msg)
		return
	}
	p.internalError(w, r, v, err)
}

// internalError logs the cause under an ID and shows only the ID.
func (p *Portal) internalError(w http.ResponseWriter, r *http.Request, v *visitor, err error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	p.opts.Log.Error("portal request failed", "error_id", id, "method", r.Method, "route", r.Pattern, "err", err)
	p.renderError(w, r, v, http.StatusInternalServerError, "Something went wrong on our side and nothing was changed. Try again; if it persists, give your operator this error ID: "+id+".")
}

func (p *Portal) renderError(w http.ResponseWriter, r *http.Request, v *visitor, status int, msg string) {
	p.render(w, r, v, status, "error", "Error", struct{ Message string }{msg})
}
