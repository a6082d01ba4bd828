package portal

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// Before a session exists, forms carry the value of a random cookie as
// their CSRF token (double submit): a page of another site can neither read
// the cookie nor set it.
func (p *Portal) formCookie() string {
	if p.opts.SecureCookies {
		return "__Host-portcullis-form"
	}
	return "portcullis-form"
}

// formToken returns the visitor's form token, setting the cookie first
// when there is none.
func (p *Portal) formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.formCookie()); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	token, _ := tokenissuer.GenerateSecret()
	http.SetCookie(w, &http.Cookie{Name: p.formCookie(), Value: token, Path: "/", HttpOnly: true, Secure: p.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
	return token
}

// checkFormToken checks a form posted before sign-in.
func (p *Portal) checkFormToken(w http.ResponseWriter, r *http.Request) bool {
	c, err := r.Cookie(p.formCookie())
	if err != nil || !p.validCSRF(r, c.Value) {
		p.renderError(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
		return false
	}
	return true
}

type signInData struct {
	Email string
	Error string
}

func (p *Portal) signInPage(w http.ResponseWriter, r *http.Request) {
	p.renderForm(w, r, http.StatusOK, "sign-in", "Sign in", p.formToken(w, r), signInData{})
}

func (p *Portal) signIn(w http.ResponseWriter, r *http.Request) {
	if !p.checkFormToken(w, r) {
		return
	}
	email := r.PostForm.Get("email")
	in, err := p.accounts.SignIn(r.Context(), email, r.PostForm.Get("password"), p.remoteAddress(r))
	if err != nil {
		p.signInFailed(w, r, "sign-in", "Sign in", p.formToken(w, r), signInData{Email: email}, err)
		return
	}
	p.setSessionCookie(w, in.Token)
	if in.Session.Pending {
		http.Redirect(w, r, "/portal/sign-in/code", http.StatusSeeOther)
		return
	}
	p.opts.Log.Info("portal sign-in", "account", in.Account.ID, "address", p.remoteAddress(r))
	http.Redirect(w, r, "/portal/clients", http.StatusSeeOther)
}

// signInFailed shows the form again with what went wrong; a refusal for
// too many failures says when to try again.
func (p *Portal) signInFailed(w http.ResponseWriter, r *http.Request, page, title, csrf string, data signInData, err error) {
	status, msg, ok := userMessage(err)
	if !ok {
		p.internalError(w, r, nil, err)
		return
	}
	var limited *tokenissuer.RateLimitedError
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Round(time.Second)/time.Second)+1))
	}
	data.Error = msg
	p.renderForm(w, r, status, page, title, csrf, data)
}

func (p *Portal) pendingSignIn(w http.ResponseWriter, r *http.Request) (token string, sess *tokenissuer.Session, ok bool) {
	if c, err := r.Cookie(p.sessionCookie()); err == nil {
		token = c.Value
	}
	sess, _, err := p.accounts.PendingSignIn(r.Context(), token)
	if err != nil {
		http.Redirect(w, r, "/portal/sign-in", http.StatusSeeOther)
		return "", nil, false
	}
	return token, sess, true
}

func (p *Portal) codePage(w http.ResponseWriter, r *http.Request) {
	if _, sess, ok := p.pendingSignIn(w, r); ok {
		p.renderForm(w, r, http.StatusOK, "sign-in-code", "Second factor", sess.CSRFToken, signInData{})
	}
}

