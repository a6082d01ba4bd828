package tokenissuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const pgInsertAccount = `INSERT INTO accounts (` + accountColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`

type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// CreateAccount implements AccountStore.
func (s *PostgresStore) CreateAccount(ctx context.Context, a *Account) error {
	return pgInsertAccountRow(ctx, s.pool, a)
}

func pgInsertAccountRow(ctx context.Context, db pgExecer, a *Account) error {
	tag, err := db.Exec(ctx, pgInsertAccount, accountArgs(a)...)
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrAccountExists
	}
	return nil
}

// Account implements AccountStore.
func (s *PostgresStore) Account(ctx context.Context, id string) (*Account, error) {
	return pgReadAccount(ctx, s.pool, `id = $1`, id)
}

// AccountByEmail implements AccountStore.
func (s *PostgresStore) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	return pgReadAccount(ctx, s.pool, `email = $1`, email)
}

func pgReadAccount(ctx context.Context, q pgQueryRower, where string, arg string) (*Account, error) {
	a, err := scanAccount(q.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrAccountNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	return a, nil
}

// Accounts implements AccountStore.
func (s *PostgresStore) Accounts(ctx context.Context) ([]*Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	return scanAccounts(rows)
}

// UpdateAccount implements AccountStore; the row is locked for the
// read-modify-write.
func (s *PostgresStore) UpdateAccount(ctx context.Context, id string, update func(*Account) error) (*Account, error) {
	var out *Account
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := pgReadAccount(ctx, tx, `id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		if err := update(a); err != nil {
			return err
		}
		a.ID = id
		args := accountArgs(a)
		if _, err := tx.Exec(ctx, `UPDATE accounts SET email = $1, name = $2, role = $3, tenant_id = $4, status = $5, password_hash = $6, totp_secret = $7, totp_last_step = $8, recovery_codes = $9, created_at = $10, updated_at = $11 WHERE id = $12`,
			append(args[1:], id)...); err != nil {
			return fmt.Errorf("update account: %w", err)
		}
		out = a
		return nil
	})
	return out, err
}

// DeleteAccount implements AccountStore; its sessions go with it.
func (s *PostgresStore) DeleteAccount(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrAccountNotFound
	}
	return nil
}

// CreateSession implements AccountStore.
func (s *PostgresStore) CreateSession(ctx context.Context, sess *Session) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, sessionArgs(sess)...); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session implements AccountStore.
func (s *PostgresStore) Session(ctx context.Context, idHash []byte) (*Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, idHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// TouchSession implements AccountStore.
func (s *PostgresStore) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, unixNano(at), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession implements AccountStore.
func (s *PostgresStore) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteAccountSessions implements AccountStore.
func (s *PostgresStore) DeleteAccountSessions(ctx context.Context, accountID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1`, accountID); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// PruneSessions implements AccountStore.
func (s *PostgresStore) PruneSessions(ctx context.Context, now, idleBefore time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2`, unixNano(now), unixNano(idleBefore)); err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	return nil
}

// CreateInvite implements AccountStore.
func (s *PostgresStore) CreateInvite(ctx context.Context, inv *Invite) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO invites (`+inviteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, inviteArgs(inv)...); err != nil {
		return fmt.Errorf("create invitation: %w", err)
	}
	return nil
}

// Invite implements AccountStore.
func (s *PostgresStore) Invite(ctx context.Context, idHash []byte, now time.Time) (*Invite, error) {
	inv, err := scanInvite(s.pool.QueryRow(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id_hash = $1 AND expires_at > $2`, idHash, unixNano(now)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrInviteNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read invitation: %w", err)
	}
	return inv, nil
}

// AcceptInvite implements AccountStore.
func (s *PostgresStore) AcceptInvite(ctx context.Context, idHash []byte, now time.Time, a *Account) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM invites WHERE id_hash = $1 AND expires_at > $2`, idHash, unixNano(now))
		if err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrInviteNotFound
		}
		return pgInsertAccountRow(ctx, tx, a)
	})
}

// PruneInvites implements AccountStore.
func (s *PostgresStore) PruneInvites(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM invites WHERE expires_at <= $1`, unixNano(now)); err != nil {
		return fmt.Errorf("prune invitations: %w", err)
	}
	return nil
}
