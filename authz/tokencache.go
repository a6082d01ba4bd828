package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/revocation"
)

// tokenCache holds verified tokens in fixed-size entries that hold no
// pointers, so a full cache gives the garbage collector nothing to walk: a
// general-purpose cache keeps a handful of heap objects per token (its
// claims, their strings, the cache's own items), and marking 100,000 tokens'
// worth of them cost a quarter of authz's CPU. What tokens share — client,
// tenant, scope — is interned once per distinct value in a grantTable, and an
// entry holds its index.
//
// The table is set-associative: a token may live in one of two sets of
// tokenWays entries, chosen by two words of its SHA-256 (two choices keep
// the sets evenly filled, so a cache sized for N tokens holds about N).
// Each set has its own lock. A full set evicts an entry that has not been
// read since the last eviction (a clock bit), the one nearest its expiry
// first.
type tokenCache struct {
	sets   []tokenSet
	grants grantInterner
	hits   [counterStripes]stripedCounter
	misses [counterStripes]stripedCounter
}

// tokenWays is how many entries a set holds.
const tokenWays = 8

type tokenSet struct {
	mu   sync.RWMutex
	ways [tokenWays]tokenEntry
}

// tokenEntry is one verified token, in 64 bytes. An entry with epoch 0 is
// empty.
type tokenEntry struct {
	// check is words 1 to 3 of the token's SHA-256: a hit must match all
	// 192 bits, so no other token string can be taken for this one.
	check [3]uint64
	// goodUntil is when the entry stops being used (Unix nanoseconds):
	// cacheMargin before the token's exp, so it is never used past it.
	goodUntil int64
	issuedAt  int64
	jti       revocation.TokenKey
	grant     uint32
	// state is the grant table's epoch the grant index belongs to, shifted
	// left by one, and the clock bit (usedBit): set on a hit, cleared when
	// the set evicts. Hits set it under the read lock, hence an atomic.
	state atomic.Uint32
}

const usedBit = 1

func (e *tokenEntry) epoch() uint32 { return e.state.Load() >> 1 }

func (e *tokenEntry) used() bool { return e.state.Load()&usedBit != 0 }

// counterStripes spreads the hit and miss counts over cache lines, so two
// cores counting do not contend for one.
const counterStripes = 16

type stripedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

func newTokenCache(maxTokens int64) *tokenCache {
	// An eighth more room than asked: with two choices per token the sets
	// fill evenly, and this keeps a cache holding maxTokens from evicting
	// (with a sixteenth, a full cache loses 1.6% of its tokens).
	sets := max((maxTokens+maxTokens/8+tokenWays-1)/tokenWays, 2)
	c := &tokenCache{sets: make([]tokenSet, sets)}
	c.grants.limit = int(max(2*maxTokens, 1024))
	c.grants.reset()
	return c
}

// setOf maps a hash word onto a set index, without a modulo's bias or cost.
func (c *tokenCache) setOf(word uint64) *tokenSet {
	hi, _ := bits.Mul64(word, uint64(len(c.sets)))
	return &c.sets[hi]
}

func tokenWords(sum *[sha256.Size]byte) (w0 uint64, check [3]uint64) {
	w0 = binary.LittleEndian.Uint64(sum[0:])
	check[0] = binary.LittleEndian.Uint64(sum[8:])
	check[1] = binary.LittleEndian.Uint64(sum[16:])
	check[2] = binary.LittleEndian.Uint64(sum[24:])
	return w0, check
}

// get returns the claims of the token whose SHA-256 is sum, if it is cached
// and still good at now, and counts the hit or miss.
func (c *tokenCache) get(sum *[sha256.Size]byte, now time.Time) (Claims, bool) {
	w0, check := tokenWords(sum)
	claims, ok := c.find(w0, check, now)
	if ok {
		c.hits[w0%counterStripes].n.Add(1)
	} else {
		c.misses[w0%counterStripes].n.Add(1)
	}
	return claims, ok
}

// lookup is get without counting: a second look by a request that missed.
func (c *tokenCache) lookup(sum *[sha256.Size]byte, now time.Time) (Claims, bool) {
	w0, check := tokenWords(sum)
	return c.find(w0, check, now)
}