func (p *Portal) code(w http.ResponseWriter, r *http.Request) {
	token, sess, ok := p.pendingSignIn(w, r)
	if !ok {
		return
	}
	if !p.validCSRF(r, sess.CSRFToken) {
		p.renderError(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Sign in again.")
		return
	}
	in, err := p.accounts.CompleteSignIn(r.Context(), token, r.PostForm.Get("code"), p.remoteAddress(r))
	if err != nil {
		p.signInFailed(w, r, "sign-in-code", "Second factor", sess.CSRFToken, signInData{}, err)
		return
	}
	p.setSessionCookie(w, in.Token)
	p.opts.Log.Info("portal sign-in", "account", in.Account.ID, "address", p.remoteAddress(r), "second_factor", true)
	http.Redirect(w, r, "/portal/clients", http.StatusSeeOther)
}

func (p *Portal) signOut(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := p.accounts.SignOut(r.Context(), v.token); err != nil {
		return err
	}
	p.clearCookie(w, p.sessionCookie(), "/")
	http.Redirect(w, r, "/portal/sign-in?notice=signed-out", http.StatusSeeOther)
	return nil
}

// The invitation link is the one URL that carries a secret, because it has
// to travel by email. It is single use and expires; opening it moves the
// token into a cookie scoped to the invitation page and redirects, so the
// token leaves the address bar, and the page sends no Referer.
func (p *Portal) inviteCookie() string {
	if p.opts.SecureCookies {
		return "__Secure-portcullis-invitation"
	}
	return "portcullis-invitation"
}

func (p *Portal) openInvitation(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("tok")
	if len(token) > 64 {
		p.renderError(w, r, nil, http.StatusNotFound, "This invitation link is not valid. Ask whoever invited you for a new one.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.inviteCookie(), Value: token, Path: "/portal/invitation", MaxAge: 3600, HttpOnly: true, Secure: p.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/portal/invitation", http.StatusSeeOther)
}

type invitationData struct {
	Invite *tokenissuer.Invite
	Name   string
	MinLen int
	Error  string
}

func (p *Portal) pendingInvite(w http.ResponseWriter, r *http.Request) (string, *tokenissuer.Invite, bool) {
	c, err := r.Cookie(p.inviteCookie())
	if err != nil {
		p.renderError(w, r, nil, http.StatusNotFound, "Open the invitation link from your email first.")
		return "", nil, false
	}
	inv, err := p.accounts.PendingInvite(r.Context(), c.Value)
	if err != nil {
		p.handleError(w, r, nil, err)
		return "", nil, false
	}
	return c.Value, inv, true
}

func (p *Portal) invitationPage(w http.ResponseWriter, r *http.Request) {
	if _, inv, ok := p.pendingInvite(w, r); ok {
		p.renderForm(w, r, http.StatusOK, "invitation", "Create your account", p.formToken(w, r), invitationData{Invite: inv, Name: inv.Name, MinLen: p.accounts.MinPasswordLength()})
	}
}

func (p *Portal) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	if !p.checkFormToken(w, r) {
		return
	}
	token, inv, ok := p.pendingInvite(w, r)
	if !ok {
		return
	}
	name, password := r.PostForm.Get("name"), r.PostForm.Get("password")
	data := invitationData{Invite: inv, Name: name, MinLen: p.accounts.MinPasswordLength()}
	if subtle.ConstantTimeCompare([]byte(password), []byte(r.PostForm.Get("confirm"))) != 1 {
		data.Error = "The two passwords differ. Type the same password twice."
		p.renderForm(w, r, http.StatusUnprocessableEntity, "invitation", "Create your account", p.formToken(w, r), data)
		return
	}
	a, err := p.accounts.AcceptInvite(tokenissuer.WithActor(r.Context(), tokenissuer.Actor{Address: p.remoteAddress(r)}), token, name, password)
	if err != nil {
		status, msg, ok := userMessage(err)
		if !ok {
			p.internalError(w, r, nil, err)
			return
		}
		data.Error = msg
		p.renderForm(w, r, status, "invitation", "Create your account", p.formToken(w, r), data)
		return
	}
	p.clearCookie(w, p.inviteCookie(), "/portal/invitation")
	p.opts.Log.Info("portal invitation accepted", "account", a.ID)
	http.Redirect(w, r, "/portal/sign-in?notice=invitation-used", http.StatusSeeOther)
}
