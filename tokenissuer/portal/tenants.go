package portal

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis/portcullis/tokenissuer"
)

type tenantsData struct {
	Tenants []*tokenissuer.Tenant
	// The create form, shown again when refused.
	ID, Name, Ceiling string
	Error             string
}

func (p *Portal) tenantsPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	tenants, err := p.admin.Tenants(r.Context())
	if err != nil {
		return err
	}
	p.render(w, r, v, http.StatusOK, "tenants", "Tenants", tenantsData{Tenants: tenants})
	return nil
}

func (p *Portal) createTenant(w http.ResponseWriter, r *http.Request, v *visitor) error {
	data := tenantsData{ID: strings.TrimSpace(r.PostForm.Get("id")), Name: strings.TrimSpace(r.PostForm.Get("name")), Ceiling: r.PostForm.Get("ceiling")}
	t, err := p.admin.CreateTenant(r.Context(), tokenissuer.NewTenant{ID: data.ID, Name: data.Name, ScopeCeiling: strings.Fields(data.Ceiling)})
	if err != nil {
		status, msg, ok := userMessage(err)
		if !ok {
			return err
		}
		if data.Tenants, err = p.admin.Tenants(r.Context()); err != nil {
			return err
		}
		data.Error = msg
		p.render(w, r, v, status, "tenants", "Tenants", data)
		return nil
	}
	http.Redirect(w, r, "/portal/tenants/"+url.PathEscape(t.ID)+"?notice=tenant-created", http.StatusSeeOther)
	return nil
}

type tenantData struct {
	Tenant  *tokenissuer.Tenant
	Clients []*tokenissuer.Client
	Ceiling string
	// Force is offered when narrowing the ceiling was refused.
	Force bool
	Error string
}

func (p *Portal) tenantPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.showTenant(w, r, v, http.StatusOK, tenantData{})
}

func (p *Portal) showTenant(w http.ResponseWriter, r *http.Request, v *visitor, status int, data tenantData) error {
	t, err := p.admin.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	clients, err := p.admin.Clients(r.Context(), tokenissuer.ClientQuery{TenantID: t.ID, Limit: clientsPageSize})
	if err != nil {
		return err
	}
	data.Tenant, data.Clients = t, clients
	if data.Ceiling == "" {
		data.Ceiling = strings.Join(t.ScopeCeiling, " ")
	}
	p.render(w, r, v, status, "tenant", t.Name, data)
	return nil
}

func (p *Portal) setCeiling(w http.ResponseWriter, r *http.Request, v *visitor) error {
	id := r.PathValue("id")
	ceiling := r.PostForm.Get("ceiling")
	if _, err := p.admin.SetTenantCeiling(r.Context(), id, strings.Fields(ceiling), r.PostForm.Get("force") == "yes"); err != nil {
		status, msg, ok := userMessage(err)
		if !ok || status == http.StatusNotFound || status == http.StatusForbidden {
			return err
		}
		_, force := err.(*tokenissuer.CeilingError)
		return p.showTenant(w, r, v, status, tenantData{Ceiling: ceiling, Force: force, Error: msg})
	}
	http.Redirect(w, r, "/portal/tenants/"+url.PathEscape(id)+"?notice=tenant-updated", http.StatusSeeOther)
	return nil
}

func (p *Portal) setTenantStatus(status tokenissuer.TenantStatus) signedIn {
	return func(w http.ResponseWriter, r *http.Request, v *visitor) error {
		id := r.PathValue("id")
		if _, err := p.admin.SetTenantStatus(r.Context(), id, status); err != nil {
			return err
		}
		http.Redirect(w, r, "/portal/tenants/"+url.PathEscape(id)+"?notice=tenant-updated", http.StatusSeeOther)
		return nil
	}
}

func (p *Portal) keysPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	keys, err := p.admin.SigningKeys(r.Context(), p.keys)
	if err != nil {
		return err
	}
	p.render(w, r, v, http.StatusOK, "keys", "Signing keys", keys)
	return nil
}

func (p *Portal) rotateKeys(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if _, err := p.admin.RotateSigningKey(r.Context(), p.keys); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/keys?notice=key-rotated", http.StatusSeeOther)
	return nil
}
