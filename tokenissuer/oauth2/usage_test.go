package oauth2_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
)

// TestLastUseIsRecordedPerSecretInBatches: a token records when its client
// and the very secret it used last got one, in memory until a flush; the
// other secret of a rotation stays unused, and failures record nothing.
func TestLastUseIsRecordedPerSecretInBatches(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	ti := startIssuer(t, testConfig(t.TempDir()), clock)
	ctx := operatorContext()
	c, oldSecret := ti.createClient(tokenissuer.NewClient{ID: "acme-app", TenantID: "acme", Scopes: []string{"a"}})
	if got := c.Secrets[0].Hint; got != oldSecret[len(oldSecret)-4:] {
		t.Fatalf("the secret's hint is %q, want the secret's last four characters", got)
	}
	clock.Advance(time.Hour)
	_, added, newSecret, err := ti.admin.RotateSecret(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if added.Hint != newSecret[len(newSecret)-4:] {
		t.Fatalf("the rotated secret's hint is %q", added.Hint)
	}

	clock.Advance(time.Hour)
	usedAt := clock.Now()
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, newSecret)); r.status != http.StatusOK {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials&client_id="+c.ID+"&client_secret=wrong", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %d", r.status)
	}
	if got, _ := ti.store.Client(ctx, c.ID); !got.LastUsedAt.IsZero() {
		t.Fatal("a token request wrote to the store; uses are written in batches")
	}
	if err := ti.server.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := ti.store.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastUsedAt.Equal(usedAt) {
		t.Errorf("client last used %v, want %v", got.LastUsedAt, usedAt)
	}
	if !got.Secrets[0].LastUsedAt.IsZero() || !got.Secrets[1].LastUsedAt.Equal(usedAt) {
		t.Errorf("secrets last used %v and %v; want never and %v (the new one got the token)", got.Secrets[0].LastUsedAt, got.Secrets[1].LastUsedAt, usedAt)
	}

	clock.Advance(time.Minute)
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials&client_id="+c.ID+"&client_secret="+url.QueryEscape(oldSecret), ""); r.status != http.StatusOK {
		t.Fatalf("token with the old secret: %d %v", r.status, r.body)
	}
	if err := ti.server.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ = ti.store.Client(ctx, c.ID)
	if !got.Secrets[0].LastUsedAt.Equal(clock.Now()) || !got.Secrets[1].LastUsedAt.Equal(usedAt) || !got.LastUsedAt.Equal(clock.Now()) {
		t.Errorf("after the old secret's use: client %v, secrets %v %v", got.LastUsedAt, got.Secrets[0].LastUsedAt, got.Secrets[1].LastUsedAt)
	}
}

// TestSecretsPastTheTenantsMaximumAgeStopWorking: a tenant that bounds
// its secrets' age has an old secret refused (invalid_client, saying why)
// while a rotated one works.
func TestSecretsPastTheTenantsMaximumAgeStopWorking(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New()
	ti := startIssuer(t, testConfig(t.TempDir()), clock)
	c, old := ti.createClient(tokenissuer.NewClient{ID: "aging", TenantID: "acme", Scopes: []string{"a"}})
	if _, err := ti.admin.SetMaxSecretAge(operatorContext(), "acme", 30); err != nil {
		t.Fatal(err)
	}
	clock.Advance(29 * 24 * time.Hour)
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, old)); r.status != http.StatusOK {
		t.Fatalf("a 29-day-old secret: %d %v", r.status, r.body)
	}
	_, _, fresh, err := ti.admin.RotateSecret(operatorContext(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * 24 * time.Hour)
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, old))
	if r.status != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(r.body["error_description"]), "older than its tenant allows (30 days)") {
		t.Fatalf("a 31-day-old secret: %d %v", r.status, r.body)
	}
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, fresh)); r.status != http.StatusOK {
		t.Fatalf("the rotated secret: %d %v", r.status, r.body)
	}
	if _, err := ti.admin.SetMaxSecretAge(operatorContext(), "acme", 0); err != nil {
		t.Fatal(err)
	}
	if r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(c.ID, old)); r.status != http.StatusOK {
		t.Fatalf("the old secret once the bound is lifted: %d %v", r.status, r.body)
	}
}
