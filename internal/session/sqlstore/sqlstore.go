// Package sqlstore keeps sessions in a SQL database (SQLite or PostgreSQL, see
// internal/database): the persistent archive tier, or a complete store on its own. Records are
// sealed by a seal.Keyring (encrypted at rest when keys are configured). Sessions do not expire here.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema steps of the "sessions" component, for database.DB.Migrate.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

var _ session.Store = (*Store)(nil)

// Store is a SQL session store, safe for concurrent use.
type Store struct {
	db   *database.DB
	keys *seal.Keyring
	now  func() time.Time

	qGet, qCreate, qUpdate, qVersion, qDelete, qDeleteUser, qPut string
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock for timestamps (time.Now by default).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New migrates the sessions schema and returns a store over db; keys seal the records (nil:
// plaintext).
func New(ctx context.Context, db *database.DB, keys *seal.Keyring, opts ...Option) (*Store, error) {
	if err := db.Migrate(ctx, "sessions", Migrations()); err != nil {
		return nil, fmt.Errorf("sqlstore.New: %w", err)
	}
	s := &Store{db: db, keys: keys, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	r := db.Rebind
	s.qGet = r(`SELECT key_id, data FROM sessions WHERE tenant = ? AND id = ?`)
	s.qCreate = r(`INSERT INTO sessions (tenant, id, user_id, version, created_at, updated_at, key_id, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING`)
	s.qUpdate = r(`UPDATE sessions SET version = ?, updated_at = ?, key_id = ?, data = ?
		WHERE tenant = ? AND id = ? AND version = ?`)
	s.qVersion = r(`SELECT version FROM sessions WHERE tenant = ? AND id = ?`)
	s.qDelete = r(`DELETE FROM sessions WHERE tenant = ? AND id = ?`)
	s.qDeleteUser = r(`DELETE FROM sessions WHERE tenant = ? AND user_id = ?`)
	s.qPut = r(`INSERT INTO sessions (tenant, id, user_id, version, created_at, updated_at, key_id, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at,
			key_id = excluded.key_id, data = excluded.data
		WHERE sessions.version < excluded.version`)
	return s, nil
}

// Create implements session.Store.
func (st *Store) Create(ctx context.Context, s *session.Session) error {
	now := session.Now(st.now)
	c := s.Clone()
	c.Version = 1
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	keyID, data, err := session.SealRecord(st.keys, c)
	if err != nil {
		return fmt.Errorf("sqlstore.Create: %w", err)
	}
	res, err := st.db.ExecContext(ctx, st.qCreate, c.Tenant, c.ID, c.User, c.Version, c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli(), keyID, data)
	if err != nil {
		return fmt.Errorf("sqlstore.Create %s: %w", s.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore.Create %s: %w", s.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlstore.Create %s: %w", s.ID, session.ErrExists)
	}
	s.Version, s.CreatedAt, s.UpdatedAt = c.Version, c.CreatedAt, c.UpdatedAt
	return nil
}

// Get implements session.Store.
func (st *Store) Get(ctx context.Context, tenant, id string) (*session.Session, error) {
	var (
		keyID string
		data  []byte
	)
	err := st.db.QueryRowContext(ctx, st.qGet, tenant, id).Scan(&keyID, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore.Get %s: %w", id, session.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore.Get %s: %w", id, err)
	}
	s, err := session.OpenRecord(st.keys, tenant, id, keyID, data)
	if err != nil {
		return nil, fmt.Errorf("sqlstore.Get: %w", err)
	}
	return s, nil
}

// Update implements session.Store.
func (st *Store) Update(ctx context.Context, s *session.Session) error {
	c := s.Clone()
	c.Version++
	c.UpdatedAt = session.Now(st.now)
	keyID, data, err := session.SealRecord(st.keys, c)
	if err != nil {
		return fmt.Errorf("sqlstore.Update: %w", err)
	}
	res, err := st.db.ExecContext(ctx, st.qUpdate, c.Version, c.UpdatedAt.UnixMilli(), keyID, data, c.Tenant, c.ID, s.Version)
	if err != nil {
		return fmt.Errorf("sqlstore.Update %s: %w", s.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore.Update %s: %w", s.ID, err)
	}
	if n == 0 {
		var v int64
		err := st.db.QueryRowContext(ctx, st.qVersion, s.Tenant, s.ID).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("sqlstore.Update %s: %w", s.ID, session.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlstore.Update %s: %w", s.ID, err)
		}
		return fmt.Errorf("sqlstore.Update %s: version %d, stored %d: %w", s.ID, s.Version, v, session.ErrConflict)
	}
	s.Version, s.UpdatedAt = c.Version, c.UpdatedAt
	return nil
}

// Delete implements session.Store.
func (st *Store) Delete(ctx context.Context, tenant, id string) error {
	res, err := st.db.ExecContext(ctx, st.qDelete, tenant, id)
	if err != nil {
		return fmt.Errorf("sqlstore.Delete %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore.Delete %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlstore.Delete %s: %w", id, session.ErrNotFound)
	}
	return nil
}

// List implements session.Store.
func (st *Store) List(ctx context.Context, tenant, user string, limit int, pageToken string) ([]*session.Session, string, error) {
	after, hasAfter, err := session.ParseToken(pageToken)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore.List: %w", err)
	}
	limit = session.Limit(limit)
	var q strings.Builder
	args := []any{tenant}
	q.WriteString(`SELECT id, key_id, data FROM sessions WHERE tenant = ?`)
	if user != "" {
		q.WriteString(` AND user_id = ?`)
		args = append(args, user)
	}
	if hasAfter {
		q.WriteString(` AND (updated_at < ? OR (updated_at = ? AND id < ?))`)
		args = append(args, after.UpdatedMs, after.UpdatedMs, after.ID)
	}
	fmt.Fprintf(&q, ` ORDER BY updated_at DESC, id DESC LIMIT %d`, limit+1)
	rows, err := st.db.QueryContext(ctx, st.db.Rebind(q.String()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore.List: %w", err)
	}
	defer rows.Close()
	var out []*session.Session
	for rows.Next() {
		var (
			id, keyID string
			data      []byte
		)
		if err := rows.Scan(&id, &keyID, &data); err != nil {
			return nil, "", fmt.Errorf("sqlstore.List: %w", err)
		}
		s, err := session.OpenRecord(st.keys, tenant, id, keyID, data)
		if err != nil {
			return nil, "", fmt.Errorf("sqlstore.List: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore.List: %w", err)
	}
	out, next := session.Page(out, limit, false)
	return out, next, nil
}

// DeleteUser implements session.Store.
func (st *Store) DeleteUser(ctx context.Context, tenant, user string) (int, error) {
	res, err := st.db.ExecContext(ctx, st.qDeleteUser, tenant, user)
	if err != nil {
		return 0, fmt.Errorf("sqlstore.DeleteUser: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore.DeleteUser: %w", err)
	}
	return int(n), nil
}

// Put stores s as it is (version and timestamps kept) unless the table holds the same session at
// an equal or newer version. Tiered stores use it to archive and to promote.
func (st *Store) Put(ctx context.Context, s *session.Session) error {
	keyID, data, err := session.SealRecord(st.keys, s)
	if err != nil {
		return fmt.Errorf("sqlstore.Put: %w", err)
	}
	if _, err := st.db.ExecContext(ctx, st.qPut, s.Tenant, s.ID, s.User, s.Version, s.CreatedAt.UnixMilli(), s.UpdatedAt.UnixMilli(), keyID, data); err != nil {
		return fmt.Errorf("sqlstore.Put %s: %w", s.ID, err)
	}
	return nil
}

// Count returns the number of stored sessions (for metrics).
func (st *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore.Count: %w", err)
	}
	return n, nil
}

// Version returns the stored version of the session; ErrNotFound if absent.
func (st *Store) Version(ctx context.Context, tenant, id string) (int64, error) {
	var v int64
	err := st.db.QueryRowContext(ctx, st.qVersion, tenant, id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlstore.Version %s: %w", id, session.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore.Version %s: %w", id, err)
	}
	return v, nil
}
