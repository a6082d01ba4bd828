package portal

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the parsed templates, each with the layout.
type pages struct{ byName map[string]*template.Template }

var templateFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"age":      age,
	"lastUsed": lastUsed,
	"tenant":   tenantLabel,
	"soon":     expiresSoon,
	"idle":     idle,
	"has":      func(list []string, s string) bool { return slices.Contains(list, s) },
	"join":     strings.Join,
}

// age says how long ago t was, in the largest unit that fits.
func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

// expiryWarning is how long ahead the portal warns that a secret stops
// working under its tenant's maximum secret age.
const expiryWarning = 14 * 24 * time.Hour

// expiresSoon reports whether a secret expiring at t is within the warning.
func expiresSoon(t time.Time) bool { return !t.IsZero() && time.Until(t) < expiryWarning }

// tenantLabel names a tenant by its name beside its ID, when the name is
// known and says more than the ID.
func tenantLabel(names map[string]string, id string) string {
	if n := names[id]; n != "" && n != id {
		return n + " (" + id + ")"
	}
	return id
}

// lastUsed says when a client or secret last got a token.
func lastUsed(t time.Time) string {
	if t.IsZero() {
		return "no token yet"
	}
	return age(t)
}

// idleAfter is how long a secret goes without a token before the portal
// points it out: a deployment that still holds it asks for a token at
// least daily, so a day without one says nothing uses it.
const idleAfter = 24 * time.Hour

// idle says, for a secret that got no token in idleAfter or longer, for how
// long ("12 days"); "" for one in use.
func idle(s tokenissuer.Secret) string {
	d := time.Since(s.IdleSince())
	if d < idleAfter {
		return ""
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func parsePages() (*pages, error) {
	layout, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("portal layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	ps := &pages{byName: map[string]*template.Template{}}
	for _, name := range names {
		if path.Base(name) == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return nil, fmt.Errorf("portal page %s: %w", name, err)
		}
		ps.byName[strings.TrimSuffix(path.Base(name), ".html")] = t
	}
	return ps, nil
}

// view is what every page gets: the layout's part and the page's Data.
type view struct {
	Title   string
	Account *tokenissuer.Account
	CSRF    string
	// Notice confirms what the last action did.
	Notice string
	// Section is the part of the portal the page belongs to (clients,
	// audit, ...), marked as the current one in the navigation.
	Section string
	Data    any
}

// notices are the confirmations a redirect may ask for (?notice=...): fixed
// texts, so a link cannot put words in the portal's mouth.
var notices = map[string]string{
	"client-disabled":          "The client is disabled: the token endpoint refuses it, and the API refuses the tokens it held within seconds.",
	"client-enabled":           "The client is enabled again.",
	"client-deleted":           "The client is deleted.",
	"client-keys":              "The client's keys are saved: assertions signed with them get tokens from now on.",
	"invitation-revoked":       "The invitation is revoked: its link no longer works.",
	"client-changed":           "Saved. New tokens carry the new scopes; tokens issued before keep theirs until they expire.",
	"secret-revoked":           "The secret is revoked: it no longer gets tokens.",
	"tokens-revoked":           "Every token the client held is revoked: the API refuses them within seconds. New tokens work.",
	"tenant-created":           "The tenant is created.",
	"tenant-updated":           "The tenant is updated.",
	"tenant-deleted":           "The tenant is deleted.",
	"second-factor-required":   "Your organisation requires a second factor for everyone. Set one up below to continue: it takes a minute with an authenticator app.",
	"key-rotated":              "A new signing key is published; it starts signing once verifiers have had time to fetch it.",
	"account-updated":          "The account is updated.",
	"account-deleted":          "The account is deleted.",
	"password-changed":         "Your password is changed; your other sessions are signed out.",
	"2fa-removed":              "The second factor is removed.",
	"sign-in-failures-cleared": "Failed sign-ins are forgotten: that person's sign-ins are no longer slowed.",
	"signed-out":               "You are signed out.",
	"invitation-used":          "Your account is ready. Sign in with your email and new password.",
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, v *visitor, status int, name, title string, data any) {
	t, ok := p.pages.byName[name]
	if !ok {
		p.opts.Log.Error("portal page missing", "page", name)
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	section, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/portal/"), "/")
	vw := view{Title: title, Data: data, Notice: notices[r.URL.Query().Get("notice")], Section: section}
	if v != nil && v.session != nil && !v.session.Pending {
		vw.Account, vw.CSRF = v.account, v.session.CSRFToken
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", vw); err != nil {
		p.opts.Log.Error("rendering a portal page failed", "page", name, "err", err)
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderForm renders a page that has its own CSRF token (sign-in forms,
// before a session exists).
func (p *Portal) renderForm(w http.ResponseWriter, r *http.Request, status int, name, title, csrf string, data any) {
	p.render(w, r, &visitor{session: &tokenissuer.Session{CSRFToken: csrf}}, status, name, title, data)
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/portal/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}
