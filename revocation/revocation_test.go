package revocation

import (
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"
)

func TestSetRevokesByTokenClientAndTenant(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	s := Empty().Apply(Feed{Version: 3, Full: true, Entries: []Entry{
		{Seq: 1, Kind: KindToken, Subject: "jti-1", Expires: now.Unix() + 60},
		{Seq: 2, Kind: KindClient, Subject: "app", Before: now.Unix(), Expires: now.Unix() + 3600},
		{Seq: 3, Kind: KindTenant, Subject: "acme", Before: now.Unix() - 10, Expires: now.Unix() + 3600},
	}})
	for name, tc := range map[string]struct {
		jti, client, tenant string
		iat                 int64
		want                bool
	}{
		"revoked jti":                        {"jti-1", "other", "", now.Unix(), true},
		"client token before the watermark":  {"x", "app", "", now.Unix() - 1, true},
		"client token at the watermark":      {"x", "app", "", now.Unix(), false},
		"tenant token before the watermark":  {"x", "other", "acme", now.Unix() - 11, true},
		"tenant token after the watermark":   {"x", "other", "acme", now.Unix() - 5, false},
		"another client":                     {"x", "other", "globex", 0, false},
		"empty jti never matches":            {"", "other", "", 0, false},
		"empty tenant never matches tenants": {"x", "other", "", 0, false},
	} {
		if _, got := s.Revoked(KeyOf(tc.jti), tc.client, tc.tenant, tc.iat); got != tc.want {
			t.Errorf("%s: revoked %v, want %v", name, got, tc.want)
		}
	}
	if s.Version() != 3 || s.Len() != 3 {
		t.Fatalf("version %d len %d", s.Version(), s.Len())
	}
}

func TestSetAppliesDifferencesAndForgetsExpiredEntries(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	s := Empty().Apply(Feed{Version: 1, Full: true, Entries: []Entry{{Seq: 1, Kind: KindClient, Subject: "app", Before: now.Unix(), Expires: now.Unix() + 100}}})
	// An older watermark arriving late never moves it back.
	s = s.Apply(Feed{Version: 2, Entries: []Entry{{Seq: 2, Kind: KindClient, Subject: "app", Before: now.Unix() - 50, Expires: now.Unix() + 50}}})
	if e, ok := s.Revoked(TokenKey{}, "app", "", now.Unix()-1); !ok || e.Seq != 1 {
		t.Fatalf("watermark moved back: %+v %v", e, ok)
	}
	s = s.Apply(Feed{Version: 3, Entries: []Entry{{Seq: 3, Kind: "something-new", Subject: "x", Expires: now.Unix() + 100}}})
	if s.Len() != 1 || s.Version() != 3 {
		t.Fatalf("unknown kind: len %d version %d", s.Len(), s.Version())
	}
	// A full answer replaces everything.
	s2 := s.Apply(Feed{Version: 7, Full: true})
	if s2.Len() != 0 || s2.Version() != 7 {
		t.Fatalf("full: len %d version %d", s2.Len(), s2.Version())
	}
	if s.Len() != 1 {
		t.Fatal("Apply changed the set it was called on")
	}
	if got := s.Expire(now.Add(99 * time.Second)); got != s {
		t.Fatal("Expire rebuilt a set with nothing expired")
	}
	if got := s.Expire(now.Add(100 * time.Second)); got.Len() != 0 || got.Version() != 3 {
		t.Fatalf("expired entry kept: %d", got.Len())
	}
}

func TestWatermarkCoversTheWholeSecond(t *testing.T) {
	t.Parallel()
	at := time.Unix(100, 400_000_000)
	w := Watermark(at)
	if w != 101 {
		t.Fatalf("watermark %d", w)
	}
	// A token issued at 100.3 s has iat 100: covered; so is one issued at
	// exactly the watermark's moment.
	if !(int64(100) < w) || Watermark(time.Unix(100, 0)) != 101 {
		t.Fatal("a token of the same second is not covered")
	}
}

func BenchmarkRevokedForAValidToken(b *testing.B) {
	now := time.Now()
	var entries []Entry
	for i := range 1000 {
		entries = append(entries, Entry{Seq: int64(i), Kind: KindToken, Subject: string(rune('a'+i%26)) + time.Duration(i).String(), Expires: now.Unix() + 3600})
	}
	s := Empty().Apply(Feed{Version: 1000, Full: true, Entries: entries})
	jti := KeyOf("not-revoked-jti") // computed once per token, when it is verified
	b.ReportAllocs()
	for b.Loop() {
		s.Revoked(jti, "app", "acme", now.Unix())
	}
}

