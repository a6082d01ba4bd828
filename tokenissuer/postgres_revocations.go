package tokenissuer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/revocation"
)

// lockRevocations serializes appends, so that entries commit in Seq order
// and a follower that has seen Seq n has seen every entry below n.
const lockRevocations = 0x706f7274_00000003

// changeChannel is the LISTEN/NOTIFY channel of ChangeBus.
const changeChannel = "portcullis_changes"

// AppendRevocation implements RevocationStore.
func (s *PostgresStore) AppendRevocation(ctx context.Context, e *revocation.Entry) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockRevocations)); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO revocations (kind, subject, before_s, expires_s, cause, at, client_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
			string(e.Kind), e.Subject, e.Before, e.Expires, e.Cause, unixNano(e.At), e.Client).Scan(&e.Seq)
		if err != nil {
			return fmt.Errorf("append revocation: %w", err)
		}
		return nil
	})
}

// Revocations implements RevocationStore.
func (s *PostgresStore) Revocations(ctx context.Context, afterSeq int64, now time.Time) ([]revocation.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE seq > $1 AND expires_s > $2 ORDER BY seq`, afterSeq, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	defer rows.Close()
	return scanRevocations(rows)
}

// LatestRevocation implements RevocationStore: the highest committed Seq.
// (Not the sequence's last value: nextval is visible before its row is
// committed, and a follower told that version would skip the row.)
// Pruning keeps the newest row, so the version never moves back.
func (s *PostgresStore) LatestRevocation(ctx context.Context) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM revocations`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("read revocation version: %w", err)
	}
	return seq, nil
}

// PruneRevocations implements RevocationStore.
func (s *PostgresStore) PruneRevocations(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE expires_s <= $1 AND seq < (SELECT MAX(seq) FROM revocations)`, now.Unix()); err != nil {
		return fmt.Errorf("prune revocations: %w", err)
	}
	return nil
}

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
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		topic, subject, _ := strings.Cut(n.Payload, ":")
		fn(topic, subject)
	}
}
