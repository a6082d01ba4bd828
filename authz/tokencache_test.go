package authz

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/revocation"
)

func tokenSum(s string) *[sha256.Size]byte {
	sum := sha256.Sum256([]byte(s))
	return &sum
}

func TestTokenCacheReturnsWhatWasPut(t *testing.T) {
	t.Parallel()
	c := newTokenCache(100)
	now := time.Unix(1_700_000_000, 0)
	put := Claims{TokenKey: revocation.KeyOf("jti-1"), ClientID: "app", Scope: "a:read b:write", TenantID: "acme", Expiry: now.Add(time.Hour), IssuedAt: now.Unix() - 5}
	c.put(tokenSum("token-1"), &put, now)
	got, ok := c.get(tokenSum("token-1"), now)
	if !ok {
		t.Fatal("a token just put is not found")
	}
	if got.TokenKey != put.TokenKey || got.ClientID != "app" || got.TenantID != "acme" || got.Scope != put.Scope ||
		!reflect.DeepEqual(got.Scopes, []string{"a:read", "b:write"}) || !got.Expiry.Equal(put.Expiry) || got.IssuedAt != put.IssuedAt {
		t.Fatalf("got %+v, put %+v", got, put)
	}
	if _, ok := c.get(tokenSum("token-2"), now); ok {
		t.Fatal("a token never put is found")
	}
	if hits, misses := c.stats(); hits != 1 || misses != 1 {
		t.Fatalf("hits %d, misses %d; want 1 and 1", hits, misses)
	}
}

func TestTokenCacheNeverServesATokenAtItsExpiry(t *testing.T) {
	t.Parallel()
	c := newTokenCache(100)
	now := time.Unix(1_700_000_000, 0)
	c.put(tokenSum("t"), &Claims{ClientID: "app", Expiry: now.Add(time.Minute)}, now)
	if _, ok := c.get(tokenSum("t"), now.Add(time.Minute-cacheMargin-time.Nanosecond)); !ok {
		t.Fatal("the token left the cache before its margin")
	}
	if _, ok := c.get(tokenSum("t"), now.Add(time.Minute-cacheMargin)); ok {
		t.Fatal("the token is served within cacheMargin of its expiry")
	}
	c.put(tokenSum("late"), &Claims{ClientID: "app", Expiry: now.Add(cacheMargin / 2)}, now)
	if _, ok := c.get(tokenSum("late"), now); ok {
		t.Fatal("a token that expires within the margin was cached")
	}
}

func TestTokenCacheMatchesTheWholeHash(t *testing.T) {
	t.Parallel()
	c := newTokenCache(100)
	now := time.Unix(1_700_000_000, 0)
	sum := tokenSum("t")
	c.put(sum, &Claims{ClientID: "app", Expiry: now.Add(time.Hour)}, now)
	for _, i := range []int{8, 20, 31} { // same set-choosing word, another check word
		other := *sum
		other[i] ^= 1
		if _, ok := c.get(&other, now); ok {
			t.Fatalf("a hash differing in byte %d was taken for the cached token", i)
		}
	}
}

func TestTokenCacheHoldsWhatItWasSizedFor(t *testing.T) {
	t.Parallel()
	const n = 20_000
	c := newTokenCache(n)
	now := time.Unix(1_700_000_000, 0)
	for i := range n {
		c.put(tokenSum(fmt.Sprint(i)), &Claims{ClientID: fmt.Sprint("client-", i%50), Scope: "s", Expiry: now.Add(time.Hour)}, now)
	}
	kept := 0
	for i := range n {
		if _, ok := c.get(tokenSum(fmt.Sprint(i)), now); ok {
			kept++
		}
	}
	if kept < n*995/1000 {
		t.Fatalf("a cache sized for %d tokens kept %d of them", n, kept)
	}
}

func TestTokenCacheEvictsTheUnreadFirst(t *testing.T) {
	t.Parallel()
	c := newTokenCache(16) // two sets: every token has a place in both
	now := time.Unix(1_700_000_000, 0)
	hot := tokenSum("hot")
	c.put(hot, &Claims{ClientID: "app", Expiry: now.Add(time.Minute)}, now) // nearest its expiry of all
	for i := range 200 {
		if _, ok := c.get(hot, now); !ok {
			t.Fatalf("the hot token was evicted after %d one-off tokens", i)
		}
		c.put(tokenSum(fmt.Sprint("one-off-", i)), &Claims{ClientID: "app", Expiry: now.Add(time.Hour)}, now)
	}
}

