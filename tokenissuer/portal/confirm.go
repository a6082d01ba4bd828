package portal

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// confirmation asks before a change that cannot simply be taken back,
// saying what it will do.
type confirmation struct {
	Title, Effect, Button string
	// Action is where the confirmed form goes: the same path, with the
	// same fields and confirmed=yes.
	Action string
	Fields []formField
	Back   string
}

type formField struct{ Name, Value string }

// describer says what a change will do, for the page that asks first.
type describer func(r *http.Request, v *visitor) (confirmation, error)

// confirmFirst runs h for a form that carries confirmed=yes, and otherwise
// shows what h would do and asks: one click never destroys. The question
// is a page of its own, so it works without JavaScript.
func (p *Portal) confirmFirst(describe describer, h signedIn) signedIn {
	return func(w http.ResponseWriter, r *http.Request, v *visitor) error {
		if r.PostForm.Get("confirmed") == "yes" {
			return h(w, r, v)
		}
		if err := writer(v); err != nil {
			return err
		}
		c, err := describe(r, v)
		if err != nil {
			return err
		}
		c.Action = r.URL.Path
		for name, values := range r.PostForm {
			if name == "csrf" || name == "confirmed" {
				continue
			}
			for _, value := range values {
				c.Fields = append(c.Fields, formField{name, value})
			}
		}
		slices.SortFunc(c.Fields, func(a, b formField) int { return strings.Compare(a.Name+"\x00"+a.Value, b.Name+"\x00"+b.Value) })
		p.render(w, r, v, http.StatusOK, "confirm", c.Title, c)
		return nil
	}
}

// aboutClient describes a change to the client the path names.
func (p *Portal) aboutClient(describe func(r *http.Request, c *tokenissuer.Client) confirmation) describer {
	return func(r *http.Request, v *visitor) (confirmation, error) {
		c, err := p.visibleClient(r.Context(), v, r.PathValue("id"))
		if err != nil {
			return confirmation{}, err
		}
		conf := describe(r, c)
		conf.Back = clientPath(c.ID)
		return conf, nil
	}
}

// liveTokens says whether a client that last got a token at lastUsed may
// still hold a live one, from its token lifetime: what a revocation will
// actually refuse.
func (p *Portal) liveTokens(c *tokenissuer.Client) string {
	lifetime := p.opts.TokenLifetime
	if c.TokenLifetime > 0 {
		lifetime = c.TokenLifetime
	}
	switch {
	case c.LastUsedAt.IsZero():
		return "It has not got a token yet, as far as this issuer recorded. "
	case lifetime > 0 && time.Since(c.LastUsedAt) > lifetime+usageSlack:
		return "It last got a token " + age(c.LastUsedAt) + ", and its tokens live " + lifetime.String() + ": every one it holds has expired already. "
	}
	return "It last got a token " + age(c.LastUsedAt) + ": it holds live tokens, and they will be refused. "
}

// usageSlack covers how late a last use is written (once a minute).
const usageSlack = 2 * time.Minute

func (p *Portal) confirmRevokeTokens() describer {
	return p.aboutClient(func(_ *http.Request, c *tokenissuer.Client) confirmation {
		return confirmation{Title: "Revoke every token of “" + c.Name + "”?", Button: "Revoke all its tokens",
			Effect: p.liveTokens(c) + "The API refuses every token the client holds now, within seconds. Its next token request still works: " +
				"copies of the client that keep running get new tokens at once. To stop them, disable the client or revoke the secret they use."}
	})
}

func (p *Portal) confirmRevokeSecret() describer {
	return p.aboutClient(func(r *http.Request, c *tokenissuer.Client) confirmation {
		id := r.PostForm.Get("secret_id")
		use := ""
		for _, s := range c.Secrets {
			if s.ID != id {
				continue
			}
			if s.Hint != "" {
				use = "This is the secret ending in …" + s.Hint + ". "
			}
			if s.LastUsedAt.IsZero() {
				use += "It has not got a token yet. "
			} else {
				use += "It last got a token " + age(s.LastUsedAt) + ": whatever uses it stops getting tokens. "
			}
		}
		return confirmation{Title: "Revoke secret " + id + " of “" + c.Name + "”?", Button: "Revoke the secret",
			Effect: use + "Whatever still uses this secret gets no more tokens; the tokens it already got work until they expire " +
				"(revoke all the client's tokens to end them now). It cannot be undone: a new secret is a rotation."}
	})
}

func (p *Portal) confirmDisableClient() describer {
	return p.aboutClient(func(_ *http.Request, c *tokenissuer.Client) confirmation {
		return confirmation{Title: "Disable “" + c.Name + "”?", Button: "Disable the client",
			Effect: p.liveTokens(c) + "The token endpoint refuses the client, and the API refuses the tokens it holds within seconds. Enable it again at any time."}
	})
}

func (p *Portal) confirmDisableTenant(r *http.Request, _ *visitor) (confirmation, error) {
	t, err := p.admin.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		return confirmation{}, err
	}
	return confirmation{Title: "Disable tenant “" + t.Name + "”?", Button: "Disable the tenant", Back: "/portal/tenants/" + t.ID,
		Effect: "Every client of the tenant is refused tokens, the API refuses the tokens they hold within seconds, and the tenant's people are signed out. Enable it again at any time."}, nil
}

func (p *Portal) confirmDeleteTenant(r *http.Request, _ *visitor) (confirmation, error) {
	t, err := p.admin.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		return confirmation{}, err
	}
	return confirmation{Title: "Delete tenant “" + t.Name + "”?", Button: "Delete the tenant", Back: "/portal/tenants/" + t.ID,
		Effect: "The tenant and its pending invitations are removed, and any token still naming it is refused. A tenant that still has clients or people is not deleted: delete them first. The audit trail keeps what happened."}, nil
}

func (p *Portal) confirmRotateKeys(r *http.Request, _ *visitor) (confirmation, error) {
	// The keys are the operators': the service says who may see them.
	if _, err := p.admin.SigningKeys(r.Context(), p.keys); err != nil {
		return confirmation{}, err
	}
	return confirmation{Title: "Rotate the signing key?", Button: "Rotate the signing key", Back: "/portal/keys",
		Effect: "A new key is published at once and signs once every verifier has had time to fetch it (keys.publish_delay). Tokens signed by the old key work until they expire. Rotate when a key may have leaked, or on your schedule."}, nil
}

// aboutPerson describes a change to the person the path names, as the
// People page lists them.
func (p *Portal) aboutPerson(title, button, effect string) describer {
	return func(r *http.Request, v *visitor) (confirmation, error) {
		who := "this person"
		if people, err := p.accounts.Accounts(r.Context(), v.account); err == nil {
			for _, a := range people {
				if a.ID == r.PathValue("id") {
					who = a.Name + " (" + a.Email + ")"
				}
			}
		}
		return confirmation{Title: strings.ReplaceAll(title, "WHO", who), Button: button, Effect: effect, Back: "/portal/people"}, nil
	}
}

func (p *Portal) aboutInvitation(r *http.Request, _ *visitor) (confirmation, error) {
	return confirmation{Title: "Revoke the invitation of " + r.PostForm.Get("email") + "?", Button: "Revoke the invitation", Back: "/portal/people",
		Effect: "The link stops working at once. Invite them again to send a new one."}, nil
}
