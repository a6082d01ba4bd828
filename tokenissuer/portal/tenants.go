package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
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
	// Name and Ceiling are the forms' values: the tenant's, or a refused
	// form's.
	Name, Ceiling string
	// Version is the tenant's version the forms were read at.
	Version string
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
	data.Tenant, data.Clients, data.Version = t, clients, tokenissuer.TenantVersion(t)
	if data.Ceiling == "" {
		data.Ceiling = strings.Join(t.ScopeCeiling, " ")
	}
	if data.Name == "" {
		data.Name = t.Name
	}
	p.render(w, r, v, status, "tenant", t.Name, data)
	return nil
}

// tenantChange runs a change to the tenant the path names, made at the
// version the form was read at: a change made meanwhile (another tab,
// someone else) refuses it, and the page shows the current values.
// refused is what the page shows again when the change is refused (the
// change may fill it in).
func (p *Portal) tenantChange(w http.ResponseWriter, r *http.Request, v *visitor, refused *tenantData, change func(ctx context.Context, id string) error) error {
	id := r.PathValue("id")
	version := r.PostForm.Get("version")
	if version == "" {
		return &pageError{status: http.StatusUnprocessableEntity, msg: "The form is incomplete; open the tenant's page again."}
	}
	if err := change(tokenissuer.WithExpectedVersion(r.Context(), version), id); err != nil {
		status, msg, ok := userMessage(err)
		if !ok || status == http.StatusNotFound || status == http.StatusForbidden {
			return err
		}
		shown := *refused
		if errors.Is(err, tokenissuer.ErrVersionMismatch) {
			shown = tenantData{} // the current values, not the stale form's
		}
		shown.Error = msg
		return p.showTenant(w, r, v, status, shown)
	}
	http.Redirect(w, r, "/portal/tenants/"+url.PathEscape(id)+"?notice=tenant-updated", http.StatusSeeOther)
	return nil
}

func (p *Portal) setCeiling(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ceiling, force := r.PostForm.Get("ceiling"), r.PostForm.Get("force") == "yes"
	refused := &tenantData{Ceiling: ceiling}
	return p.tenantChange(w, r, v, refused, func(ctx context.Context, id string) error {
		_, err := p.admin.SetTenantCeiling(ctx, id, strings.Fields(ceiling), force)
		var ce *tokenissuer.CeilingError
		refused.Force = errors.As(err, &ce)
		return err
	})
}

func (p *Portal) renameTenant(w http.ResponseWriter, r *http.Request, v *visitor) error {
	name := r.PostForm.Get("name")
	return p.tenantChange(w, r, v, &tenantData{Name: name}, func(ctx context.Context, id string) error {
		_, err := p.admin.RenameTenant(ctx, id, name)
		return err
	})
}

func (p *Portal) setSecondFactorRequired(w http.ResponseWriter, r *http.Request, v *visitor) error {
	required := r.PostForm.Get("required") == "yes"
	return p.tenantChange(w, r, v, &tenantData{}, func(ctx context.Context, id string) error {
		_, err := p.admin.SetSecondFactorRequired(ctx, id, required)
		return err
	})
}

func (p *Portal) setMaxSecretAge(w http.ResponseWriter, r *http.Request, v *visitor) error {
	days, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("days")))
	if err != nil {
		days = -1 // the service says what is allowed
	}
	return p.tenantChange(w, r, v, &tenantData{}, func(ctx context.Context, id string) error {
		_, err := p.admin.SetMaxSecretAge(ctx, id, days)
		return err
	})
}

func (p *Portal) deleteTenant(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	if version := r.PostForm.Get("version"); version != "" {
		ctx = tokenissuer.WithExpectedVersion(ctx, version)
	}
	if err := p.admin.DeleteTenant(ctx, r.PathValue("id")); err != nil {
		status, msg, ok := userMessage(err)
		if !ok || status == http.StatusNotFound || status == http.StatusForbidden {
			return err
		}
		return p.showTenant(w, r, v, status, tenantData{Error: msg})
	}
	http.Redirect(w, r, "/portal/tenants?notice=tenant-deleted", http.StatusSeeOther)
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
