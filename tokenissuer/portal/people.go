package portal

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"image/png"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/tokenissuer"
)

type peopleData struct {
	Accounts []*tokenissuer.Account
	// Invitations are the live ones the visitor manages.
	Invitations []*tokenissuer.Invite
	Roles       []tokenissuer.Role
	Tenants     []*tokenissuer.Tenant
	TenantNames map[string]string
	CanWrite    bool
	Self        string
	// The invitation form, shown again when refused.
	Email, Name, Role, TenantID string
	Error                       string
}

func (p *Portal) showPeople(w http.ResponseWriter, r *http.Request, v *visitor, status int, data peopleData) error {
	accounts, err := p.accounts.Accounts(r.Context(), v.account)
	if err != nil {
		return err
	}
	data.Accounts, data.CanWrite, data.Self = accounts, v.account.Role.CanWrite(), v.account.ID
	if data.TenantNames, _, err = p.tenantNames(r, v); err != nil {
		return err
	}
	if data.CanWrite {
		if data.Invitations, err = p.accounts.Invitations(r.Context(), v.account); err != nil {
			return err
		}
	}
	data.Roles = []tokenissuer.Role{tokenissuer.RoleTenantAdmin, tokenissuer.RoleTenantViewer}
	if v.account.Role == tokenissuer.RolePlatformAdmin {
		data.Roles = tokenissuer.Roles
		if data.Tenants, err = p.admin.Tenants(r.Context()); err != nil {
			return err
		}
	}
	p.render(w, r, v, status, "people", "People", data)
	return nil
}

func (p *Portal) peoplePage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.showPeople(w, r, v, http.StatusOK, peopleData{Role: string(tokenissuer.RoleTenantViewer)})
}

