package portal

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/oauth2"
)

// visibleClient returns the client if the service shows it to the
// visitor; a client of another tenant is as absent as one that does not
// exist.
func (p *Portal) visibleClient(ctx context.Context, _ *visitor, id string) (*tokenissuer.Client, error) {
	c, err := p.admin.Client(ctx, id)
	if errors.Is(err, tokenissuer.ErrClientNotFound) {
		return nil, errNotFound
	}
	return c, err
}

func clientPath(id string) string { return "/portal/clients/" + url.PathEscape(id) }

type clientsData struct {
	Clients  []*tokenissuer.Client
	TenantID string
	// TenantName names TenantID for the heading; TenantNames every tenant
	// the visitor sees, for the list.
	TenantName  string
	TenantNames map[string]string
	// Leaks are the secrets revoked lately because they leaked.
	Leaks []leakNotice
	// Expiring counts the listed clients' secrets that stop working within
	// expiryWarning under their tenant's maximum secret age.
	Expiring int
	CanWrite bool
	// Next continues the list after the last client shown; "": no more.
	Next string
}

// clientsPageSize is how many clients a page lists.
const clientsPageSize = 100

func (p *Portal) clientsPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	q := r.URL.Query()
	tenantID := q.Get("tenant")
	if v.account.Role.TenantBound() {
		tenantID = v.account.TenantID
	}
	clients, err := p.admin.Clients(r.Context(), tokenissuer.ClientQuery{TenantID: tenantID, After: q.Get("after"), Limit: clientsPageSize + 1})
	if err != nil {
		return err
	}
	data := clientsData{Clients: clients, TenantID: tenantID, CanWrite: v.account.Role.CanWrite()}
	if data.TenantNames, _, err = p.tenantNames(r, v); err != nil {
		return err
	}
	if data.Leaks, err = p.recentLeaks(r); err != nil {
		return err
	}
	for _, c := range data.Clients {
		for _, exp := range p.secretExpiry(r, c) {
			if expiresSoon(exp) {
				data.Expiring++
			}
		}
	}
	if tenantID != "" {
		data.TenantName = cmp.Or(data.TenantNames[tenantID], tenantID)
	}
	if len(clients) > clientsPageSize {
		data.Clients = clients[:clientsPageSize]
		data.Next = data.Clients[clientsPageSize-1].ID
	}
	p.render(w, r, v, http.StatusOK, "clients", "Clients", data)
	return nil
}

type newClientData struct {
	Tenant  *tokenissuer.Tenant
	Tenants []*tokenissuer.Tenant
	Name    string
	Chosen  []string
	Error   string
}

// newClientTenant is the tenant a new client is for: the one chosen, else
// the visitor's own; the service says whether the visitor may see it.
func (p *Portal) newClientTenant(ctx context.Context, v *visitor, chosen string) (*tokenissuer.Tenant, error) {
	id := chosen
	if id == "" {
		id = v.account.TenantID
	}
	if id == "" {
		return nil, nil
	}
	t, err := p.admin.Tenant(ctx, id)
	if errors.Is(err, tokenissuer.ErrTenantNotFound) {
		return nil, errNotFound
	}
	return t, err
}

func (p *Portal) newClientPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	t, err := p.newClientTenant(r.Context(), v, r.URL.Query().Get("tenant"))
	if err != nil {
		return err
	}
	data := newClientData{Tenant: t}
	if t == nil {
		if data.Tenants, err = p.admin.Tenants(r.Context()); err != nil {
			return err
		}
	}
	p.render(w, r, v, http.StatusOK, "client-new", "New client", data)
	return nil
}

