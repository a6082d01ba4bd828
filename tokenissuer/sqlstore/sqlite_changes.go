package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/portcullis/portcullis/tokenissuer"
)

// sqliteChangePoll is how often a listener asks SQLite whether another
// process wrote to the file.
const sqliteChangePoll = 250 * time.Millisecond

// ListenChanges implements ChangeBus. Changes this process announces arrive
// at once. An SQLite file has no notifications, and the CLI changes it from
// another process: PRAGMA data_version, asked on a connection of the
// listener's own every sqliteChangePoll, moves whenever any other
// connection committed, and then fn hears TopicAny.
//
// It returns only once the watch has let go of its connection, so that a
// caller that closes the store next leaves no connection behind to reopen
// the file.
func (s *SQLiteStore) ListenChanges(ctx context.Context, fn func(topic, subject string)) error {
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watchFile(ctx, fn)
	}()
	err := s.localBus.ListenChanges(ctx, fn)
	<-watched
	return err
}

func (s *SQLiteStore) watchFile(ctx context.Context, fn func(topic, subject string)) {
	t := time.NewTicker(sqliteChangePoll)
	defer t.Stop()
	// The watch starts on a connection of its own, trying again (a busy
	// file, a loaded machine) rather than giving up for good.
	var conn *sql.Conn
	var last int64
	version := func() (int64, error) {
		var v int64
		err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
		return v, err
	}
	for {
		var err error
		if conn, err = s.db.Conn(ctx); err == nil {
			if last, err = version(); err == nil {
				break
			}
			conn.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	defer conn.Close()
	// Whatever another process wrote before the watch began went unseen:
	// the listener forgets all it holds.
	fn(tokenissuer.TopicAny, "")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := version()
		if err != nil {
			continue
		}
		if v != last {
			last = v
			fn(tokenissuer.TopicAny, "")
		}
	}
}

// localBus delivers changes to the listeners of one process.
type localBus struct {
	mu        sync.Mutex
	listeners map[int]func(topic, subject string)
	next      int
}

// NotifyChange implements ChangeBus.
func (b *localBus) NotifyChange(_ context.Context, topic, subject string) error {
	b.mu.Lock()
	fns := make([]func(string, string), 0, len(b.listeners))
	for _, fn := range b.listeners {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(topic, subject)
	}
	return nil
}

// ListenChanges implements ChangeBus.
func (b *localBus) ListenChanges(ctx context.Context, fn func(topic, subject string)) error {
	b.mu.Lock()
	if b.listeners == nil {
		b.listeners = map[int]func(string, string){}
	}
	id := b.next
	b.next++
	b.listeners[id] = fn
	b.mu.Unlock()
	<-ctx.Done()
	b.mu.Lock()
	delete(b.listeners, id)
	b.mu.Unlock()
	return nil
}
