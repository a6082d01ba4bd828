// Package revocation is what the issuer and authz share about revoked
// tokens: the feed's wire format and the live set authz reads on every
// Check. The issuer writes and serves entries; authz follows the feed into
// an immutable Set. This package imports neither end.
//
// Three kinds of entry revoke tokens: one token by its ID (jti), every
// token of a client issued before a moment, every token of a tenant issued
// before a moment (a watermark). An entry is kept only while a token it
// covers can still be valid, so the set stays small.
package revocation

import (
	"crypto/sha256"
	"iter"
	"maps"
	"time"
)

// FeedPath is where the issuer serves the feed, on its public listener.
const FeedPath = "/oauth2/revocations"

// ReadScope is the scope a follower's access token needs to read the feed.
const ReadScope = "portcullis.revocations:read"

// MaxWait bounds how long one long poll of the feed is held open.
const MaxWait = 30 * time.Second

// Kind is what an entry revokes.
type Kind string

// Kinds of entries.
const (
	// KindToken revokes the token whose jti is the subject.
	KindToken Kind = "token"
	// KindClient revokes the tokens of the client named by the subject
	// issued before Before.
	KindClient Kind = "client"
	// KindTenant revokes the tokens of the tenant named by the subject
	// issued before Before.
	KindTenant Kind = "tenant"
)

// Entry is one revocation.
type Entry struct {
	// Seq orders entries: the feed's version is the highest Seq it holds.
	Seq     int64  `json:"seq"`
	Kind    Kind   `json:"kind"`
	Subject string `json:"subject"`
	// Before is the watermark of a client or tenant entry, in Unix
	// seconds: tokens whose iat is earlier are revoked.
	Before int64 `json:"before,omitempty"`
	// Expires is when no token the entry covers can be valid any more, in
	// Unix seconds; the entry is dropped then.
	Expires int64 `json:"expires"`
	// Cause is what made it (client.disable, oauth2.revoke, ...), for logs.
	Cause string `json:"cause,omitempty"`
	// At is when it was made.
	At time.Time `json:"at"`
}

// Feed is one answer of the feed: what changed after the version the
// follower asked about, or the whole live set.
type Feed struct {
	Version int64 `json:"version"`
	// Full says Entries are the whole live set, replacing what the follower
	// holds: its first request, or one the issuer cannot answer with a
	// difference (a follower ahead of the issuer's store).
	Full    bool    `json:"full"`
	Entries []Entry `json:"entries"`
}

// Set is the live set of revocations, immutable once built: readers on the
// request path share it without locks, and a change builds a new one.
type Set struct {
	version int64
	tokens  map[TokenKey]Entry
	clients map[string]Entry
	tenants map[string]Entry
}

// TokenKey is how a token's jti is held and looked up: the first 16 bytes
// of its SHA-256. A verifier keeps it in a fixed-size, pointer-free cache
// entry instead of the jti's string. Two jtis sharing a key (odds of
// 2^-128, and jtis are chosen by the issuer) could only make a token look
// revoked, never let one through.
type TokenKey [16]byte

// KeyOf returns jti's TokenKey; the zero key for a token without a jti.
func KeyOf(jti string) TokenKey {
	if jti == "" {
		return TokenKey{}
	}
	sum := sha256.Sum256([]byte(jti))
	return TokenKey(sum[:16])
}

// Empty is a set with nothing revoked, at version 0.
func Empty() *Set { return &Set{} }

// Version is the feed version the set reflects.
func (s *Set) Version() int64 { return s.version }

// Len is how many entries the set holds.
func (s *Set) Len() int { return len(s.tokens) + len(s.clients) + len(s.tenants) }

// Revoked reports whether a token is revoked, and by which entry: its jti
// (by its KeyOf) is revoked, or it was issued (iat, Unix seconds) before its
// client's or its tenant's watermark.
func (s *Set) Revoked(jti TokenKey, clientID, tenantID string, issuedAt int64) (Entry, bool) {
	if s.Len() == 0 {
		return Entry{}, false
	}
	if e, ok := s.tokens[jti]; ok && jti != (TokenKey{}) {
		return e, true
	}
	if e, ok := s.clients[clientID]; ok && issuedAt < e.Before {
		return e, true
	}
	if e, ok := s.tenants[tenantID]; ok && tenantID != "" && issuedAt < e.Before {
		return e, true
	}
	return Entry{}, false
}

// Apply returns the set after f, without the entries expired at now. A
// watermark only ever moves forward.
func (s *Set) Apply(f Feed, now time.Time) *Set {
	next := &Set{version: f.Version, tokens: map[TokenKey]Entry{}, clients: map[string]Entry{}, tenants: map[string]Entry{}}
	if !f.Full {
		if f.Version < s.version {
			next.version = s.version
		}
		for e := range s.entries() {
			next.add(e)
		}
	}
	for _, e := range f.Entries {
		next.add(e)
	}
	next.dropExpired(now)
	return next
}

// Expire returns the set without the entries expired at now (itself when
// none has).
func (s *Set) Expire(now time.Time) *Set {
	n := now.Unix()
	for e := range s.entries() {
		if e.Expires <= n {
			return s.Apply(Feed{Version: s.version}, now)
		}
	}
	return s
}

// entries yields every entry of the set.
func (s *Set) entries() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		for _, e := range s.tokens {
			if !yield(e) {
				return
			}
		}
		for _, m := range []map[string]Entry{s.clients, s.tenants} {
			for _, e := range m {
				if !yield(e) {
					return
				}
			}
		}
	}
}

func (s *Set) add(e Entry) {
	var m map[string]Entry
	switch e.Kind {
	case KindToken:
		key := KeyOf(e.Subject)
		if old, ok := s.tokens[key]; !ok || old.Expires < e.Expires {
			s.tokens[key] = e
		}
		return
	case KindClient:
		m = s.clients
	case KindTenant:
		m = s.tenants
	default:
		return // a kind from a newer issuer: ignored, never guessed at
	}
	if old, ok := m[e.Subject]; ok && (old.Before > e.Before || (old.Before == e.Before && old.Expires >= e.Expires)) {
		return
	}
	m[e.Subject] = e
}

func (s *Set) dropExpired(now time.Time) {
	n := now.Unix()
	maps.DeleteFunc(s.tokens, func(_ TokenKey, e Entry) bool { return e.Expires <= n })
	for _, m := range []map[string]Entry{s.clients, s.tenants} {
		maps.DeleteFunc(m, func(_ string, e Entry) bool { return e.Expires <= n })
	}
}

// Watermark is the Before of a client or tenant entry made at t: the
// second after t's, since a token's iat has whole seconds. Every token
// issued up to t is covered; so are those issued in the rest of that
// second (a client re-enabled at once gets working tokens a second later).
func Watermark(t time.Time) int64 {
	return t.Unix() + 1
}
