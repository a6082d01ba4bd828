// Package portal is the Enterprise Portal (/portal/ on the issuer's admin
// listener): server-rendered pages where people manage their tenant's
// clients, and platform admins tenants and signing keys. It renders pages,
// handles forms and sessions, and calls the service layer
// (tokenissuer.Admin, tokenissuer.Accounts) for every rule and change.
//
// Security model: sessions live in the store (any replica serves them)
// behind an HttpOnly, SameSite=Lax cookie, Secure unless configured for
// plain HTTP on loopback; every form carries a CSRF token and cross-origin
// writes are refused on the Origin and Sec-Fetch-Site headers as well;
// pages forbid framing, inline scripts and referrers, and are never cached.
// A secret (client secret, invitation link) is shown once: it travels from
// the form's handler to the page that shows it in a short-lived cookie
// encrypted under a key derived from the session cookie, so neither the
// store nor a URL ever holds it.
package portal

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
)

// Options configure the portal.
type Options struct {
	// SecureCookies marks cookies Secure; off only for plain HTTP on
	// loopback.
	SecureCookies bool
	// BaseURL is where people reach the portal, ending in "/portal/": the
	// base of invitation links.
	BaseURL string
	// TokenEndpoint is the issuer's public token endpoint, for the curl
	// line shown with a new secret.
	TokenEndpoint string
	// ClientLimits tells a client's per-client bounds and this issuer's
	// refusals of it; nil shows none.
	ClientLimits func(clientID string) oauth2.ClientLimits
	// ClientAddress is who sent a request, as the sign-in limits count
	// it (the issuer's trusted proxies honoured, IPv6 by its /64); nil:
	// the peer.
	ClientAddress func(*http.Request) string
	// TokenLifetime and MaxTokenLifetime are the issuer's tokens.lifetime
	// and tokens.max_lifetime: how long a token issued before a change
	// keeps working.
	TokenLifetime, MaxTokenLifetime time.Duration
	Log                             *slog.Logger
}

// Portal serves /portal/.
type Portal struct {
	admin    *tokenissuer.Admin
	accounts *tokenissuer.Accounts
	keys     *keys.Manager
	opts     Options
	pages    *pages
}

// New returns the portal.
func New(admin *tokenissuer.Admin, accounts *tokenissuer.Accounts, keys *keys.Manager, opts Options) (*Portal, error) {
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Portal{admin: admin, accounts: accounts, keys: keys, opts: opts, pages: pages}, nil
}

// visitor is who makes a request: always an address, and an account and a
// session once signed in.
type visitor struct {
	account *tokenissuer.Account
	session *tokenissuer.Session
	// token is the session cookie's value.
	token   string
	address string
}

// signedIn is a page handler for signed-in people.
type signedIn func(w http.ResponseWriter, r *http.Request, v *visitor) error