func TestTokenCacheStartsAnEpochWhenGrantsOverflow(t *testing.T) {
	t.Parallel()
	c := newTokenCache(16)
	now := time.Unix(1_700_000_000, 0)
	c.put(tokenSum("first"), &Claims{ClientID: "client-first", Expiry: now.Add(time.Hour)}, now)
	for i := range c.grants.limit {
		c.grants.intern(fmt.Sprint("client-", i), "", "")
	}
	if _, ok := c.get(tokenSum("first"), now); ok {
		t.Fatal("an entry of the old grant epoch is still served: its grant index means another grant now")
	}
	c.put(tokenSum("first"), &Claims{ClientID: "client-first", Expiry: now.Add(time.Hour)}, now)
	if got, ok := c.get(tokenSum("first"), now); !ok || got.ClientID != "client-first" {
		t.Fatalf("after the new epoch: %+v, %v", got, ok)
	}
}

func TestTokenCacheUnderConcurrency(t *testing.T) {
	t.Parallel()
	c := newTokenCache(64)
	now := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				name := fmt.Sprint(i % 300)
				client := "client-" + name
				sum := tokenSum(name)
				if got, ok := c.get(sum, now); ok && got.ClientID != client {
					t.Errorf("token %s came back as %s's", name, got.ClientID)
					return
				}
				if i%(w+2) == 0 {
					c.put(sum, &Claims{ClientID: client, Expiry: now.Add(time.Hour)}, now)
				}
				if i%500 == 0 && w == 0 {
					c.grants.mu.Lock()
					c.grants.reset()
					c.grants.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// TestTokenEntryHoldsNoPointers guards the point of the cache: entries the
// garbage collector never has to walk, in one cache line.
func TestTokenEntryHoldsNoPointers(t *testing.T) {
	t.Parallel()
	if size := unsafe.Sizeof(tokenEntry{}); size != 64 {
		t.Errorf("a cache entry takes %d bytes, want 64", size)
	}
	var walk func(reflect.Type) bool
	walk = func(ty reflect.Type) bool {
		switch ty.Kind() {
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			return true
		case reflect.Array:
			return walk(ty.Elem())
		case reflect.Struct:
			for i := range ty.NumField() {
				if walk(ty.Field(i).Type) {
					return true
				}
			}
		}
		return false
	}
	indexField, ok := reflect.TypeFor[grantInterner]().FieldByName("index")
	if !ok {
		t.Fatal("grantInterner has no index field to check")
	}
	for _, ty := range []reflect.Type{reflect.TypeFor[tokenEntry](), reflect.TypeFor[tokenSet](), reflect.TypeFor[grant](),
		indexField.Type.Key(), indexField.Type.Elem()} {
		if walk(ty) {
			t.Errorf("%s holds a pointer", ty)
		}
	}
}

// TestGrantsThatHashAlikeStayApart makes every grant's key hash the same,
// as a 64-bit collision would: each must still come back as itself.
func TestGrantsThatHashAlikeStayApart(t *testing.T) {
	t.Parallel()
	c := newTokenCache(16)
	keys := []grantKey{{"app", "", "a"}, {"app", "acme", "a"}, {"app", "", "a b"}, {"ap", "p", "a"}, {"", "app", "a"}}
	index := map[grantKey]uint32{}
	for range 2 {
		for _, key := range keys {
			c.grants.mu.Lock()
			_, i := c.grants.internHashed(42, key)
			c.grants.mu.Unlock()
			if first, seen := index[key]; seen && first != i {
				t.Fatalf("%+v interned twice: %d, then %d", key, first, i)
			}
			index[key] = i
		}
	}
	table := c.grants.table.Load()
	if len(table.grants) != len(keys) {
		t.Fatalf("%d grants for %d keys", len(table.grants), len(keys))
	}
	for key, i := range index {
		g := &table.grants[i]
		if got := (grantKey{table.str(g.client), table.str(g.tenant), table.scopes[g.scopes].scope}); got != key {
			t.Errorf("grant %d is %+v, want %+v", i, got, key)
		}
	}
}

// len counts the good entries.
func (c *tokenCache) len(now time.Time) int {
	epoch := c.grants.table.Load().epoch
	n := 0
	for s := range c.sets {
		set := &c.sets[s]
		set.mu.RLock()
		for i := range set.ways {
			if !set.ways[i].reusable(now.UnixNano(), epoch) {
				n++
			}
		}
		set.mu.RUnlock()
	}
	return n
}
