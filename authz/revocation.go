package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis/portcullis/internal/secretfile"
	"github.com/portcullis/portcullis/revocation"
)

// RevocationConfig configures following the issuer's revocation feed.
type RevocationConfig struct {
	// Enabled follows the feed; authz is not ready until it holds the
	// live set.
	Enabled bool `yaml:"enabled"`
	// FeedURL is the feed; empty: the issuer's URL and /oauth2/revocations.
	FeedURL string `yaml:"feed_url"`
	// TokenURL is where authz gets its own access token to read the feed;
	// empty: the issuer's URL and /oauth2/token.
	TokenURL string `yaml:"token_url"`
	// ClientID and the secret are authz's own client at the issuer, which
	// holds the scope portcullis.revocations:read.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the secret (one line); ClientSecret gives it
	// inline (for the environment) and wins.
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecret     string `yaml:"client_secret" secret:"inline"`
	// Wait is how long one long poll of the feed may be held open.
	Wait time.Duration `yaml:"wait"`
	// MaxStaleness is how old the live set may get while the feed cannot
	// be reached before OnStale applies.
	MaxStaleness time.Duration `yaml:"max_staleness"`
	// OnStale is "serve" (keep deciding with the last live set, and say so
	// in logs and metrics) or "not-ready" (report NOT_SERVING, so Envoy
	// fails closed).
	OnStale string `yaml:"on_stale"`
	// MaxBytes bounds one feed response.
	MaxBytes int64 `yaml:"max_bytes"`
}

// RevocationFollower follows the issuer's revocation feed into an immutable
// live set that every Check reads: no per-request call to the issuer.
type RevocationFollower struct {
	cfg RevocationConfig
	// newClient returns an HTTP client that adds authz's access token,
	// fetching a new one when the cached one expires.
	newClient func() *http.Client
	client    *http.Client
	clock     Clock
	log       *slog.Logger

	set atomic.Pointer[revocation.Set]
	// pending is a whole set arriving in pages; Run's alone.
	pending *revocation.Set
	// expired is when the live set was last walked for expired entries.
	expired time.Time
	// streaming is true while a stream of the feed is open and synced.
	streaming atomic.Bool
	// synced is when the feed last answered (Unix nanoseconds; 0: never).
	synced atomic.Int64
}

var _ RevocationSource = (*RevocationFollower)(nil)

// NewRevocationFollower returns a follower that authenticates with authz's
// own client credentials (RFC 6749 §4.4).
func NewRevocationFollower(cfg RevocationConfig, clock Clock, log *slog.Logger) (*RevocationFollower, error) {
	secret := cfg.ClientSecret
	if secret == "" && cfg.ClientSecretFile != "" {
		raw, err := secretfile.Read(cfg.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("revocation.client_secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(raw))
	}
	cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: secret, TokenURL: cfg.TokenURL, Scopes: []string{revocation.ReadScope}}
	newClient := func() *http.Client {
		// The token request is bounded by base's timeout; a feed request
		// has none, since a stream lasts minutes: silence ends it (poll).
		base := &http.Client{Timeout: cfg.Wait + 10*time.Second}
		return cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, base))
	}
	return &RevocationFollower{cfg: cfg, newClient: newClient, client: newClient(), clock: clock, log: log}, nil
}

// Current is the live set; empty before the first answer of the feed.
func (f *RevocationFollower) Current() *revocation.Set {
	if s := f.set.Load(); s != nil {
		return s
	}
	return revocation.Empty()
}

// Staleness is how long since the feed last answered (0 before the first
// answer: then authz is simply not ready).
func (f *RevocationFollower) Staleness() time.Duration {
	synced := f.synced.Load()
	if synced == 0 || f.streaming.Load() {
		// An open stream brings each change as it happens: current, however
		// long since the last heartbeat. A stream gone silent is given up
		// (and then ages from its last line).
		return 0
	}
	return f.clock.Now().Sub(time.Unix(0, synced))
}

// Ready reports whether decisions may use the live set: it has arrived,
// and, with on_stale: not-ready, it is no older than max_staleness.
func (f *RevocationFollower) Ready() bool {
	if f.synced.Load() == 0 {
		return false
	}
	return f.cfg.OnStale != "not-ready" || f.Staleness() <= f.cfg.MaxStaleness
}

// Run follows the feed until ctx ends, one stream (or long poll) at a time,
// so a change arrives as soon as the issuer has it; after a failure it
// retries with a
// jittered, growing backoff (a fleet that lost its issuer does not return
// in the same millisecond) and keeps the last live set.
func (f *RevocationFollower) Run(ctx context.Context) {
	backoff := time.Duration(0)
	failing := false
	for ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(jitter(backoff)):
			}
		}
		err := f.poll(ctx)
		switch {
		case err == nil:
			if failing {
				f.log.Info("revocation feed reachable again", "version", f.Current().Version())
			}
			failing, backoff = false, 0
		case ctx.Err() != nil:
			return
		default:
			if !failing {
				f.log.Error("revocation feed unreachable; deciding with the last live set", "err", err, "version", f.Current().Version())
			} else if f.Staleness() > f.cfg.MaxStaleness {
				f.log.Error("revocation live set is stale", "staleness", f.Staleness().Round(time.Second), "max_staleness", f.cfg.MaxStaleness, "on_stale", f.cfg.OnStale, "err", err)
			}
			failing = true
			backoff = min(max(2*backoff, 500*time.Millisecond), 10*time.Second)
		}
	}
}