func (p *Portal) createClient(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	t, err := p.newClientTenant(r.Context(), v, r.PostForm.Get("tenant"))
	if err != nil {
		return err
	}
	if t == nil {
		return &pageError{status: http.StatusUnprocessableEntity, msg: "Choose the tenant the client belongs to."}
	}
	data := newClientData{Tenant: t, Name: strings.TrimSpace(r.PostForm.Get("name")), Chosen: r.PostForm["scope"]}
	fail := func(status int, msg string) error {
		data.Error = msg
		p.render(w, r, v, status, "client-new", "New client", data)
		return nil
	}
	if data.Name == "" {
		return fail(http.StatusUnprocessableEntity, "Give the client a name that says what it is, e.g. “Billing sync”.")
	}
	if len(data.Chosen) == 0 {
		return fail(http.StatusUnprocessableEntity, "Choose at least one scope: a client without scopes can call nothing.")
	}
	c, secret, err := p.admin.CreateClient(r.Context(), tokenissuer.NewClient{Name: data.Name, TenantID: t.ID, Scopes: data.Chosen})
	if err != nil {
		if status, msg, ok := userMessage(err); ok {
			return fail(status, msg)
		}
		return err
	}
	return p.redirectToSecret(w, r, v, c.ID, secret)
}

// redirectToSecret hands a new secret to the page that shows it once.
func (p *Portal) redirectToSecret(w http.ResponseWriter, r *http.Request, v *visitor, clientID, secret string) error {
	path := clientPath(clientID) + "/secret"
	if err := p.showOnce(w, v, path, shownOnce{For: clientID, Secret: secret}); err != nil {
		return err
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

type secretData struct {
	Client        *tokenissuer.Client
	Secret        string
	TokenEndpoint string
}

func (p *Portal) secretOnce(w http.ResponseWriter, r *http.Request, v *visitor) error {
	c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	shown, err := p.takeOnce(w, r, v, c.ID)
	if err != nil {
		p.render(w, r, v, http.StatusGone, "secret", "Secret", secretData{Client: c})
		return nil
	}
	p.render(w, r, v, http.StatusOK, "secret", "New secret", secretData{Client: c, Secret: shown.Secret, TokenEndpoint: p.opts.TokenEndpoint})
	return nil
}

type clientData struct {
	Client *tokenissuer.Client
	// Version is the client's version its forms were read at.
	Version string
	// Expiry is when each secret stops working under its tenant's maximum
	// secret age, by secret ID; absent when it does not.
	Expiry map[string]time.Time
	// TenantName is the name of the client's tenant.
	TenantName string
	CanWrite   bool
	Error      string
	// Limits is nil when the portal does not know the bounds.
	Limits *oauth2.ClientLimits
}

// limitsOf is the client's bounds and refusals, when the portal knows them.
func (p *Portal) limitsOf(clientID string) *oauth2.ClientLimits {
	if p.opts.ClientLimits == nil {
		return nil
	}
	l := p.opts.ClientLimits(clientID)
	return &l
}

func (p *Portal) clientPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	p.render(w, r, v, http.StatusOK, "client", c.Name, clientData{Client: c, Version: tokenissuer.ClientVersion(c), TenantName: p.tenantName(r, c.TenantID), Expiry: p.secretExpiry(r, c), CanWrite: v.account.Role.CanWrite(), Limits: p.limitsOf(c.ID)})
	return nil
}

// clientAction runs a change on a visible client; a refused change is shown
// on the client's page.
func (p *Portal) clientAction(w http.ResponseWriter, r *http.Request, v *visitor, change func(c *tokenissuer.Client) error) error {
	if err := writer(v); err != nil {
		return err
	}
	c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := change(c); err != nil {
		status, msg, ok := userMessage(err)
		if !ok || status == http.StatusNotFound {
			return err
		}
		if fresh, ferr := p.admin.Client(r.Context(), c.ID); ferr == nil {
			c = fresh
		}
		p.render(w, r, v, status, "client", c.Name, clientData{Client: c, Version: tokenissuer.ClientVersion(c), TenantName: p.tenantName(r, c.TenantID), Expiry: p.secretExpiry(r, c), CanWrite: true, Error: msg, Limits: p.limitsOf(c.ID)})
	}
	return nil
}

// secretExpiry is when each of c's secrets stops working under its
// tenant's maximum secret age.
func (p *Portal) secretExpiry(r *http.Request, c *tokenissuer.Client) map[string]time.Time {
	if c.TenantID == "" {
		return nil
	}
	t, err := p.admin.Tenant(r.Context(), c.TenantID)
	if err != nil {
		return nil
	}
	out := map[string]time.Time{}
	for _, s := range c.Secrets {
		if exp := t.SecretExpiry(s.CreatedAt); !exp.IsZero() {
			out[s.ID] = exp
		}
	}
	return out
}

// setKeys registers the client's public keys for private_key_jwt, at the
// version the form was read at.
func (p *Portal) setKeys(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.clientAction(w, r, v, func(c *tokenissuer.Client) error {
		keys := tokenissuer.ClientKeys{JWKSURI: strings.TrimSpace(r.PostForm.Get("jwks_uri")), Only: r.PostForm.Get("only") == "yes"}
		if jwks := strings.TrimSpace(r.PostForm.Get("jwks")); jwks != "" {
			keys.JWKS = []byte(jwks)
		}
		ctx := tokenissuer.WithExpectedVersion(r.Context(), r.PostForm.Get("version"))
		if _, err := p.admin.SetClientKeys(ctx, c.ID, keys); err != nil {
			return err
		}
		http.Redirect(w, r, clientPath(c.ID)+"?notice=client-keys", http.StatusSeeOther)
		return nil
	})
}

func (p *Portal) rotateSecret(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.clientAction(w, r, v, func(c *tokenissuer.Client) error {
		_, _, secret, err := p.admin.RotateSecret(r.Context(), c.ID)
		if err != nil {
			return err
		}
		return p.redirectToSecret(w, r, v, c.ID, secret)
	})
}

func (p *Portal) revokeSecret(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.clientAction(w, r, v, func(c *tokenissuer.Client) error {
		id := r.PostForm.Get("secret_id")
		if id == "" {
			return &pageError{status: http.StatusUnprocessableEntity, msg: "Choose the secret to revoke."}
		}
		if _, err := p.admin.RevokeSecret(r.Context(), c.ID, id); err != nil {
			return err
		}
		http.Redirect(w, r, clientPath(c.ID)+"?notice=secret-revoked", http.StatusSeeOther)
		return nil
	})
}

func (p *Portal) revokeTokens(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.clientAction(w, r, v, func(c *tokenissuer.Client) error {
		if err := p.admin.RevokeClientTokens(r.Context(), c.ID); err != nil {
			return err
		}
		http.Redirect(w, r, clientPath(c.ID)+"?notice=tokens-revoked", http.StatusSeeOther)
		return nil
	})
}

func (p *Portal) setClientStatus(status tokenissuer.ClientStatus) signedIn {
	return func(w http.ResponseWriter, r *http.Request, v *visitor) error {
		return p.clientAction(w, r, v, func(c *tokenissuer.Client) error {
			if _, err := p.admin.SetStatus(r.Context(), c.ID, status); err != nil {
				return err
			}
			notice := "client-enabled"
			if status == tokenissuer.ClientDisabled {
				notice = "client-disabled"
			}
			http.Redirect(w, r, clientPath(c.ID)+"?notice="+notice, http.StatusSeeOther)
			return nil
		})
	}
}

type editClientData struct {
	Client *tokenissuer.Client
	// Tenant is the client's tenant, whose ceiling bounds the scopes; nil
	// for a client of no tenant (operators type its scopes).
	Tenant  *tokenissuer.Tenant
	Version string
	Name    string
	Chosen  []string
	// Lifetime is how long a token issued before the change still works.
	Lifetime time.Duration
	Error    string
}

// editData is the edit form filled with c's current values.
func (p *Portal) editData(ctx context.Context, c *tokenissuer.Client) (editClientData, error) {
	d := editClientData{Client: c, Version: tokenissuer.ClientVersion(c), Name: c.Name, Chosen: c.Scopes, Lifetime: p.opts.TokenLifetime}
	if c.TokenLifetime > 0 {
		d.Lifetime = c.TokenLifetime
		if p.opts.MaxTokenLifetime > 0 {
			d.Lifetime = min(c.TokenLifetime, p.opts.MaxTokenLifetime)
		}
	}
	if c.TenantID != "" {
		t, err := p.admin.Tenant(ctx, c.TenantID)
		if err != nil {
			return d, err
		}
		d.Tenant = t
	}
	return d, nil
}

func (p *Portal) editClientPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	d, err := p.editData(r.Context(), c)
	if err != nil {
		return err
	}
	p.render(w, r, v, http.StatusOK, "client-edit", "Edit "+c.Name, d)
	return nil
}

