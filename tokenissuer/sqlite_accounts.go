package tokenissuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const sqliteInsertAccount = `INSERT INTO accounts (` + accountColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

// CreateAccount implements AccountStore.
func (s *SQLiteStore) CreateAccount(ctx context.Context, a *Account) error {
	return sqliteInsertAccountRow(ctx, s.db, a)
}

func sqliteInsertAccountRow(ctx context.Context, db interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, a *Account) error {
	res, err := db.ExecContext(ctx, sqliteInsertAccount, accountArgs(a)...)
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrAccountExists
	}
	return nil
}

// Account implements AccountStore.
func (s *SQLiteStore) Account(ctx context.Context, id string) (*Account, error) {
	return sqliteReadAccount(ctx, s.db, `id = ?`, id)
}

// AccountByEmail implements AccountStore.
func (s *SQLiteStore) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	return sqliteReadAccount(ctx, s.db, `email = ?`, email)
}

func sqliteReadAccount(ctx context.Context, q sqlQueryer, where string, arg string) (*Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrAccountNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	return a, nil
}

// Accounts implements AccountStore.
func (s *SQLiteStore) Accounts(ctx context.Context) ([]*Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	return scanAccounts(rows)
}

// UpdateAccount implements AccountStore.
func (s *SQLiteStore) UpdateAccount(ctx context.Context, id string, update func(*Account) error) (*Account, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	a, err := sqliteReadAccount(ctx, tx, `id = ?`, id)
	if err != nil {
		return nil, err
	}
	if err := update(a); err != nil {
		return nil, err
	}
	a.ID = id
	args := accountArgs(a)
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email = ?, name = ?, role = ?, tenant_id = ?, status = ?, password_hash = ?, totp_secret = ?, totp_last_step = ?, recovery_codes = ?, created_at = ?, updated_at = ? WHERE id = ?`,
		append(args[1:], id)...); err != nil {
		return nil, fmt.Errorf("update account: %w", err)
	}
	return a, tx.Commit()
}

// DeleteAccount implements AccountStore; its sessions go with it.
func (s *SQLiteStore) DeleteAccount(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM accounts WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrAccountNotFound
	}
	return nil
}

// CreateSession implements AccountStore.
func (s *SQLiteStore) CreateSession(ctx context.Context, sess *Session) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sessionArgs(sess)...); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session implements AccountStore.
func (s *SQLiteStore) Session(ctx context.Context, idHash []byte) (*Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = ?`, idHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return sess, nil
}

// TouchSession implements AccountStore.
func (s *SQLiteStore) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, unixNano(at), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession implements AccountStore.
func (s *SQLiteStore) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteAccountSessions implements AccountStore.
func (s *SQLiteStore) DeleteAccountSessions(ctx context.Context, accountID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = ?`, accountID); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// PruneSessions implements AccountStore.
func (s *SQLiteStore) PruneSessions(ctx context.Context, now, idleBefore time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`, unixNano(now), unixNano(idleBefore)); err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	return nil
}

// CreateInvite implements AccountStore.
func (s *SQLiteStore) CreateInvite(ctx context.Context, inv *Invite) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO invites (`+inviteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, inviteArgs(inv)...); err != nil {
		return fmt.Errorf("create invitation: %w", err)
	}
	return nil
}

// Invite implements AccountStore.
func (s *SQLiteStore) Invite(ctx context.Context, idHash []byte, now time.Time) (*Invite, error) {
	return sqliteReadInvite(ctx, s.db, idHash, now)
}

func sqliteReadInvite(ctx context.Context, q sqlQueryer, idHash []byte, now time.Time) (*Invite, error) {
	inv, err := scanInvite(q.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id_hash = ? AND expires_at > ?`, idHash, unixNano(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInviteNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read invitation: %w", err)
	}
	return inv, nil
}

// AcceptInvite implements AccountStore.
func (s *SQLiteStore) AcceptInvite(ctx context.Context, idHash []byte, now time.Time, a *Account) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM invites WHERE id_hash = ? AND expires_at > ?`, idHash, unixNano(now))
	if err != nil {
		return fmt.Errorf("accept invitation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrInviteNotFound
	}
	if err := sqliteInsertAccountRow(ctx, tx, a); err != nil {
		return err
	}
	return tx.Commit()
}

// PruneInvites implements AccountStore.
func (s *SQLiteStore) PruneInvites(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM invites WHERE expires_at <= ?`, unixNano(now)); err != nil {
		return fmt.Errorf("prune invitations: %w", err)
	}
	return nil
}