// jitter spreads a wait over [d/2, d): followers that failed together
// retry apart.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// expireEvery is how often the live set is walked for expired entries.
// Keeping one a little longer is harmless: every token it covers has
// expired, and expireGrace keeps it past any configured clock skew too.
const (
	expireEvery = 30 * time.Second
	expireGrace = 5 * time.Minute
)

// poll asks the feed for what changed after the live set's version, as a
// stream (revocation.StreamType): each change then arrives on the open
// connection as it happens. A follower with nothing yet asks without a
// version and gets the whole set, in pages when it is large; it is ready
// once the last page has arrived. An issuer that answers with one JSON
// document (an older one) is long-polled instead.
func (f *RevocationFollower) poll(ctx context.Context) error {
	cur := f.Current()
	q := url.Values{}
	switch {
	case f.pending != nil:
		q.Set("since", strconv.FormatInt(f.pending.Version(), 10))
	case f.synced.Load() != 0:
		q.Set("since", strconv.FormatInt(cur.Version(), 10))
	}
	// The issuer answers at once while since is behind (or absent); it is
	// how long a poll is held at the current version, or how often a
	// silent stream sends a heartbeat.
	q.Set("wait", strconv.Itoa(int(f.cfg.Wait/time.Second)))
	q.Set("stream", "1")
	u, err := url.Parse(f.cfg.FeedURL)
	if err != nil {
		return err
	}
	for k, v := range u.Query() {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	// A stream is ended by silence, not by a deadline on the whole answer:
	// no line (a change, or a heartbeat, which comes every 1.5 waits) for
	// three waits and a margin, and the connection is given up.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	silence := 3*f.cfg.Wait + 15*time.Second
	idle := time.AfterFunc(silence, cancel)
	defer idle.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode == http.StatusUnauthorized {
			// Our token was revoked or the issuer's keys changed: get a new
			// one next time instead of waiting for it to expire.
			f.client = f.newClient()
		}
		return fmt.Errorf("revocation feed answered %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != revocation.StreamType {
		var feed revocation.Feed
		if err := json.NewDecoder(io.LimitReader(resp.Body, f.cfg.MaxBytes+1)).Decode(&feed); err != nil {
			return fmt.Errorf("revocation feed: %w", err)
		}
		return f.apply(feed)
	}
	dec := json.NewDecoder(&lineLimit{r: resp.Body, max: f.cfg.MaxBytes})
	defer f.streaming.Store(false)
	for {
		var feed revocation.Feed
		if err := dec.Decode(&feed); err != nil {
			if errors.Is(err, io.EOF) {
				// The issuer ended the stream (its token's lifetime, or
				// revocation.MaxStream): current until now; connect again.
				if f.synced.Load() != 0 {
					f.synced.Store(f.clock.Now().UnixNano())
				}
				return nil
			}
			return fmt.Errorf("revocation feed: %w", err)
		}
		idle.Reset(silence)
		if err := f.apply(feed); err != nil {
			return err
		}
		f.streaming.Store(f.synced.Load() != 0 && f.pending == nil)
	}
}

// apply takes one answer of the feed into the live set.
func (f *RevocationFollower) apply(feed revocation.Feed) error {
	if feed.Version < 0 {
		return errors.New("revocation feed: negative version")
	}
	cur := f.Current()
	now := f.clock.Now()
	switch {
	case feed.Full && feed.More:
		// The first page of a whole set: held apart until complete, so a
		// half-received set never replaces the one in use.
		f.pending = cur.Apply(feed)
		return nil
	case f.pending != nil:
		f.pending = f.pending.Apply(feed)
		if feed.More {
			return nil
		}
		f.set.Store(f.pending)
		f.pending = nil
	default:
		f.set.Store(cur.Apply(feed))
	}
	if feed.More && f.synced.Load() == 0 {
		return nil
	}
	if now.Sub(f.expired) >= expireEvery {
		f.set.Store(f.Current().Expire(now.Add(-expireGrace)))
		f.expired = now
	}
	f.synced.Store(now.UnixNano())
	if len(feed.Entries) > 0 || feed.Full {
		f.log.Debug("revocations updated", "version", f.Current().Version(), "entries", f.Current().Len(), "full", feed.Full)
	}
	return nil
}

// lineLimit bounds each line of a stream to max bytes: revocation.max_bytes
// applies to one answer, whether it comes alone or as a line of a stream.
type lineLimit struct {
	r    io.Reader
	max  int64
	line int64
}

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.line = 0
			continue
		}
		if l.line++; l.line > l.max {
			return 0, fmt.Errorf("an answer of the revocation feed is over revocation.max_bytes (%d)", l.max)
		}
	}
	return n, err
}

// revokedBy says which revocation refused a token, for the decision log.
func revokedBy(e revocation.Entry) error {
	switch e.Kind {
	case revocation.KindToken:
		return fmt.Errorf("token revoked (%s, revocation %d at %s)", e.Cause, e.Seq, e.At.Format(time.RFC3339))
	default:
		return fmt.Errorf("tokens of %s %s issued before %s revoked (%s, revocation %d)", e.Kind, e.Subject,
			time.Unix(e.Before, 0).UTC().Format(time.RFC3339), e.Cause, e.Seq)
	}
}
