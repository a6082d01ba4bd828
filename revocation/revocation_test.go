package revocation

import (
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
	}}, now)
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
	s := Empty().Apply(Feed{Version: 1, Full: true, Entries: []Entry{{Seq: 1, Kind: KindClient, Subject: "app", Before: now.Unix(), Expires: now.Unix() + 100}}}, now)
	// An older watermark arriving late never moves it back.
	s = s.Apply(Feed{Version: 2, Entries: []Entry{{Seq: 2, Kind: KindClient, Subject: "app", Before: now.Unix() - 50, Expires: now.Unix() + 50}}}, now)
	if e, ok := s.Revoked(TokenKey{}, "app", "", now.Unix()-1); !ok || e.Seq != 1 {
		t.Fatalf("watermark moved back: %+v %v", e, ok)
	}
	s = s.Apply(Feed{Version: 3, Entries: []Entry{{Seq: 3, Kind: "something-new", Subject: "x", Expires: now.Unix() + 100}}}, now)
	if s.Len() != 1 || s.Version() != 3 {
		t.Fatalf("unknown kind: len %d version %d", s.Len(), s.Version())
	}
	// A full answer replaces everything.
	s2 := s.Apply(Feed{Version: 7, Full: true}, now)
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
	s := Empty().Apply(Feed{Version: 1000, Full: true, Entries: entries}, now)
	jti := KeyOf("not-revoked-jti") // computed once per token, when it is verified
	b.ReportAllocs()
	for b.Loop() {
		s.Revoked(jti, "app", "acme", now.Unix())
	}
}
