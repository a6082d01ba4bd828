package tokenissuer

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/tokenissuer/feed"
	"github.com/portcullis/portcullis/tokenissuer/keys"

	"github.com/portcullis/portcullis/revocation"
)

// RevocationStore keeps the revocation entries the feed serves.
type RevocationStore interface {
	// AppendRevocation stores e and sets its Seq, above every Seq before.
	AppendRevocation(ctx context.Context, e *revocation.Entry) error
	// Revocations returns the entries after afterSeq not expired at now,
	// in Seq order.
	Revocations(ctx context.Context, afterSeq int64, now time.Time) ([]revocation.Entry, error)
	// LatestRevocation returns the highest Seq (0: none yet).
	LatestRevocation(ctx context.Context) (int64, error)
	// PruneRevocations forgets entries expired at now.
	PruneRevocations(ctx context.Context, now time.Time) error
}

// Change topics every issuer sharing a store hears about.
const (
	// TopicRevocation: a revocation entry was appended.
	TopicRevocation = "revocation"
	// TopicClient: the client named by the subject changed (secrets,
	// status, deletion): forget its cached record.
	TopicClient = "client"
	// TopicTenant: the tenant named by the subject changed status.
	TopicTenant = "tenant"
	// TopicAny: something in the store changed, it is not known what
	// (another process wrote to an SQLite file): forget everything cached.
	TopicAny = "*"
)

// ChangeBus tells every issuer process sharing the store about changes: in
// process on SQLite, through LISTEN/NOTIFY on PostgreSQL, so replicas wake
// their feed followers and drop cached clients at once.
type ChangeBus interface {
	// NotifyChange announces a change; delivery is best effort (a missed
	// one is caught by polling or the cache TTL).
	NotifyChange(ctx context.Context, topic, subject string) error
	// ListenChanges calls fn for every change announced until ctx ends,
	// and with TopicAny whenever it starts listening (at first, and after
	// a broken connection): what was announced before went unheard.
	ListenChanges(ctx context.Context, fn func(topic, subject string)) error
}

// minRevocationLifetime is how long a watermark is kept when no token
// lifetime cap is configured.
const minRevocationLifetime = 24 * time.Hour

// WatermarkMargin is how far past the moment of a client's or tenant's
// revocation its watermark reaches, so that it also covers tokens minted by
// an issuer that has not heard of the change yet: a replica or a running
// issuer whose cached client predates a change made from the CLI (its feed
// reads the store at least every feed.PollInterval), or a replica whose
// clock is up to a second ahead of the revoking one. A token endpoint that
// knows of a watermark still ahead waits it out before minting
// (Endpoints.waitOutWatermark), so the margin costs a client at most a
// couple of seconds once, never a token that is born revoked.
const WatermarkMargin = feed.PollInterval + time.Second

// revoke appends a watermark entry for a client or tenant (every token it
// holds now is revoked), announces it and records it in the audit trail.
func (a *Admin) revoke(ctx context.Context, kind revocation.Kind, subject, tenantID, cause string) error {
	now := a.clock.Now().UTC()
	before := revocation.Watermark(now.Add(WatermarkMargin))
	keep := a.maxTokenLifetime
	if keep <= 0 {
		keep = minRevocationLifetime
	}
	e := &revocation.Entry{Kind: kind, Subject: subject, Before: before, Expires: before + int64(keep/time.Second) + 1, Cause: cause, At: now}
	return a.appendRevocation(ctx, e, tenantID)
}

// RevokeToken revokes one access token (RFC 7009) until it expires. A
// client revoking its own token is routine, like signing out, and is not
// written to the audit trail (where thousands would bury the tenant's
// changes): the issuer logs it, and a client that revokes too many falls
// back to a watermark, which is audited.
func (a *Admin) RevokeToken(ctx context.Context, tok keys.AccessToken) error {
	if actor := actorFrom(ctx); actor.ID != "client:"+tok.ClientID && (!actor.sees(tok.TenantID) || actor.ReadOnly) {
		return ErrNotPermitted
	}
	if tok.ID == "" {
		return invalid("the token has no jti; it cannot be revoked alone")
	}
	e := &revocation.Entry{Kind: revocation.KindToken, Subject: tok.ID, Client: tok.ClientID, Expires: tok.Expiry.Unix() + 1, Cause: "oauth2.revoke", At: a.clock.Now().UTC()}
	if err := a.store.AppendRevocation(ctx, e); err != nil {
		return fmt.Errorf("revoke token of %s: %w", tok.ClientID, err)
	}
	a.revocationAdded(ctx)
	return nil
}

// revocationAdded announces a new entry. Best effort: a missed announcement
// is caught by the feed's poll of the store within a second.
func (a *Admin) revocationAdded(ctx context.Context) {
	_ = a.store.NotifyChange(ctx, TopicRevocation, "")
}

func (a *Admin) appendRevocation(ctx context.Context, e *revocation.Entry, tenantID string) error {
	if err := a.store.AppendRevocation(ctx, e); err != nil {
		return fmt.Errorf("revoke %s %s: %w", e.Kind, e.Subject, err)
	}
	a.revocationAdded(ctx)
	view := map[string]any{"kind": e.Kind, "subject": e.Subject, "cause": e.Cause, "seq": e.Seq}
	if e.Before > 0 {
		view["tokens_issued_before"] = time.Unix(e.Before, 0).UTC()
	}
	return a.audit(ctx, "revocation."+string(e.Kind), tenantID, string(e.Kind), e.Subject, nil, view)
}

// RevokeClientTokens revokes every token the client holds now; tokens it
// gets afterwards work.
func (a *Admin) RevokeClientTokens(ctx context.Context, id string) error {
	c, err := a.store.Client(ctx, id)
	if err != nil {
		return err
	}
	if err := mayChangeClient(ctx, c); err != nil {
		return err
	}
	return a.revoke(ctx, revocation.KindClient, id, c.TenantID, "client.revoke_tokens")
}

// RevokeOwnTokensInstead revokes every token client c holds now, asked by
// c itself when revoking one token would pass the issuer's cap on single
// revocations (RFC 7009 §2.1 lets a server revoke more than the one token):
// one watermark stops the set every authz holds from growing. Audited.
func (a *Admin) RevokeOwnTokensInstead(ctx context.Context, c *Client) error {
	if actorFrom(ctx).ID != "client:"+c.ID {
		return ErrNotPermitted
	}
	return a.revoke(ctx, revocation.KindClient, c.ID, c.TenantID, "oauth2.revoke.overflow")
}

// clientChanged tells every issuer to forget its cached copy of the client.
func (a *Admin) clientChanged(ctx context.Context, id string) {
	// Best effort: a missed announcement leaves the copy for at most
	// client_cache_ttl.
	_ = a.store.NotifyChange(ctx, TopicClient, id)
}
