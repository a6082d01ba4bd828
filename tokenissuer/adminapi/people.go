package adminapi

import (
	"net/http"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// People and invitations: what the portal's People page does, for
// automation (onboarding a tenant: create it, invite its first admin).
// Accounts decides who may do what; this file only translates.

// ScopeManagePeople lets a tenant's token manage its tenant's people and
// invitations as the tenant's admin would. Only an operator grants it.
const ScopeManagePeople = "portcullis.people:manage"

// People enables the people and invitation endpoints: accounts is the
// service, invitationURL turns an invitation's token into the link the
// person opens (the portal's).
func (a *API) People(accounts *tokenissuer.Accounts, invitationURL func(token string) string) *API {
	a.accounts, a.invitationURL = accounts, invitationURL
	return a
}

// authority is who the caller is to Accounts: nil, the operator, for a
// portcullis.admin token; its tenant's admin for a portcullis.people:manage
// token. A token with neither may not manage people.
func (c caller) authority() (*tokenissuer.Account, *problem) {
	switch {
	case c.admin:
		return nil, nil
	case c.token.HasScope(ScopeManagePeople) && c.token.TenantID != "":
		return &tokenissuer.Account{Role: tokenissuer.RoleTenantAdmin, TenantID: c.token.TenantID}, nil
	}
	return nil, problemForbidden.with("managing people needs scope " + ScopeManagePeople + " (a tenant's) or " + ScopeAdmin)
}

// personView is a person as the API shows them: never a password hash,
// second factor or recovery code.
type personView struct {
	PersonID     string                    `json:"person_id"`
	Email        string                    `json:"email"`
	Name         string                    `json:"name"`
	Role         tokenissuer.Role          `json:"role"`
	TenantID     string                    `json:"tenant_id,omitempty"`
	Status       tokenissuer.AccountStatus `json:"status"`
	SecondFactor bool                      `json:"second_factor"`
	CreatedAt    time.Time                 `json:"created_at"`
	UpdatedAt    time.Time                 `json:"updated_at"`
}

func personOf(p *tokenissuer.Account) personView {
	return personView{PersonID: p.ID, Email: p.Email, Name: p.Name, Role: p.Role, TenantID: p.TenantID, Status: p.Status,
		SecondFactor: p.SecondFactor(), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

type invitationView struct {
	Email     string           `json:"email"`
	Name      string           `json:"name,omitempty"`
	Role      tokenissuer.Role `json:"role"`
	TenantID  string           `json:"tenant_id,omitempty"`
	CreatedBy string           `json:"created_by"`
	CreatedAt time.Time        `json:"created_at"`
	ExpiresAt time.Time        `json:"expires_at"`
	// InvitationURL is set only in the answer of the invitation: the link
	// carries its token, which is shown once and never stored.
	InvitationURL string `json:"invitation_url,omitempty"`
}

func invitationOf(inv *tokenissuer.Invite) invitationView {
	return invitationView{Email: inv.Email, Name: inv.Name, Role: inv.Role, TenantID: inv.TenantID, CreatedBy: inv.CreatedBy,
		CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt}
}

// people wraps a handler of the people endpoints with the caller's
// authority over people.
func (a *API) people(h func(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error) handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) error {
		if a.accounts == nil {
			return errPeopleOff
		}
		by, p := c.authority()
		if p != nil {
			writeProblem(w, p)
			return nil
		}
		return h(w, r, by)
	}
}

func (a *API) listPeople(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	all, err := a.accounts.Accounts(r.Context(), by)
	if err != nil {
		return err
	}
	tenant := r.URL.Query().Get("tenant_id")
	out := []personView{}
	for _, p := range all {
		if tenant == "" || p.TenantID == tenant {
			out = append(out, personOf(p))
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"people": out})
}

func (a *API) getPerson(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	p, err := a.accounts.Person(r.Context(), by, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, personOf(p))
}

func (a *API) setRole(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	var req struct {
		Role tokenissuer.Role `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	p, err := a.accounts.SetRole(r.Context(), by, r.PathValue("id"), req.Role)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, personOf(p))
}

func (a *API) setPersonStatus(status tokenissuer.AccountStatus) func(http.ResponseWriter, *http.Request, *tokenissuer.Account) error {
	return func(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
		p, err := a.accounts.SetAccountStatus(r.Context(), by, r.PathValue("id"), status)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, personOf(p))
	}
}

func (a *API) deletePerson(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	if err := a.accounts.DeleteAccount(r.Context(), by, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listInvitations(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	all, err := a.accounts.Invitations(r.Context(), by)
	if err != nil {
		return err
	}
	out := make([]invitationView, 0, len(all))
	for _, inv := range all {
		out = append(out, invitationOf(inv))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"invitations": out})
}

// invite invites a person, or invites them again: the new link replaces
// the one sent before.
func (a *API) invite(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	var req struct {
		Email    string           `json:"email"`
		Name     string           `json:"name"`
		Role     tokenissuer.Role `json:"role"`
		TenantID string           `json:"tenant_id"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if by != nil && req.TenantID == "" && req.Role.TenantBound() {
		req.TenantID = by.TenantID // a tenant's token invites into its tenant
	}
	token, inv, err := a.accounts.Invite(r.Context(), by, tokenissuer.NewInvite{Email: req.Email, Name: req.Name, Role: req.Role, TenantID: req.TenantID})
	if err != nil {
		return err
	}
	v := invitationOf(inv)
	v.InvitationURL = a.invitationURL(token)
	return writeJSON(w, http.StatusCreated, v)
}

func (a *API) revokeInvitation(w http.ResponseWriter, r *http.Request, by *tokenissuer.Account) error {
	tenant := r.URL.Query().Get("tenant_id")
	if by != nil && tenant == "" {
		tenant = by.TenantID
	}
	if err := a.accounts.RevokeInvitation(r.Context(), by, r.PathValue("email"), tenant); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
