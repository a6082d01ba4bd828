package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// lockRevocations serializes appends, so that entries commit in Seq order
// and a follower that has seen Seq n has seen every entry below n.
const lockRevocations = 0x706f7274_00000003

// changeChannel is the LISTEN/NOTIFY channel of ChangeBus.
const changeChannel = "portcullis_changes"

// NotifyChange implements ChangeBus with NOTIFY: every replica LISTENing,
// this one included, hears it.
func (s *PostgresStore) NotifyChange(ctx context.Context, topic, subject string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, changeChannel, topic+":"+subject); err != nil {
		return fmt.Errorf("notify %s: %w", topic, err)
	}
	return nil
}

// ListenChanges implements ChangeBus with LISTEN on a connection of its
// own, reconnecting until ctx ends.
func (s *PostgresStore) ListenChanges(ctx context.Context, fn func(topic, subject string)) error {
	for {
		_ = s.listen(ctx, fn)
		// The connection broke (or ctx ended): try again shortly; meanwhile
		// the feed's poll and the client cache TTL bound what is missed.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (s *PostgresStore) listen(ctx context.Context, fn func(topic, subject string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+changeChannel); err != nil {
		return err
	}
	defer func() {
		// Leave the pooled connection as it was found.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `UNLISTEN `+changeChannel)
	}()
	// Whatever was announced before this LISTEN (at start, or while the
	// connection was down) went unheard: the listener forgets all it holds.
	fn(tokenissuer.TopicAny, "")
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		topic, subject, _ := strings.Cut(n.Payload, ":")
		fn(topic, subject)
	}
}
