package tokenissuer

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"

	"github.com/portcullis/portcullis/revocation"
	"github.com/portcullis/portcullis/tokenissuer/secretformat"
)

// LeakReport is a client secret found where it should not be: in a public
// repository (a secret scanner's report) or anywhere its owner saw it.
type LeakReport struct {
	Secret string
	// URL is where it was found, Source what kind of place (a scanner's
	// word for it: content, commit, issue, ...); both may be empty.
	URL, Source string
}

// Bounds on what a report may make the trail keep.
const (
	maxLeakURL    = 2048
	maxLeakSource = 64
)

// ActionSecretLeaked is the audit action of a secret revoked because it
// leaked; the portal shows a tenant's recent ones as a banner.
const ActionSecretLeaked = "client.secret_leaked"

// RevokeLeakedSecret revokes the secret a report names, and every token its
// client holds, and audits it with where it was found. Whoever reports it
// may: holding the secret is authority enough (they could use it instead),
// so no actor is refused. It reports whether the secret was this issuer's
// and still live; what a reporter is told must not depend on it, or the
// endpoint would tell which secrets exist. A client's last secret goes too:
// a leaked secret must stop working, and the client gets a new one by a
// rotation. Secrets made before the checksummed format cannot be found
// from the secret alone. It returns the client as it is now, nil when the
// secret was not found.
func (a *Admin) RevokeLeakedSecret(ctx context.Context, r LeakReport) (*Client, error) {
	if secretformat.Check(r.Secret) != nil {
		return nil, nil
	}
	clientID, secretID, err := a.store.SecretByLookup(ctx, a.hasher.Lookup(r.Secret))
	if errors.Is(err, ErrSecretNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var leaked Secret
	before := (*Client)(nil)
	c, err := a.store.UpdateClient(ctx, clientID, func(c *Client) error {
		i := slices.IndexFunc(c.Secrets, func(s Secret) bool { return s.ID == secretID })
		// The lookup found it; the client's own hash confirms it.
		if i < 0 || subtle.ConstantTimeCompare(a.hasher.Hash(c.ID, r.Secret), c.Secrets[i].Hash) != 1 {
			return ErrSecretNotFound
		}
		snapshot := *c
		snapshot.Secrets = slices.Clone(c.Secrets)
		before = &snapshot
		leaked = c.Secrets[i]
		c.Secrets = slices.Delete(c.Secrets, i, i+1)
		c.UpdatedAt = nextVersionTime(a.clock.Now().UTC(), snapshot.UpdatedAt)
		return nil
	})
	if errors.Is(err, ErrSecretNotFound) || errors.Is(err, ErrClientNotFound) {
		return nil, nil // revoked or deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	a.clientChanged(ctx, c.ID)
	found := map[string]any{"secret_id": leaked.ID, "hint": leaked.Hint, "url": truncate(r.URL, maxLeakURL), "source": truncate(r.Source, maxLeakSource),
		"secret_ids": clientAudit(c).SecretIDs, "name": c.Name}
	if err := a.audit(ctx, ActionSecretLeaked, c.TenantID, "client", c.ID, map[string]any{"name": before.Name, "secret_ids": clientAudit(before).SecretIDs}, found); err != nil {
		return c, err
	}
	return c, a.revoke(ctx, revocation.KindClient, c.ID, c.TenantID, ActionSecretLeaked)
}

// truncate keeps at most n bytes of s, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