// Handler returns the portal's routes, under /portal/.
func (p *Portal) Handler() http.Handler {
	mux := http.NewServeMux()
	open := map[string]http.HandlerFunc{
		"GET /portal/sign-in":          p.signInPage,
		"POST /portal/sign-in":         p.signIn,
		"GET /portal/sign-in/code":     p.codePage,
		"POST /portal/sign-in/code":    p.code,
		"GET /portal/invitation/{tok}": p.openInvitation,
		"GET /portal/invitation":       p.invitationPage,
		"POST /portal/invitation":      p.acceptInvitation,
	}
	for pattern, h := range open {
		mux.Handle(pattern, h)
	}
	private := map[string]signedIn{
		"GET /portal/{$}":                         p.home,
		"POST /portal/sign-out":                   p.signOut,
		"GET /portal/clients":                     p.clientsPage,
		"GET /portal/clients/new":                 p.newClientPage,
		"POST /portal/clients":                    p.createClient,
		"GET /portal/clients/{id}":                p.clientPage,
		"GET /portal/clients/{id}/secret":         p.secretOnce,
		"POST /portal/clients/{id}/rotate-secret": p.rotateSecret,
		"POST /portal/clients/{id}/keys":          p.setKeys,
		"POST /portal/clients/{id}/revoke-secret": p.confirmFirst(p.confirmRevokeSecret(), p.revokeSecret),
		"POST /portal/clients/{id}/revoke-tokens": p.confirmFirst(p.confirmRevokeTokens(), p.revokeTokens),
		"POST /portal/clients/{id}/disable":       p.confirmFirst(p.confirmDisableClient(), p.setClientStatus(tokenissuer.ClientDisabled)),
		"POST /portal/clients/{id}/enable":        p.setClientStatus(tokenissuer.ClientActive),
		"GET /portal/clients/{id}/edit":           p.editClientPage,
		"POST /portal/clients/{id}/edit":          p.editClient,
		"GET /portal/clients/{id}/delete":         p.deleteClientPage,
		"POST /portal/clients/{id}/delete":        p.deleteClient,
		"GET /portal/audit":                       p.auditPage,
		"GET /portal/report-leak":                 p.reportLeakPage,
		"POST /portal/report-leak":                p.reportLeak,
		"GET /portal/audit/export":                p.auditExport,
		"GET /portal/tenants":                     p.tenantsPage,
		"POST /portal/tenants":                    p.createTenant,
		"GET /portal/tenants/{id}":                p.tenantPage,
		"POST /portal/tenants/{id}/ceiling":       p.setCeiling,
		"POST /portal/tenants/{id}/name":          p.renameTenant,
		"POST /portal/tenants/{id}/second-factor": p.setSecondFactorRequired,
		"POST /portal/tenants/{id}/secret-age":    p.setMaxSecretAge,
		"POST /portal/tenants/{id}/delete":        p.confirmFirst(p.confirmDeleteTenant, p.deleteTenant),
		"POST /portal/tenants/{id}/disable":       p.confirmFirst(p.confirmDisableTenant, p.setTenantStatus(tokenissuer.TenantDisabled)),
		"POST /portal/tenants/{id}/enable":        p.setTenantStatus(tokenissuer.TenantActive),
		"GET /portal/keys":                        p.keysPage,
		"POST /portal/keys/rotate":                p.confirmFirst(p.confirmRotateKeys, p.rotateKeys),
		"GET /portal/people":                      p.peoplePage,
		"POST /portal/people/invite":              p.invite,
		"GET /portal/people/invited":              p.invitedOnce,
		"POST /portal/people/invitation/revoke":   p.confirmFirst(p.aboutInvitation, p.revokeInvitation),
		"POST /portal/people/{id}/disable": p.confirmFirst(p.aboutPerson("Disable WHO?", "Disable",
			"They are signed out at their next page and cannot sign in until enabled again."), p.setAccountStatus(tokenissuer.AccountDisabled)),
		"POST /portal/people/{id}/enable": p.setAccountStatus(tokenissuer.AccountActive),
		"POST /portal/people/{id}/delete": p.confirmFirst(p.aboutPerson("Delete WHO?", "Delete",
			"They are signed out and their account is gone; the audit trail keeps what they did. To let them back in, invite them again."), p.deleteAccount),
		"POST /portal/people/{id}/remove-2fa": p.confirmFirst(p.aboutPerson("Remove WHO's second factor?", "Remove the second factor",
			"They sign in with their password alone until they set up a new authenticator. Do this only once you know it is really them who lost it."), p.removeOthersSecondFactor),
		"POST /portal/people/{id}/clear-sign-in":     p.clearSignInFailures,
		"POST /portal/people/{id}/role":              p.setRole,
		"GET /portal/account":                        p.accountPage,
		"POST /portal/account/password":              p.changePassword,
		"POST /portal/account/second-factor":         p.beginSecondFactor,
		"POST /portal/account/second-factor/confirm": p.confirmSecondFactor,
		"POST /portal/account/second-factor/remove":  p.removeSecondFactor,
	}
	for pattern, h := range private {
		mux.Handle(pattern, p.signedIn(h))
	}
	mux.Handle("GET /portal/static/", staticHandler())
	mux.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, nil, http.StatusNotFound, "There is no such page. Use the menu to find your way.")
	})
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// contentSecurityPolicy allows the portal's own scripts, styles and images
// (and data: images: the enrollment QR code) and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if !strings.HasPrefix(r.URL.Path, "/portal/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Portal) remoteAddress(r *http.Request) string {
	if p.opts.ClientAddress != nil {
		return p.opts.ClientAddress(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// signedIn loads the session, sends people without one to the sign-in
// page, checks the CSRF token of every form, and makes the account the
// actor of the changes the handler makes.
func (p *Portal) signedIn(h signedIn) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &visitor{address: p.remoteAddress(r)}
		if c, err := r.Cookie(p.sessionCookie()); err == nil {
			v.token = c.Value
		}
		sess, acct, err := p.accounts.Session(r.Context(), v.token)
		if errors.Is(err, tokenissuer.ErrSessionNotFound) {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/portal/sign-in", http.StatusSeeOther)
				return
			}
			p.renderError(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again, then repeat what you were doing.")
			return
		}
		if err != nil {
			p.internalError(w, r, nil, err)
			return
		}
		v.session, v.account = sess, acct
		if r.Method == http.MethodPost && !p.validCSRF(r, sess.CSRFToken) {
			p.renderError(w, r, v, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
			return
		}
		// A tenant that requires a second factor walks its people without
		// one through setting it up before anything else.
		if !enrollmentPaths[r.Method+" "+r.URL.Path] {
			must, err := p.accounts.MustEnrollSecondFactor(r.Context(), acct)
			if err != nil {
				p.internalError(w, r, v, err)
				return
			}
			if must {
				if r.Method == http.MethodGet {
					http.Redirect(w, r, "/portal/account?notice=second-factor-required", http.StatusSeeOther)
					return
				}
				p.renderError(w, r, v, http.StatusForbidden, "Your organisation requires a second factor. Set one up on your account page first.")
				return
			}
		}
		ctx := tokenissuer.WithActor(r.Context(), actorOf(acct, v.address))
		if err := h(w, r.WithContext(ctx), v); err != nil {
			p.handleError(w, r, v, err)
		}
	})
}

