package oauth2_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/fakeclock"
	"github.com/portcullis/portcullis/internal/pgtest"
	"github.com/portcullis/portcullis/tokenissuer"
	"github.com/portcullis/portcullis/tokenissuer/keys"
	"github.com/portcullis/portcullis/tokenissuer/server"
	"github.com/portcullis/portcullis/tokenissuer/sqlstore/storetest"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// replicaConfig is one replica's configuration on a shared PostgreSQL
// database: the same secret hashing key and key-encryption key everywhere.
func replicaConfig(t *testing.T, dsn string) server.Config {
	cfg := testConfig(t.TempDir())
	cfg.Store.Driver, cfg.Store.PostgresDSN = "postgres", dsn
	cfg.Store.SecretHashKey = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cfg.Keys.EncryptionKey = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	return cfg
}

func startReplica(t *testing.T, dsn string, clock tokenissuer.Clock, mutate func(*server.Config)) *testIssuer {
	cfg := replicaConfig(t, dsn)
	if mutate != nil {
		mutate(&cfg)
	}
	return startIssuerOn(t, cfg, clock, storetest.OpenPostgres(t, dsn))
}

func TestReplicasShareClientsAndKeys(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	clock := fakeclock.New()
	a := startReplica(t, dsn, clock, nil)
	b := startReplica(t, dsn, clock, nil)
	c, secret := a.createClient(tokenissuer.NewClient{ID: "acme-app", Scopes: []string{"a"}})

	if string(a.keys.JWKS()) != string(b.keys.JWKS()) {
		t.Fatal("replicas serve different JWKS")
	}
	// A token from replica A verifies with replica B's JWKS, and B issues
	// tokens for the client created through A.
	tokA := postToken(t, a.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)).body["access_token"].(string)
	ownIssuer := b.cfg.Issuer
	b.cfg.Issuer = a.cfg.Issuer // behind a load balancer both replicas share one issuer URL
	verifyToken(t, b, tokA)
	b.cfg.Issuer = ownIssuer
	if r := postToken(t, b.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)); r.status != 200 {
		t.Fatalf("replica B: %d %v", r.status, r.body)
	}

	// A rotation on A is served by B once B reloads (keys.reload_interval).
	newKey, err := a.keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !publishedKIDs(t, b.keys)[newKey.KID] {
		t.Fatal("replica B does not publish the key rotated on A")
	}
	clock.Advance(a.cfg.Keys.PublishDelay)
	if kid := signingKID(t, b, c.ID, secret); kid != newKey.KID {
		t.Fatalf("after the publish delay B signs with %s, want %s", kid, newKey.KID)
	}
}

func TestPrivateKeysAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	a := startReplica(t, dsn, fakeclock.New(), nil)
	stored, err := a.store.SigningKeys(context.Background())
	if err != nil || len(stored) == 0 {
		t.Fatal(err)
	}
	for _, k := range stored {
		if !keys.IsSealed(k.PrivateJWK) || bytes.Contains(k.PrivateJWK, []byte(`"d"`)) {
			t.Fatalf("key %s is stored in clear", k.KID)
		}
	}
	// Another key-encryption key cannot read them.
	cfg := replicaConfig(t, dsn)
	cfg.Keys.EncryptionKey = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	km, err := server.NewKeyManagerFor(cfg, a.store, fakeclock.New(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Fatalf("wrong key-encryption key: %v", err)
	}
	// A ciphertext moved to another key's row does not decrypt.
	enc, _ := keys.LoadEncrypter(replicaConfig(t, dsn).Keys.EncryptionKey, "")
	if _, err := keys.OpenStored(enc, "another-kid", stored[0].PrivateJWK); err == nil {
		t.Fatal("a key decrypted under another kid")
	}
}

func TestScheduledRotationHappensOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	clock := fakeclock.New()
	every := func(c *server.Config) { c.Keys.RotateEvery = 24 * time.Hour }
	a := startReplica(t, dsn, clock, every)
	b := startReplica(t, dsn, clock, every)
	if rotated, _ := a.keys.RotateIfDue(context.Background()); rotated {
		t.Fatal("rotated before the interval")
	}
	clock.Advance(25 * time.Hour)
	var wg sync.WaitGroup
	results := make(chan bool, 2)
	for _, r := range []*testIssuer{a, b} {
		wg.Add(1)
		go func(r *testIssuer) {
			defer wg.Done()
			rotated, err := r.keys.RotateIfDue(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- rotated
		}(r)
	}
	wg.Wait()
	close(results)
	n := 0
	for r := range results {
		if r {
			n++
		}
	}
	stored, _ := a.store.SigningKeys(context.Background())
	if n != 1 || len(stored) != 2 {
		t.Fatalf("%d replicas rotated, %d keys stored; want 1 and 2", n, len(stored))
	}
}

func TestFailureLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	clock := fakeclock.New()
	limit := func(c *server.Config) {
		c.RateLimit.MaxFailures, c.RateLimit.Window, c.RateLimit.FailureDelay = 4, time.Minute, time.Millisecond
		c.RateLimit.TrustedProxies = []string{"127.0.0.1"}
	}
	a := startReplica(t, dsn, clock, limit)
	b := startReplica(t, dsn, clock, limit)
	c, secret := a.createClient(tokenissuer.NewClient{ID: "victim", Scopes: []string{"a"}})
	// Guesses alternate between replicas, as behind a load balancer, each
	// from its own address to isolate the client limit.
	for i := 0; i < 20; i++ {
		r := []*testIssuer{a, b}[i%2]
		if status := postTokenFrom(t, r, fmt.Sprintf("203.0.113.%d", i), basic(c.ID, "guess")); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	// The count is shared: each replica slows the failures past the limit
	// of both together, not past its own.
	slowed := counter(t, a.server.RateLimited("client")) + counter(t, b.server.RateLimited("client"))
	if slowed < 20-4-1 {
		t.Fatalf("%v of 20 failures slowed across two replicas, want all past the shared limit of 4 (+1 for the second replica)", slowed)
	}
	for _, r := range []*testIssuer{a, b} {
		if resp := postToken(t, r.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)); resp.status != http.StatusOK {
			t.Fatalf("the right secret on a replica after others' failures: %d", resp.status)
		}
	}
}

// TestRotationUnderLoadAcrossReplicas rotates on replica A while clients get
// tokens from both replicas and a verifier checks each against replica B's
// JWKS, refetching only on an unknown kid, as authz does: none may fail.
func TestRotationUnderLoadAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	fast := func(c *server.Config) {
		c.Keys.JWKSMaxAge, c.Keys.PublishDelay = 100*time.Millisecond, 400*time.Millisecond
	}
	a := startReplica(t, dsn, tokenissuer.SystemClock{}, fast)
	b := startReplica(t, dsn, tokenissuer.SystemClock{}, fast)
	b.runInBackground(func(ctx context.Context) { b.keys.Run(ctx, 50*time.Millisecond) }) // B learns of A's rotation by reloading
	c, secret := a.createClient(tokenissuer.NewClient{ID: "acme-app", Scopes: []string{"a"}})

	fetchB := func() jwk.Set {
		set, err := jwk.Fetch(context.Background(), b.http.URL+"/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := fetchB()
	oldKID := signingKID(t, a, c.ID, secret)
	rotated, err := a.keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Until the rotated key has signed on both replicas a few times; the
	// deadline only catches a key that never signs.
	seenNew, newSigned := false, 0
	deadline := time.Now().Add(time.Minute)
	for i := 0; newSigned < 6 && time.Now().Before(deadline); i++ {
		replica := []*testIssuer{a, b}[i%2]
		r := postToken(t, replica.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret))
		if r.status != http.StatusOK {
			t.Fatalf("token request %d: %d %v", i, r.status, r.body)
		}
		token := r.body["access_token"].(string)
		msg, err := jws.Parse([]byte(token))
		if err != nil {
			t.Fatal(err)
		}
		kid := msg.Signatures()[0].ProtectedHeaders().KeyID()
		if _, ok := set.LookupKeyID(kid); !ok {
			set = fetchB()
		}
		if _, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
			t.Fatalf("token %d (kid %s) from replica %d does not verify with B's JWKS: %v", i, kid, i%2, err)
		}
		if kid == rotated.KID {
			seenNew = true
			newSigned++
		}
		if kid != oldKID && kid != rotated.KID {
			t.Fatalf("unexpected kid %s", kid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !seenNew {
		t.Fatal("the rotated key never signed")
	}
}

// TestReplicasForgetChangedClientsAtOnce: a secret revoked or a tenant
// disabled through one replica stops working at another at once, although
// the other caches clients and tenants for an hour (LISTEN/NOTIFY).
func TestReplicasForgetChangedClientsAtOnce(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshDatabase(t)
	clock := fakeclock.New()
	cache := func(c *server.Config) { c.ClientCacheTTL = time.Hour }
	a := startReplica(t, dsn, clock, cache)
	b := startReplica(t, dsn, clock, cache)
	c, oldSecret := a.createClient(tokenissuer.NewClient{ID: "acme-app", TenantID: "acme", Scopes: []string{"a"}})
	ctx := tokenissuer.WithActor(context.Background(), tokenissuer.Actor{Operator: true, ID: "cli:test"})
	_, _, newSecret, err := a.admin.RotateSecret(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	status := func(secret string) int {
		return postToken(t, b.http.URL, formType, "grant_type=client_credentials", basic(c.ID, secret)).status
	}
	if status(oldSecret) != http.StatusOK || status(newSecret) != http.StatusOK { // now cached at B
		t.Fatal("before the change")
	}
	if _, err := a.admin.RevokeSecret(ctx, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica B to refuse the revoked secret", func() bool { return status(oldSecret) == http.StatusUnauthorized })
	if status(newSecret) != http.StatusOK {
		t.Fatal("the remaining secret stopped working")
	}
	if _, err := a.admin.SetTenantStatus(ctx, "acme", tokenissuer.TenantDisabled); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica B to refuse the disabled tenant's client", func() bool { return status(newSecret) == http.StatusBadRequest })
}