// find looks the token of words w0 and check up in its two sets.
func (c *tokenCache) find(w0 uint64, check [3]uint64, now time.Time) (Claims, bool) {
	table := c.grants.table.Load()
	nanos := now.UnixNano()
	for _, set := range [2]*tokenSet{c.setOf(w0), c.setOf(check[0])} {
		set.mu.RLock()
		for i := range set.ways {
			e := &set.ways[i]
			if e.check != check || e.epoch() != table.epoch {
				continue
			}
			if nanos >= e.goodUntil || int(e.grant) >= len(table.grants) {
				break
			}
			if !e.used() {
				e.state.Or(usedBit)
			}
			g := &table.grants[e.grant]
			scopes := table.scopes[g.scopes]
			claims := Claims{
				TokenKey: e.jti, ClientID: table.str(g.client), Scope: scopes.scope, Scopes: scopes.list, TenantID: table.str(g.tenant),
				Expiry: time.Unix(0, e.goodUntil+int64(cacheMargin)), IssuedAt: e.issuedAt,
			}
			set.mu.RUnlock()
			return claims, true
		}
		set.mu.RUnlock()
	}
	return Claims{}, false
}

// put caches a verified token until cacheMargin before its expiry.
func (c *tokenCache) put(sum *[sha256.Size]byte, claims *Claims, now time.Time) {
	goodUntil := claims.Expiry.UnixNano() - int64(cacheMargin)
	nanos := now.UnixNano()
	if goodUntil <= nanos {
		return
	}
	epoch, grant := c.grants.intern(claims.ClientID, claims.TenantID, claims.Scope)
	w0, check := tokenWords(sum)
	a, b := c.setOf(w0), c.setOf(check[0])
	set := a
	if a != b && a.free(nanos, epoch) < b.free(nanos, epoch) {
		set = b
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	e := &set.ways[set.victim(check, nanos, epoch)]
	e.check, e.goodUntil, e.issuedAt, e.jti, e.grant = check, goodUntil, claims.IssuedAt, claims.TokenKey, grant
	e.state.Store(epoch << 1)
}

// free counts the entries of the set a new token may take without evicting
// a good one.
func (s *tokenSet) free(now int64, epoch uint32) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for i := range s.ways {
		if s.ways[i].reusable(now, epoch) {
			n++
		}
	}
	return n
}

func (e *tokenEntry) reusable(now int64, epoch uint32) bool {
	return e.epoch() != epoch || now >= e.goodUntil
}

// victim picks the entry a new token takes, the set being locked: the
// token's own (a racing verification of the same token), an empty, expired
// or stale one, else the unread entry nearest its expiry, else (every entry
// read since the last eviction) the one nearest its expiry. Eviction clears
// the clock bits, so an entry must be read again to be spared next time.
func (s *tokenSet) victim(check [3]uint64, now int64, epoch uint32) int {
	for i := range s.ways {
		if e := &s.ways[i]; e.check == check && e.epoch() == epoch {
			return i
		}
	}
	for i := range s.ways {
		if s.ways[i].reusable(now, epoch) {
			return i
		}
	}
	unread, any := -1, 0
	for i := range s.ways {
		e := &s.ways[i]
		if e.goodUntil < s.ways[any].goodUntil {
			any = i
		}
		if !e.used() && (unread < 0 || e.goodUntil < s.ways[unread].goodUntil) {
			unread = i
		}
		e.state.And(^uint32(usedBit))
	}
	if unread >= 0 {
		return unread
	}
	return any
}

// stats returns the hits and misses counted so far.
func (c *tokenCache) stats() (hits, misses uint64) {
	for i := range c.hits {
		hits += c.hits[i].n.Load()
		misses += c.misses[i].n.Load()
	}
	return hits, misses
}

// grant is what the tokens of one client with one scope share, in fields
// of fixed size: the client and tenant IDs are spans of the table's text,
// the scope set an index into its scope sets. A grant holds no pointer, nor
// does the index that finds it, so however many clients the cache holds
// tokens of, the collector walks none of their grants: with a grant an
// object of pointers and strings, 10,000 clients were two thirds of the
// objects it marked on every cycle.
type grant struct {
	client, tenant textSpan
	scopes         uint32
	// next is the index, plus one, of the next grant whose key hashes the
	// same; 0 ends the chain.
	next uint32
}