func (p *Portal) invite(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	data := peopleData{Email: strings.TrimSpace(r.PostForm.Get("email")), Name: strings.TrimSpace(r.PostForm.Get("name")), Role: r.PostForm.Get("role"), TenantID: r.PostForm.Get("tenant")}
	if v.account.Role != tokenissuer.RolePlatformAdmin {
		data.TenantID = v.account.TenantID
	}
	if data.Role == string(tokenissuer.RolePlatformAdmin) {
		data.TenantID = ""
	}
	token, inv, err := p.accounts.Invite(r.Context(), v.account, tokenissuer.NewInvite{Email: data.Email, Name: data.Name, Role: tokenissuer.Role(data.Role), TenantID: data.TenantID})
	if err != nil {
		status, msg, ok := userMessage(err)
		if !ok {
			return err
		}
		data.Error = msg
		return p.showPeople(w, r, v, status, data)
	}
	const path = "/portal/people/invited"
	link := InvitationLink(p.opts.BaseURL, token)
	if err := p.showOnce(w, v, path, shownOnce{For: "invitation", Secret: link, Label: inv.Email}); err != nil {
		return err
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

func (p *Portal) revokeInvitation(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	if err := p.accounts.RevokeInvitation(r.Context(), v.account, r.PostForm.Get("email"), r.PostForm.Get("tenant")); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/people?notice=invitation-revoked", http.StatusSeeOther)
	return nil
}

func (p *Portal) invitedOnce(w http.ResponseWriter, r *http.Request, v *visitor) error {
	shown, err := p.takeOnce(w, r, v, "invitation")
	if err != nil {
		p.render(w, r, v, http.StatusGone, "invited", "Invitation", shown)
		return nil
	}
	p.render(w, r, v, http.StatusOK, "invited", "Invitation", shown)
	return nil
}

func (p *Portal) setAccountStatus(status tokenissuer.AccountStatus) signedIn {
	return func(w http.ResponseWriter, r *http.Request, v *visitor) error {
		if err := writer(v); err != nil {
			return err
		}
		if _, err := p.accounts.SetAccountStatus(r.Context(), v.account, r.PathValue("id"), status); err != nil {
			return err
		}
		http.Redirect(w, r, "/portal/people?notice=account-updated", http.StatusSeeOther)
		return nil
	}
}

func (p *Portal) setRole(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	if _, err := p.accounts.SetRole(r.Context(), v.account, r.PathValue("id"), tokenissuer.Role(r.PostForm.Get("role"))); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/people?notice=account-updated", http.StatusSeeOther)
	return nil
}

func (p *Portal) deleteAccount(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	if r.PathValue("id") == v.account.ID {
		return &pageError{status: http.StatusConflict, msg: "You cannot delete your own account; ask another admin."}
	}
	if err := p.accounts.DeleteAccount(r.Context(), v.account, r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/people?notice=account-deleted", http.StatusSeeOther)
	return nil
}

func (p *Portal) removeOthersSecondFactor(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	if r.PathValue("id") == v.account.ID {
		http.Redirect(w, r, "/portal/account", http.StatusSeeOther)
		return nil
	}
	if _, err := p.accounts.RemoveSecondFactor(r.Context(), v.account, r.PathValue("id"), "", ""); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/people?notice=2fa-removed", http.StatusSeeOther)
	return nil
}

// clearSignInFailures forgets the failed sign-ins counted against an
// account, so its attempts are no longer slowed.
func (p *Portal) clearSignInFailures(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	if err := p.accounts.ClearSignInFailures(r.Context(), v.account, r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/people?notice=sign-in-failures-cleared", http.StatusSeeOther)
	return nil
}

type accountData struct {
	MinLen int
	Error  string
	// Enrollment of a second factor.
	QR template.URL
	// Link is the otpauth: URI the QR code holds, for a person on the
	// phone that shows it (RFC 6238 apps register the scheme).
	Link   template.URL
	Secret string
	Sealed string
	// RecoveryCodes are shown once, right after enrollment.
	RecoveryCodes []string
}

func (p *Portal) showAccount(w http.ResponseWriter, r *http.Request, v *visitor, status int, data accountData) error {
	data.MinLen = p.accounts.MinPasswordLength()
	p.render(w, r, v, status, "account", "Your account", data)
	return nil
}

func (p *Portal) accountPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.showAccount(w, r, v, http.StatusOK, accountData{})
}

// refused shows the account page with what went wrong, or passes on an
// internal fault.
func (p *Portal) refused(w http.ResponseWriter, r *http.Request, v *visitor, data accountData, err error) error {
	status, msg, ok := userMessage(err)
	if !ok {
		return err
	}
	data.Error = msg
	return p.showAccount(w, r, v, status, data)
}

func (p *Portal) changePassword(w http.ResponseWriter, r *http.Request, v *visitor) error {
	next := r.PostForm.Get("new")
	if subtle.ConstantTimeCompare([]byte(next), []byte(r.PostForm.Get("confirm"))) != 1 {
		return p.showAccount(w, r, v, http.StatusUnprocessableEntity, accountData{Error: "The two new passwords differ. Type the same password twice."})
	}
	if err := p.accounts.ChangePassword(r.Context(), v.account, v.session.IDHash, r.PostForm.Get("current"), next); err != nil {
		return p.refused(w, r, v, accountData{}, err)
	}
	http.Redirect(w, r, "/portal/account?notice=password-changed", http.StatusSeeOther)
	return nil
}

func (p *Portal) beginSecondFactor(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if v.account.SecondFactor() {
		http.Redirect(w, r, "/portal/account", http.StatusSeeOther)
		return nil
	}
	enrollment, err := p.accounts.BeginTOTP(r.Context(), v.account, r.PostForm.Get("password"))
	if err != nil {
		return p.refused(w, r, v, accountData{}, err)
	}
	return p.showEnrollment(w, r, v, http.StatusOK, enrollment.Key.Secret(), enrollment.Sealed, "", enrollment)
}

func (p *Portal) showEnrollment(w http.ResponseWriter, r *http.Request, v *visitor, status int, secret, sealed, msg string, enrollment *tokenissuer.TOTPEnrollment) error {
	data := accountData{Secret: secret, Sealed: sealed, Error: msg}
	if enrollment != nil {
		img, err := enrollment.Key.Image(200, 200)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		// A data: URL typed as safe: it is the portal's own PNG.
		data.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
		// The issuer's own otpauth: URI, typed as safe for the same reason.
		data.Link = template.URL(enrollment.Key.URL())
	}
	data.MinLen = p.accounts.MinPasswordLength()
	p.render(w, r, v, status, "enroll", "Set up a second factor", data)
	return nil
}

func (p *Portal) confirmSecondFactor(w http.ResponseWriter, r *http.Request, v *visitor) error {
	sealed := r.PostForm.Get("sealed")
	codes, err := p.accounts.ConfirmTOTP(r.Context(), v.account, sealed, r.PostForm.Get("code"))
	if err != nil {
		status, msg, ok := userMessage(err)
		if !ok {
			return err
		}
		return p.showEnrollment(w, r, v, status, r.PostForm.Get("secret"), sealed, msg+" Check the phone's clock and type the code it shows now.", nil)
	}
	return p.showAccount(w, r, v, http.StatusOK, accountData{RecoveryCodes: codes})
}

func (p *Portal) removeSecondFactor(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if _, err := p.accounts.RemoveSecondFactor(r.Context(), v.account, v.account.ID, r.PostForm.Get("password"), r.PostForm.Get("code")); err != nil {
		return p.refused(w, r, v, accountData{}, err)
	}
	http.Redirect(w, r, "/portal/account?notice=2fa-removed", http.StatusSeeOther)
	return nil
}

// InvitationLink is the link an invitation's email carries: the portal at
// base (ending in "/portal/") and the invitation's token.
func InvitationLink(base, token string) string { return base + "invitation/" + token }
