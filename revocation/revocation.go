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
	"encoding/binary"
	"hash/maphash"
	"time"
)

// FeedPath is where the issuer serves the feed, on its public listener.
const FeedPath = "/oauth2/revocations"

// ReadScope is the scope a follower's access token needs to read the feed.
const ReadScope = "portcullis.revocations:read"

// MaxWait bounds how long one long poll of the feed is held open; a stream
// beats every 1.5 waits.
const MaxWait = 30 * time.Second

// MaxStream bounds how long one stream of the feed lasts: the follower then
// connects again, authenticating afresh and landing on any replica.
const MaxStream = 10 * time.Minute

// StreamType is the media type of the feed as a stream: one Feed as JSON
// per line (newline-delimited JSON), the first answering since as a long
// poll would, the rest each change as it happens, and a Feed with no
// entries at the same version as a heartbeat every 1.5 waits.
const StreamType = "application/x-ndjson"

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
	// Client is the client a revoked token (KindToken) was issued to.
	Client string `json:"client,omitempty"`
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
	// More says the answer is one page: Version is the Seq of its last
	// entry, and the follower asks again with since=Version, at once, for
	// the rest. A full set that arrives in pages replaces the follower's
	// only once its last page has arrived.
	More bool `json:"more,omitempty"`
}

// Set is the live set of revocations, immutable once built: readers on the
// request path share it without locks, and a change builds a new one that
// shares all but a few nodes with the old (Apply costs O(k) for k entries,
// whatever the set's size).
type Set struct {
	version int64
	n       int
	seed    maphash.Seed
	tokens  trie[TokenKey]
	clients trie[string]
	tenants trie[string]
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

// tokenHash places a TokenKey in the trie: its bytes are already a hash.
func tokenHash(k TokenKey) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// Empty is a set with nothing revoked, at version 0.
func Empty() *Set { return &Set{seed: maphash.MakeSeed()} }

// Version is the feed version the set reflects.
func (s *Set) Version() int64 { return s.version }

// Len is how many entries the set holds.
func (s *Set) Len() int { return s.n }

// Revoked reports whether a token is revoked, and by which entry: its jti
// (by its KeyOf) is revoked, or it was issued (iat, Unix seconds) before its
// client's or its tenant's watermark.
func (s *Set) Revoked(jti TokenKey, clientID, tenantID string, issuedAt int64) (Entry, bool) {
	if s.n == 0 {
		return Entry{}, false
	}
	if jti != (TokenKey{}) {
		if e, ok := s.tokens.get(tokenHash(jti), jti); ok {
			return *e, true
		}
	}
	if e, ok := s.clients.get(maphash.String(s.seed, clientID), clientID); ok && issuedAt < e.Before {
		return *e, true
	}
	if tenantID != "" {
		if e, ok := s.tenants.get(maphash.String(s.seed, tenantID), tenantID); ok && issuedAt < e.Before {
			return *e, true
		}
	}
	return Entry{}, false
}

// Apply returns the set after f. A difference costs O(len(f.Entries)); a
// full answer builds a new set. A watermark only ever moves forward.
// Expired entries are dropped by Expire, not here, so that a change does not
// walk the whole set.
func (s *Set) Apply(f Feed) *Set {
	next := *s
	if f.Full {
		next = Set{seed: s.seed}
	}
	next.version = f.Version
	if !f.Full && f.Version < s.version {
		next.version = s.version
	}
	for _, e := range f.Entries {
		next.add(e)
	}
	return &next
}

// Expire returns the set without the entries expired at now (itself when
// none has). It walks the whole set: call it now and then, not per change.
func (s *Set) Expire(now time.Time) *Set {
	n := now.Unix()
	next := *s
	changed := false
	s.tokens.each(func(h uint64, k TokenKey, e *Entry) bool {
		if e.Expires <= n {
			next.tokens, _ = next.tokens.remove(h, k)
			next.n--
			changed = true
		}
		return true
	})
	for _, t := range []*trie[string]{&next.clients, &next.tenants} {
		t.each(func(h uint64, k string, e *Entry) bool {
			if e.Expires <= n {
				*t, _ = t.remove(h, k)
				next.n--
				changed = true
			}
			return true
		})
	}
	if !changed {
		return s
	}
	return &next
}

func (s *Set) add(e Entry) {
	var t *trie[string]
	switch e.Kind {
	case KindToken:
		key := KeyOf(e.Subject)
		h := tokenHash(key)
		if old, ok := s.tokens.get(h, key); ok && old.Expires >= e.Expires {
			return
		}
		var added bool
		if s.tokens, added = s.tokens.put(h, key, e); added {
			s.n++
		}
		return
	case KindClient:
		t = &s.clients
	case KindTenant:
		t = &s.tenants
	default:
		return // a kind from a newer issuer: ignored, never guessed at
	}
	h := maphash.String(s.seed, e.Subject)
	if old, ok := t.get(h, e.Subject); ok && (old.Before > e.Before || (old.Before == e.Before && old.Expires >= e.Expires)) {
		return
	}
	var added bool
	if *t, added = t.put(h, e.Subject, e); added {
		s.n++
	}
}

// Watermark is the Before of a client or tenant entry made at t: the
// second after t's, since a token's iat has whole seconds. Every token
// issued up to t is covered; so are those issued in the rest of that
// second (a client re-enabled at once gets working tokens a second later).
func Watermark(t time.Time) int64 {
	return t.Unix() + 1
}
