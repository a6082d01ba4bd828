package oauth2_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

func publishedKIDs(t *testing.T, km *keys.Manager) map[string]bool {
	t.Helper()
	set, err := jwk.Parse(km.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kids[k.KeyID()] = true
	}
	return kids
}

func signingKID(t *testing.T, ti *testIssuer, id, secret string) string {
	t.Helper()
	r := postToken(t, ti.http.URL, formType, "grant_type=client_credentials", basic(id, secret))
	if r.status != http.StatusOK {
		t.Fatalf("token request: %d %v", r.status, r.body)
	}
	_, hdr := verifyToken(t, ti, r.body["access_token"].(string))
	return hdr.KeyID()
}

// TestKeyRotationTimeline walks a rotation with an injected clock: the new key
// is published before it signs, and the old key stays published until every
// token it signed has expired.
func TestKeyRotationTimeline(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Keys.PublishDelay = 10 * time.Minute
	cfg.Tokens.Lifetime = 30 * time.Minute
	cfg.Tokens.MaxLifetime = time.Hour
	clock := fakeclock.New()
	ti := startIssuer(t, cfg, clock)
	ctx := operatorContext()
	c, secret := ti.createClient(tokenissuer.NewClient{Scopes: []string{"a"}})

	oldKID := signingKID(t, ti, c.ID, secret)
	newKey, err := ti.keys.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance       time.Duration
		wantSigner    string
		wantPublished []string
		wantGone      []string
	}{
		// Published at once, but the old key still signs: verifiers with a
		// cached JWKS have not seen the new key yet.
		{0, oldKID, []string{oldKID, newKey.KID}, nil},
		{10*time.Minute - time.Second, oldKID, []string{oldKID, newKey.KID}, nil},
		// After the publish delay the new key signs; the old one stays for
		// tokens it signed a moment ago.
		{time.Second, newKey.KID, []string{oldKID, newKey.KID}, nil},
		{time.Hour, newKey.KID, []string{oldKID, newKey.KID}, nil},
		// Max token lifetime (1h) plus a minute of skew after the switch, every
		// old token has expired: the old key leaves the JWKS.
		{time.Minute, newKey.KID, []string{newKey.KID}, []string{oldKID}},
	}
	for i, step := range steps {
		clock.Advance(step.advance)
		if err := ti.keys.Load(ctx); err != nil { // what the background reload does
			t.Fatal(err)
		}
		if got := signingKID(t, ti, c.ID, secret); got != step.wantSigner {
			t.Errorf("step %d: signed by %s, want %s", i, got, step.wantSigner)
		}
		published := publishedKIDs(t, ti.keys)
		for _, kid := range step.wantPublished {
			if !published[kid] {
				t.Errorf("step %d: key %s not published", i, kid)
			}
		}
		for _, kid := range step.wantGone {
			if published[kid] {
				t.Errorf("step %d: retired key %s still published", i, kid)
			}
		}
	}
}

// TestRotationByAnotherProcessIsPickedUp rotates through a second keys.Manager on
// the same store, as `issuer keys rotate` does, and checks the running issuer
// serves the new key after its reload.
func TestRotationByAnotherProcessIsPickedUp(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	clock := fakeclock.New()
	ti := startIssuer(t, cfg, clock)
	cliCfg := cfg
	cliCfg.Keys.Algorithm = "EdDSA"
	cli, err := server.NewKeyManagerFor(cliCfg, ti.store, clock, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	key, err := cli.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ti.runInBackground(func(ctx context.Context) { ti.keys.Run(ctx, 10*time.Millisecond) })
	deadline := time.Now().Add(time.Minute) // catches a hang, not a slow machine
	for !publishedKIDs(t, ti.keys)[key.KID] {
		if time.Now().After(deadline) {
			t.Fatal("the running issuer never published the key rotated by another process")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if key.Algorithm != "EdDSA" {
		t.Fatalf("algorithm %s", key.Algorithm)
	}
}

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t, testConfig(t.TempDir()), fakeclock.New())
	set, err := jwk.Parse(ti.keys.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := set.Key(0)
	want := k.KeyID()
	if err := k.Remove(jwk.KeyIDKey); err != nil {
		t.Fatal(err)
	}
	if err := jwk.AssignKeyID(k); err != nil {
		t.Fatal(err)
	}
	if k.KeyID() != want {
		t.Fatalf("kid %s is not the SHA-256 thumbprint %s", want, k.KeyID())
	}
}
