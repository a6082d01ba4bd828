package adminapi

import (
	"net/http"

	"github.com/portcullis/portcullis/tokenissuer"
)

// writeTenant answers with a tenant and its version as ETag.
func writeTenant(w http.ResponseWriter, status int, t *tokenissuer.Tenant) error {
	w.Header().Set("ETag", etag(tokenissuer.TenantVersion(t)))
	return writeJSON(w, status, t)
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request, _ caller) error {
	all, err := a.admin.Tenants(r.Context())
	if err != nil {
		return err
	}
	if all == nil {
		all = []*tokenissuer.Tenant{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tenants": all})
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req struct {
		ID           string   `json:"tenant_id"`
		Name         string   `json:"name"`
		ScopeCeiling []string `json:"scope_ceiling"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.admin.CreateTenant(r.Context(), tokenissuer.NewTenant{ID: req.ID, Name: req.Name, ScopeCeiling: req.ScopeCeiling})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/tenants/"+t.ID)
	return writeTenant(w, http.StatusCreated, t)
}

// getTenant shows a tenant to operators, and to its own tenant's callers
// (who see their scope ceiling); another tenant does not exist for them.
func (a *API) getTenant(w http.ResponseWriter, r *http.Request, _ caller) error {
	t, err := a.admin.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeTenant(w, http.StatusOK, t)
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request, _ caller) error {
	if err := a.admin.DeleteTenant(withIfMatch(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) renameTenant(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.admin.RenameTenant(withIfMatch(r), r.PathValue("id"), req.Name)
	if err != nil {
		return err
	}
	return writeTenant(w, http.StatusOK, t)
}

func (a *API) setCeiling(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req struct {
		ScopeCeiling []string `json:"scope_ceiling"`
		// Force narrows the clients that hold scopes outside the ceiling.
		Force bool `json:"force"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.admin.SetTenantCeiling(withIfMatch(r), r.PathValue("id"), req.ScopeCeiling, req.Force)
	if err != nil {
		return err
	}
	return writeTenant(w, http.StatusOK, t)
}

func (a *API) setTenantStatus(status tokenissuer.TenantStatus) handler {
	return func(w http.ResponseWriter, r *http.Request, _ caller) error {
		t, err := a.admin.SetTenantStatus(withIfMatch(r), r.PathValue("id"), status)
		if err != nil {
			return err
		}
		return writeTenant(w, http.StatusOK, t)
	}
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ caller) error {
	keys, err := a.admin.SigningKeys(r.Context(), a.keys)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request, _ caller) error {
	if _, err := a.admin.RotateSigningKey(r.Context(), a.keys); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": a.keys.Keys()})
}