// editClient renames the client and sets its scopes, each only when it
// changed, for the version the form was filled from: a form left open
// while someone else changed the client is refused, not applied over
// their change, and shown again with the current values.
func (p *Portal) editClient(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	name := r.PostForm.Get("name")
	scopes := r.PostForm["scope"]
	if c.TenantID == "" {
		scopes = strings.Fields(r.PostForm.Get("scopes"))
	}
	err = p.applyClientEdit(r.Context(), c, r.PostForm.Get("version"), name, scopes)
	if err == nil {
		http.Redirect(w, r, clientPath(c.ID)+"?notice=client-changed", http.StatusSeeOther)
		return nil
	}
	status, msg, ok := userMessage(err)
	if !ok || status == http.StatusNotFound {
		return err
	}
	fresh, ferr := p.admin.Client(r.Context(), c.ID)
	if ferr != nil {
		return ferr
	}
	d, derr := p.editData(r.Context(), fresh)
	if derr != nil {
		return derr
	}
	if !errors.Is(err, tokenissuer.ErrVersionMismatch) {
		// Keep what the person typed; a stale form shows the current values.
		d.Name, d.Chosen = name, scopes
	}
	d.Error = msg
	p.render(w, r, v, status, "client-edit", "Edit "+fresh.Name, d)
	return nil
}