// enrollmentPaths are what a person who must set up a second factor may
// reach: the account page, the enrollment, signing out.
var enrollmentPaths = map[string]bool{
	"GET /portal/account":                        true,
	"POST /portal/account/second-factor":         true,
	"POST /portal/account/second-factor/confirm": true,
	"POST /portal/sign-out":                      true,
}

// csrfField is the form field of the CSRF token.
const csrfField = "csrf"

// maxForm bounds a form; the largest is a scope ceiling.
const maxForm = 64 << 10

func (p *Portal) validCSRF(r *http.Request, want string) bool {
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return false
	}
	got := r.PostForm.Get(csrfField)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// writer refuses a change to read-only roles, whatever the page showed.
func writer(v *visitor) error {
	if !v.account.Role.CanWrite() {
		return errForbidden("Your role (" + string(v.account.Role) + ") can only read. Ask a tenant admin to make this change.")
	}
	return nil
}

// actorOf is who a signed-in person is to the service layer, which decides
// what they see and change: a platform admin is an operator, a tenant's
// person acts in that tenant, a viewer only reads.
func actorOf(a *tokenissuer.Account, address string) tokenissuer.Actor {
	return tokenissuer.Actor{ID: "account:" + a.Email, Address: address, Operator: a.Role == tokenissuer.RolePlatformAdmin,
		TenantID: a.TenantID, ReadOnly: !a.Role.CanWrite()}
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request, v *visitor) error {
	http.Redirect(w, r, "/portal/clients", http.StatusSeeOther)
	return nil
}

// Cookies. With Secure cookies the session cookie takes the __Host- prefix,
// which browsers accept only from HTTPS, for the whole host, with no
// Domain: a sibling subdomain can neither set nor overwrite it.
func (p *Portal) sessionCookie() string {
	if p.opts.SecureCookies {
		return "__Host-portcullis-session"
	}
	return "portcullis-session"
}

func (p *Portal) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: p.sessionCookie(), Value: token, Path: "/", HttpOnly: true, Secure: p.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (p *Portal) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: p.opts.SecureCookies, SameSite: http.SameSiteLaxMode})
}
