package portal

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// auditPageSize is how many records a page shows.
const auditPageSize = 50

// maxAuditExport bounds one export; a longer trail is exported a time range
// at a time.
const maxAuditExport = 10_000

// auditFilter is the audit page's filter form, as the URL carries it.
type auditFilter struct {
	Who, What, Target, From, To, Tenant string
}

// query turns the filter into the service's query, or says what is wrong
// with it in the form's words.
func (f auditFilter) query() (tokenissuer.AuditQuery, error) {
	q := tokenissuer.AuditQuery{TargetID: f.Target, Action: f.What, TenantID: f.Tenant, Newest: true}
	if who := f.Who; who != "" {
		switch {
		case strings.Contains(who, ":"):
			q.Actor = who
		case strings.Contains(who, "@"):
			q.Actor = "account:" + tokenissuer.NormalizeEmail(who)
		default:
			q.Actor = "client:" + who
		}
	}
	for _, d := range []struct {
		value, name string
		dst         *time.Time
		nextDay     bool
	}{{f.From, "From", &q.Since, false}, {f.To, "To", &q.Until, true}} {
		if d.value == "" {
			continue
		}
		day, err := time.Parse(time.DateOnly, d.value)
		if err != nil {
			return q, fmt.Errorf("%s must be a date such as 2026-12-01", d.name)
		}
		if d.nextDay { // "to" includes its whole day
			day = day.AddDate(0, 0, 1)
		}
		*d.dst = day
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, fmt.Errorf("from must not be after to")
	}
	return q, nil
}

// values is the filter as URL parameters, for links that keep it.
func (f auditFilter) values() url.Values {
	v := url.Values{}
	for name, value := range map[string]string{"who": f.Who, "what": f.What, "target": f.Target, "from": f.From, "to": f.To, "tenant": f.Tenant} {
		if value != "" {
			v.Set(name, value)
		}
	}
	return v
}

func auditFilterFrom(r *http.Request) auditFilter {
	q := r.URL.Query()
	get := func(name string) string { return strings.TrimSpace(q.Get(name)) }
	return auditFilter{Who: get("who"), What: get("what"), Target: get("target"), From: get("from"), To: get("to"), Tenant: get("tenant")}
}

type auditData struct {
	Filter  auditFilter
	Kinds   []struct{ Value, Label string }
	Tenants []*tokenissuer.Tenant
	Lines   []auditLine
	Error   string
	// Older continues the listing before the last record shown; "" when
	// there is nothing older. Query is the filter, for the export links.
	Older, Query string
}

// auditPage lists the audit trail newest first, told as sentences, under
// the filter; the service keeps a tenant's people to their tenant.
func (p *Portal) auditPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	f := auditFilterFrom(r)
	data := auditData{Filter: f, Kinds: auditKinds, Query: f.values().Encode()}
	names, tenants, err := p.tenantNames(r, v)
	if err != nil {
		return err
	}
	data.Tenants = tenants
	q, err := f.query()
	if err != nil {
		data.Error = err.Error()
		p.render(w, r, v, http.StatusBadRequest, "audit", "Audit trail", data)
		return nil
	}
	q.BeforeSeq, _ = strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	q.Limit = auditPageSize + 1
	records, err := p.admin.Audit(r.Context(), q)
	if err != nil {
		return err
	}
	if len(records) > auditPageSize {
		records = records[:auditPageSize]
		older := f.values()
		older.Set("before", strconv.FormatInt(records[auditPageSize-1].Seq, 10))
		data.Older = older.Encode()
	}
	for _, rec := range records {
		data.Lines = append(data.Lines, describe(rec, names))
	}
	p.render(w, r, v, http.StatusOK, "audit", "Audit trail", data)
	return nil
}

// tenantNames maps the tenants the visitor sees to their names.
func (p *Portal) tenantNames(r *http.Request, v *visitor) (map[string]string, []*tokenissuer.Tenant, error) {
	tenants, err := p.admin.Tenants(r.Context())
	if err != nil {
		return nil, nil, err
	}
	names := make(map[string]string, len(tenants))
	for _, t := range tenants {
		names[t.ID] = t.Name
	}
	if v.account.TenantID != "" {
		tenants = nil // one tenant: no choice to offer
	}
	return names, tenants, nil
}

// tenantName is the name of a tenant the visitor sees, or "" (no tenant,
// or one the service does not show them).
func (p *Portal) tenantName(r *http.Request, id string) string {
	if id == "" {
		return ""
	}
	t, err := p.admin.Tenant(r.Context(), id)
	if err != nil {
		return ""
	}
	return t.Name
}

// auditExport answers the filtered trail, newest first, as CSV or JSON
// (?format=), at most maxAuditExport records; Portcullis-Export-Truncated
// says when more matched.
func (p *Portal) auditExport(w http.ResponseWriter, r *http.Request, v *visitor) error {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		http.Error(w, "format must be csv or json", http.StatusBadRequest)
		return nil
	}
	q, err := auditFilterFrom(r).query()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil
	}
	names, _, err := p.tenantNames(r, v)
	if err != nil {
		return err
	}
	var lines []auditLine
	for len(lines) <= maxAuditExport {
		q.Limit = maxAuditExport + 1 - len(lines)
		page, err := p.admin.Audit(r.Context(), q)
		if err != nil {
			return err
		}
		for _, rec := range page {
			lines = append(lines, describe(rec, names))
		}
		if len(page) == 0 || len(page) < q.PageLimit() {
			break
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
	if len(lines) > maxAuditExport {
		lines = lines[:maxAuditExport]
		w.Header().Set("Portcullis-Export-Truncated", "true")
	}
	name := "audit-" + time.Now().UTC().Format("20060102-150405") + "." + format
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if format == "json" {
		if lines == nil {
			lines = []auditLine{}
		}
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(lines)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "at", "who", "actor", "address", "action", "summary", "changes", "target_type", "target_id", "tenant_id", "tenant_name", "before", "after"})
	for _, l := range lines {
		row := []string{strconv.FormatInt(l.Seq, 10), l.At.UTC().Format(time.RFC3339), l.Who, l.Actor, l.Address, l.Action, l.Summary,
			strings.Join(l.Changes, "; "), l.TargetType, l.TargetID, l.TenantID, l.TenantName, string(l.Before), string(l.After)}
		for i := range row {
			row[i] = spreadsheetSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return nil // the client went away
		}
	}
	cw.Flush()
	return nil
}

// spreadsheetSafe keeps a cell from being read as a formula by the
// spreadsheet the CSV is opened in (names and IDs come from customers):
// one that starts like a formula is prefixed with an apostrophe.
func spreadsheetSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}