func (p *Portal) applyClientEdit(ctx context.Context, c *tokenissuer.Client, version, name string, scopes []string) error {
	if version == "" {
		return &pageError{status: http.StatusUnprocessableEntity, msg: "The form is incomplete; open it again from the client's page."}
	}
	if len(scopes) == 0 {
		return &pageError{status: http.StatusUnprocessableEntity, msg: "Choose at least one scope: a client without scopes can call nothing. To stop it, disable it instead."}
	}
	if strings.TrimSpace(name) != c.Name {
		renamed, err := p.admin.RenameClient(tokenissuer.WithExpectedVersion(ctx, version), c.ID, name)
		if err != nil {
			return err
		}
		version = tokenissuer.ClientVersion(renamed)
	}
	if !sameSet(scopes, c.Scopes) {
		if _, err := p.admin.SetScopes(tokenissuer.WithExpectedVersion(ctx, version), c.ID, scopes); err != nil {
			return err
		}
	}
	return nil
}

func (p *Portal) deleteClientPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if err := writer(v); err != nil {
		return err
	}
	c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
	if err != nil {
		return err
	}
	p.render(w, r, v, http.StatusOK, "client-delete", "Delete "+c.Name, clientData{Client: c})
	return nil
}

func (p *Portal) deleteClient(w http.ResponseWriter, r *http.Request, v *visitor) error {
	return p.clientAction(w, r, v, func(c *tokenissuer.Client) error {
		if err := p.admin.DeleteClient(r.Context(), c.ID); err != nil {
			return err
		}
		http.Redirect(w, r, "/portal/clients?notice=client-deleted", http.StatusSeeOther)
		return nil
	})
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