type textSpan struct{ off, len uint32 }

// scopeSet is a scope claim and its scopes, shared by every grant of it:
// clients of one API mostly hold the same few scope sets, so these few keep
// their pointers.
type scopeSet struct {
	scope string
	list  []string
}

type grantKey struct{ clientID, tenantID, scope string }

// grantTable is an immutable snapshot of the interned grants: readers load
// it once and index it without a lock.
type grantTable struct {
	epoch  uint32
	grants []grant
	scopes []*scopeSet
	// text holds every grant's client and tenant IDs, end to end.
	text string
}

func (t *grantTable) str(s textSpan) string { return t.text[s.off : s.off+s.len] }

func (t *grantTable) matches(g *grant, key grantKey) bool {
	return t.str(g.client) == key.clientID && t.str(g.tenant) == key.tenantID && t.scopes[g.scopes].scope == key.scope
}

// grantInterner interns grants. The table only grows, so an index stays
// good; when it reaches its limit (far more distinct grants than the cache
// holds tokens) it starts a new epoch, which every cached entry of the old
// one misses once.
type grantInterner struct {
	mu sync.Mutex
	// index maps a grant key's hash to the last grant added with it.
	index  map[uint64]uint32
	seed   maphash.Seed
	scopes map[string]uint32
	// text is the table's text as it grows: a published table's text is a
	// prefix of it, which appending never changes.
	text  strings.Builder
	table atomic.Pointer[grantTable]
	limit int
}

// maxGrantText bounds the text's length, so that spans fit in 32 bits.
const maxGrantText = math.MaxUint32

func (g *grantInterner) reset() {
	var epoch uint32 = 1
	if t := g.table.Load(); t != nil {
		// 0 marks an empty entry, and an entry keeps 31 bits of epoch.
		if epoch = t.epoch + 1; epoch >= 1<<31 {
			epoch = 1
		}
	}
	if g.index == nil {
		// One seed for the interner's life: a hash taken before a reset
		// is still good after it.
		g.seed = maphash.MakeSeed()
	}
	g.index, g.scopes = map[uint64]uint32{}, map[string]uint32{}
	g.text.Reset()
	g.table.Store(&grantTable{epoch: epoch})
}

// intern returns the epoch and index of the grant, adding it if new.
func (g *grantInterner) intern(clientID, tenantID, scope string) (uint32, uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := grantKey{clientID, tenantID, scope}
	return g.internHashed(maphash.Comparable(g.seed, key), key)
}

// internHashed is intern with the key's hash given, the interner locked.
func (g *grantInterner) internHashed(hash uint64, key grantKey) (uint32, uint32) {
	t := g.table.Load()
	last, chained := g.index[hash]
	if chained {
		for i := last; ; i = t.grants[i].next - 1 {
			if t.matches(&t.grants[i], key) {
				return t.epoch, i
			}
			if t.grants[i].next == 0 {
				break
			}
		}
	}
	if len(t.grants) >= g.limit || uint64(g.text.Len())+uint64(len(key.clientID))+uint64(len(key.tenantID)) > maxGrantText {
		g.reset()
		t, chained = g.table.Load(), false
	}
	scopes, known := g.scopes[key.scope]
	scopeSets := t.scopes
	if !known {
		// A copy, so that a cached grant does not pin the token it came
		// from.
		set := &scopeSet{scope: strings.Clone(key.scope), list: strings.Fields(key.scope)}
		scopes = uint32(len(scopeSets))
		g.scopes[set.scope] = scopes
		scopeSets = append(scopeSets, set)
	}
	gr := grant{client: g.appendText(key.clientID), tenant: g.appendText(key.tenantID), scopes: scopes}
	if chained {
		gr.next = last + 1
	}
	i := uint32(len(t.grants))
	g.index[hash] = i
	// Appending may write past the end of a slice a reader holds, never
	// inside it: published tables stay unchanged.
	g.table.Store(&grantTable{epoch: t.epoch, grants: append(t.grants, gr), scopes: scopeSets, text: g.text.String()})
	return t.epoch, i
}

func (g *grantInterner) appendText(s string) textSpan {
	span := textSpan{off: uint32(g.text.Len()), len: uint32(len(s))}
	g.text.WriteString(s)
	return span
}