// TestTrieAgreesWithAMap puts, replaces and removes many keys, some of
// whose hashes collide in part or whole, and checks every version against a
// map kept beside it; the versions before each change must not move.
func TestTrieAgreesWithAMap(t *testing.T) {
	t.Parallel()
	// Hashes from a small space force shared prefixes and whole collisions.
	hashOf := func(k string) uint64 {
		h := uint64(0)
		for _, c := range k {
			h = h*31 + uint64(c)
		}
		return h % 97 << 59 // five bits a level: only the last levels differ
	}
	var tr trie[string]
	want := map[string]int64{}
	type snapshot struct {
		tr   trie[string]
		want map[string]int64
	}
	var snaps []snapshot
	for i := range 3000 {
		k := fmt.Sprint("k", i%700)
		if i%5 == 4 {
			var removed bool
			tr, removed = tr.remove(hashOf(k), k)
			_, had := want[k]
			if removed != had {
				t.Fatalf("remove %s: %v, map had %v", k, removed, had)
			}
			delete(want, k)
		} else {
			var added bool
			tr, added = tr.put(hashOf(k), k, Entry{Seq: int64(i)})
			_, had := want[k]
			if added == had {
				t.Fatalf("put %s: added %v, map had %v", k, added, had)
			}
			want[k] = int64(i)
		}
		if i%250 == 0 {
			snaps = append(snaps, snapshot{tr, maps.Clone(want)})
		}
	}
	snaps = append(snaps, snapshot{tr, want})
	for n, s := range snaps {
		got := map[string]int64{}
		s.tr.each(func(_ uint64, k string, e *Entry) bool { got[k] = e.Seq; return true })
		if !maps.Equal(got, s.want) {
			t.Fatalf("snapshot %d: %d entries, want %d", n, len(got), len(s.want))
		}
		for i := range 700 {
			k := fmt.Sprint("k", i)
			e, ok := s.tr.get(hashOf(k), k)
			w, wok := s.want[k]
			if ok != wok || (ok && e.Seq != w) {
				t.Fatalf("snapshot %d: get %s = %v %v, want %v %v", n, k, e, ok, w, wok)
			}
		}
	}
}

func TestSetCountsAndExpiresManyEntries(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	s := Empty()
	for i := range 5000 {
		s = s.Apply(Feed{Version: int64(i + 1), Entries: []Entry{
			{Seq: int64(i + 1), Kind: KindToken, Subject: fmt.Sprint("jti-", i), Expires: now.Unix() + int64(i%10)},
		}})
	}
	// The same jti again with a later expiry replaces, not adds.
	s = s.Apply(Feed{Version: 5001, Entries: []Entry{{Seq: 5001, Kind: KindToken, Subject: "jti-0", Expires: now.Unix() + 100}}})
	if s.Len() != 5000 {
		t.Fatalf("len %d", s.Len())
	}
	s = s.Expire(now.Add(5 * time.Second))
	if s.Len() != 2001 { // six in ten expire; jti-0 now lives to +100
		t.Fatalf("after expiry: len %d", s.Len())
	}
	if _, ok := s.Revoked(KeyOf("jti-0"), "", "", 0); !ok {
		t.Fatal("jti-0 lost")
	}
	if _, ok := s.Revoked(KeyOf("jti-4999"), "", "", 0); !ok {
		t.Fatal("jti-4999 (expires +9) lost")
	}
	if _, ok := s.Revoked(KeyOf("jti-10"), "", "", 0); ok {
		t.Fatal("jti-10 (expired) kept")
	}
}

// BenchmarkApplyOneRevocation is the cost of one more revocation reaching
// a set of each size: it must not grow with the set.
func BenchmarkApplyOneRevocation(b *testing.B) {
	now := time.Now().Unix()
	for _, size := range []int{1_000, 200_000} {
		b.Run(fmt.Sprint("entries=", size), func(b *testing.B) {
			entries := make([]Entry, size)
			for i := range entries {
				entries[i] = Entry{Seq: int64(i + 1), Kind: KindToken, Subject: fmt.Sprint("jti-", i), Expires: now + 3600}
			}
			s := Empty().Apply(Feed{Version: int64(size), Full: true, Entries: entries})
			next := []Entry{{Kind: KindToken, Expires: now + 3600}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				next[0].Seq, next[0].Subject = int64(size+i), "new-"+strconv.Itoa(i)
				s.Apply(Feed{Version: next[0].Seq, Entries: next})
			}
		})
	}
}
