package portal

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// leakBannerAge is how long a revoked leak stays on the clients page.
const leakBannerAge = 30 * 24 * time.Hour

// leakNotice is a secret revoked because it leaked, for the banner.
type leakNotice struct {
	At                              time.Time
	ClientID, ClientName, Hint, URL string
}

// recentLeaks are the leaks of the visitor's tenants (an operator's: all)
// of the last leakBannerAge, newest first; the service keeps a tenant's
// people to their tenant's trail.
func (p *Portal) recentLeaks(r *http.Request) ([]leakNotice, error) {
	records, err := p.admin.Audit(r.Context(), tokenissuer.AuditQuery{Action: tokenissuer.ActionSecretLeaked, Newest: true,
		Since: time.Now().Add(-leakBannerAge), Limit: 5})
	if err != nil {
		return nil, err
	}
	out := make([]leakNotice, 0, len(records))
	for _, rec := range records {
		var after struct {
			Name, Hint, URL string
		}
		_ = json.Unmarshal(rec.After, &after)
		out = append(out, leakNotice{At: rec.At, ClientID: rec.TargetID, ClientName: after.Name, Hint: after.Hint, URL: after.URL})
	}
	return out, nil
}

type reportLeakData struct {
	Error string
	// Done is set once a report was taken; Revoked names the client whose
	// secret it was, when the visitor may see it.
	Done    bool
	Revoked *tokenissuer.Client
}

func (p *Portal) reportLeakPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	p.render(w, r, v, http.StatusOK, "report-leak", "Report a leaked secret", reportLeakData{})
	return nil
}

// reportLeak revokes a secret a person found where it should not be. Anyone
// signed in may: holding the secret is the authority. What they are told
// names the client only when it is one they may see.
func (p *Portal) reportLeak(w http.ResponseWriter, r *http.Request, v *visitor) error {
	secret := strings.TrimSpace(r.PostForm.Get("secret"))
	if secret == "" {
		p.render(w, r, v, http.StatusUnprocessableEntity, "report-leak", "Report a leaked secret", reportLeakData{Error: "Paste the secret you found."})
		return nil
	}
	c, err := p.admin.RevokeLeakedSecret(r.Context(), tokenissuer.LeakReport{Secret: secret, URL: strings.TrimSpace(r.PostForm.Get("url")), Source: "portal"})
	if err != nil {
		return err
	}
	data := reportLeakData{Done: true}
	if c != nil {
		if visible, err := p.admin.Client(r.Context(), c.ID); err == nil {
			data.Revoked = visible
		}
	}
	p.render(w, r, v, http.StatusOK, "report-leak", "Report a leaked secret", data)
	return nil
}
