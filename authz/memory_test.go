package authz

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkTokenCacheMemory reports the live heap one cached verified token
// costs when the cache is full: the cache's entries, sized for n tokens up
// front, plus the grants (client, tenant, scope) its tokens share, ten
// tokens a client as the load tool mints them.
func BenchmarkTokenCacheMemory(b *testing.B) {
	const n = 100_000
	scope := "accounts:read accounts:write transactions:read cards:read users:read core.users:act-on-behalf-of"
	for b.Loop() {
		before := heapInUse()
		c := newTokenCache(n)
		now := time.Now()
		for i := 0; i < n; i++ {
			sum := sha256.Sum256(fmt.Appendf(nil, "eyJhbGciOiJFUzI1NiJ9.token-%d", i))
			c.put(&sum, &Claims{ClientID: fmt.Sprintf("client-%d", i/10), Scope: strings.Clone(scope), TenantID: "acme", Expiry: now.Add(time.Hour)}, now)
		}
		after := heapInUse()
		kept := c.len(now)
		if kept < n*99/100 {
			b.Fatalf("only %d of %d tokens cached", kept, n)
		}
		b.ReportMetric(float64(after-before)/float64(kept), "bytes/token")
		runtime.KeepAlive(c)
	}
}

// BenchmarkUserCacheMemory reports the memory one cached user costs.
func BenchmarkUserCacheMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		d, err := NewCachedDirectory(nil, CacheConfig{TTL: time.Hour, MaxStale: time.Hour, MaxUsers: n}, SystemClock{}, newMetrics(nil))
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("user-%d", i)
			d.cache.SetWithTTL(id, &userEntry{user: User{ID: id, Status: UserActive, TenantID: "acme"}, found: true, fetchedAt: time.Now()}, 1, time.Hour)
			d.cache.Wait()
		}
		after := heapInUse()
		kept := 0
		for i := 0; i < n; i++ {
			if _, ok := d.cache.Get(fmt.Sprintf("user-%d", i)); ok {
				kept++
			}
		}
		if kept < n/2 {
			b.Fatalf("only %d of %d users cached", kept, n)
		}
		b.ReportMetric(float64(after-before)/float64(kept), "bytes/user")
		d.Close()
	}
}

// TestCachesHoldTheirConfiguredEntries guards the cache sizing: a cache sized
// for N entries must keep about N, not a fraction.
func TestCachesHoldTheirConfiguredEntries(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"ES256"}, CacheMaxTokens: 2000}, nil, SystemClock{}, newMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	d, err := NewCachedDirectory(nil, CacheConfig{TTL: time.Hour, MaxStale: time.Hour, MaxUsers: 2000}, SystemClock{}, newMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Now()
	for i := 0; i < 1000; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		v.cache.put(&sum, &Claims{ClientID: "app", Expiry: now.Add(time.Hour)}, now)
		d.cache.SetWithTTL(fmt.Sprint(i), &userEntry{}, 1, time.Hour)
		d.cache.Wait()
	}
	tokens, users := 0, 0
	for i := 0; i < 1000; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		if _, ok := v.cache.get(&sum, now); ok {
			tokens++
		}
		if _, ok := d.cache.Get(fmt.Sprint(i)); ok {
			users++
		}
	}
	if tokens < 950 || users < 950 {
		t.Fatalf("caches sized for 2000 kept %d tokens and %d users of 1000", tokens, users)
	}
}
