package audit

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/internal/database"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the audit schema's migrations (for database.DB.Migrate, component "audit").
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

// Store is the SQL sink: records in audit_records, each tenant's chain head in audit_heads and
// its pruning anchor in audit_checkpoints. Several instances may share one PostgreSQL database:
// appends to a tenant's chain are serialised by a transaction-scoped advisory lock per tenant
// (SQLite serialises writers itself). Store is safe for concurrent use.
//
// The store never updates a record except to erase its body; UPDATE and DELETE privileges on
// audit_records can be withheld from any other database user.
type Store struct {
	db  *database.DB
	now func() time.Time

	// stmts holds Append's prepared statements (see stmt), prepared on first use and kept until
	// Close: a multi-row INSERT is too long to compile per batch.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

var (
	_ Sink      = (*Store)(nil)
	_ Container = (*Store)(nil)
)

// NewStore migrates db's audit schema and returns its store. now is the clock of erasure and
// pruning timestamps (nil: time.Now).
func NewStore(ctx context.Context, db *database.DB, now func() time.Time) (*Store, error) {
	if err := db.Migrate(ctx, "audit", Migrations()); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}, nil
}

// Close releases Append's prepared statements (a later Append prepares them again). The database
// belongs to the caller and stays open.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	return errors.Join(errs...)
}

const recordColumns = `tenant, seq, ts_us, request_id, trace_id, subject, key_name, end_user, transport, rpc,
	model, target, attempts, class, code, input_tokens, output_tokens, latency_us, client_addr,
	forwarded_for, body_key_id, body_digest, prev_hash, hash, body, erased_at_us, usage_estimated`

// numRecordColumns is the number of columns in recordColumns (and of values recordArgs appends).
const numRecordColumns = 27

// maxInsertRows is the most rows one INSERT statement carries. Append inserts a batch with
// statements of maxInsertRows rows and then of the powers of two below it (a batch of 100: 64,
// 32, 4), so a handful of statements, each prepared once per connection, serve every batch
// size. 64 rows are 1,728 parameters: far under SQLite's limit (32,766 in modernc's build;
// 999 before SQLite 3.32) and PostgreSQL's (65,535).
const maxInsertRows = 64

// Statements Append prepares once.
const (
	selectHeadSQL = "SELECT seq, hash FROM audit_heads WHERE tenant = ?"
	upsertHeadSQL = `INSERT INTO audit_heads (tenant, seq, hash) VALUES (?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`
)

// insertSQL returns the INSERT of rows records for driver (before Rebind).
//
// On SQLite it is INSERT OR ROLLBACK: a failing row (none should: nothing else writes a
// tenant's next seq while Append holds the write lock) rolls back the whole transaction, which
// Append does anyway on any error. With the default ABORT, SQLite would have to undo just the
// statement's earlier rows, so it keeps a statement journal, copying every page a multi-row
// INSERT touches to a temporary file first: that doubled the I/O of a batch.
func insertSQL(driver string, rows int) string {
	var b strings.Builder
	b.Grow(len(recordColumns) + 40 + rows*(2*numRecordColumns+3))
	if driver == database.SQLite {
		b.WriteString("INSERT OR ROLLBACK INTO audit_records (" + recordColumns + ") VALUES ")
	} else {
		b.WriteString("INSERT INTO audit_records (" + recordColumns + ") VALUES ")
	}
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range numRecordColumns {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	return b.String()
}

// stmt returns the prepared statement of query (before Rebind), preparing it on first use.
// database/sql prepares it again on each pooled connection the first time it runs there.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.db.Rebind(query))
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[query] = st
	return st, nil
}

// insertStmts caches insertSQL for each driver and n = 1, 2, 4, ... maxInsertRows (built once:
// the text of the 64-row statement is 5 KB).
var insertStmts = func() map[string]map[int]string {
	m := map[string]map[int]string{}
	for _, d := range []string{database.SQLite, database.Postgres} {
		m[d] = map[int]string{}
		for n := 1; n <= maxInsertRows; n *= 2 {
			m[d][n] = insertSQL(d, n)
		}
	}
	return m
}()

// Append chains and stores recs in one transaction, with multi-row INSERTs (see maxInsertRows).
func (s *Store) Append(ctx context.Context, recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit.Append: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// Chain every record first, in order: the first record of each tenant locks (PostgreSQL)
	// and reads the tenant's head, as a row-by-row insert would.
	type head struct {
		seq  int64
		hash []byte
	}
	heads := make(map[string]*head, 1)
	var tenants []string // in order of first appearance, for the head updates
	for _, r := range recs {
		h, ok := heads[r.Tenant]
		if !ok {
			if s.db.Driver() == database.Postgres {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", tenantLockKey(r.Tenant)); err != nil {
					return fmt.Errorf("audit.Append: lock tenant %q: %w", r.Tenant, err)
				}
			}
			sel, err := s.stmt(ctx, selectHeadSQL)
			if err != nil {
				return fmt.Errorf("audit.Append: prepare: %w", err)
			}
			h = &head{}
			err = tx.StmtContext(ctx, sel).QueryRowContext(ctx, r.Tenant).Scan(&h.seq, &h.hash)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("audit.Append: head of %q: %w", r.Tenant, err)
			}
			heads[r.Tenant] = h
			tenants = append(tenants, r.Tenant)
		}
		r.chain(h.seq+1, h.hash)
		h.seq, h.hash = r.Seq, r.Hash
	}
	args := make([]any, 0, min(len(recs), maxInsertRows)*numRecordColumns)
	for rest := recs; len(rest) > 0; {
		n := maxInsertRows
		for n > len(rest) {
			n /= 2
		}
		ins, err := s.stmt(ctx, insertStmts[s.db.Driver()][n])
		if err != nil {
			return fmt.Errorf("audit.Append: prepare: %w", err)
		}
		args = args[:0]
		for _, r := range rest[:n] {
			args = appendRecordArgs(args, r)
		}
		if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("audit.Append: insert %q/%d and %d more: %w", rest[0].Tenant, rest[0].Seq, n-1, err)
		}
		rest = rest[n:]
	}
	up, err := s.stmt(ctx, upsertHeadSQL)
	if err != nil {
		return fmt.Errorf("audit.Append: prepare: %w", err)
	}
	upTx := tx.StmtContext(ctx, up)
	for _, tenant := range tenants {
		h := heads[tenant]
		if _, err := upTx.ExecContext(ctx, tenant, h.seq, h.hash); err != nil {
			return fmt.Errorf("audit.Append: head of %q: %w", tenant, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit.Append: commit: %w", err)
	}
	return nil
}

// Contains reports whether r, as the writer handed it to Append, is stored: a record of its
// tenant with its request id, time, method, subject, latency and code.
func (s *Store) Contains(ctx context.Context, r *Record) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT 1 FROM audit_records WHERE tenant = ? AND request_id = ?
		AND ts_us = ? AND rpc = ? AND subject = ? AND latency_us = ? AND code = ? LIMIT 1`),
		r.Tenant, r.RequestID, r.Time.UnixMicro(), r.RPC, r.Subject, r.Latency.Microseconds(), r.Code).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit.Contains: %w", err)
	}
	return true, nil
}

// tenantLockKey is the PostgreSQL advisory lock of a tenant's chain.
func tenantLockKey(tenant string) int64 {
	h := fnv.New64a()
	h.Write([]byte("audit\x00" + tenant))
	return int64(h.Sum64())
}

// appendRecordArgs appends r's values in the order of recordColumns.
func appendRecordArgs(args []any, r *Record) []any {
	var erased any
	if !r.ErasedAt.IsZero() {
		erased = r.ErasedAt.UnixMicro()
	}
	return append(args, r.Tenant, r.Seq, r.Time.UnixMicro(), r.RequestID, r.TraceID, r.Subject, r.KeyName, r.User,
		r.Transport, r.RPC, r.Model, r.Target, r.Attempts, r.Class, r.Code, r.InputTokens, r.OutputTokens,
		r.Latency.Microseconds(), r.ClientAddr, r.ForwardedFor, r.BodyKeyID, nilIfEmpty(r.BodyDigest),
		r.PrevHash, r.Hash, nilIfEmpty(r.Body), erased, r.UsageEstimated)
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (*Record, error) {
	r := new(Record)
	var ts, lat int64
	var erased sql.NullInt64
	if err := sc.Scan(&r.Tenant, &r.Seq, &ts, &r.RequestID, &r.TraceID, &r.Subject, &r.KeyName, &r.User,
		&r.Transport, &r.RPC, &r.Model, &r.Target, &r.Attempts, &r.Class, &r.Code, &r.InputTokens,
		&r.OutputTokens, &lat, &r.ClientAddr, &r.ForwardedFor, &r.BodyKeyID, &r.BodyDigest,
		&r.PrevHash, &r.Hash, &r.Body, &erased, &r.UsageEstimated); err != nil {
		return nil, err
	}
	r.Time = time.UnixMicro(ts).UTC()
	r.Latency = time.Duration(lat) * time.Microsecond
	if erased.Valid {
		r.ErasedAt = time.UnixMicro(erased.Int64).UTC()
	}
	return r, nil
}

// Query returns the tenant's records matching f, newest first, and the token of the next page
// ("" on the last page).
func (s *Store) Query(ctx context.Context, f Filter) ([]*Record, string, error) {
	if f.Tenant == "" {
		return nil, "", errors.New("audit.Query: tenant is required")
	}
	size := f.PageSize
	if size <= 0 {
		size = 100
	}
	size = min(size, 1000)
	where := []string{"tenant = ?"}
	args := []any{f.Tenant}
	if f.PageToken != "" {
		seq, err := decodePageToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		where, args = append(where, "seq < ?"), append(args, seq)
	}
	if !f.From.IsZero() {
		where, args = append(where, "ts_us >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		where, args = append(where, "ts_us < ?"), append(args, f.To.UnixMicro())
	}
	if f.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, f.Subject)
	}
	if f.User != "" {
		where, args = append(where, "end_user = ?"), append(args, f.User)
	}
	if f.RequestID != "" {
		where, args = append(where, "request_id = ?"), append(args, f.RequestID)
	}
	args = append(args, size+1)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT "+recordColumns+" FROM audit_records WHERE "+
		strings.Join(where, " AND ")+" ORDER BY seq DESC LIMIT ?"), args...)
	if err != nil {
		return nil, "", fmt.Errorf("audit.Query: %w", err)
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, "", fmt.Errorf("audit.Query: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("audit.Query: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = encodePageToken(out[size-1].Seq)
	}
	return out, next, nil
}

const pageTokenPrefix = "a1:"

func encodePageToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.FormatInt(seq, 10)))
}

func decodePageToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), pageTokenPrefix) {
		return 0, ErrInvalidPageToken
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(string(b), pageTokenPrefix), 10, 64)
	if err != nil || seq < 1 {
		return 0, ErrInvalidPageToken
	}
	return seq, nil
}

// tenants lists every tenant with a chain.
func (s *Store) tenants(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT tenant FROM audit_heads ORDER BY tenant")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// anchor returns the tenant's checkpoint (0 and nil when nothing was pruned).
func anchor(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, db *database.DB, tenant string) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := q.QueryRowContext(ctx, db.Rebind("SELECT seq, hash FROM audit_checkpoints WHERE tenant = ?"), tenant).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	return seq, hash, err
}

// Verify checks every tenant's chain, from its checkpoint to its head, and returns the first bad
// record of each tenant whose chain is broken (none: every chain verifies). checked counts the
// records read.
func (s *Store) Verify(ctx context.Context) (problems []Problem, checked int64, err error) {
	tenants, err := s.tenants(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("audit.Verify: tenants: %w", err)
	}
	for _, t := range tenants {
		p, n, err := s.verifyTenant(ctx, t)
		checked += n
		if err != nil {
			return problems, checked, fmt.Errorf("audit.Verify %q: %w", t, err)
		}
		if p != nil {
			problems = append(problems, *p)
		}
	}
	return problems, checked, nil
}

func (s *Store) verifyTenant(ctx context.Context, tenant string) (*Problem, int64, error) {
	// One read transaction: a consistent snapshot of head, checkpoint and records.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.db.Driver() == database.Postgres, Isolation: isolation(s.db)})
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = tx.Rollback() }()
	var headSeq int64
	var headHash []byte
	if err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT seq, hash FROM audit_heads WHERE tenant = ?"), tenant).Scan(&headSeq, &headHash); err != nil {
		return nil, 0, fmt.Errorf("head: %w", err)
	}
	aSeq, aHash, err := anchor(ctx, tx, s.db, tenant)
	if err != nil {
		return nil, 0, fmt.Errorf("checkpoint: %w", err)
	}
	v := newVerifier(tenant, aSeq, aHash)
	rows, err := tx.QueryContext(ctx, s.db.Rebind("SELECT "+recordColumns+" FROM audit_records WHERE tenant = ? ORDER BY seq"), tenant)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, n, err
		}
		n++
		if !v.next(r) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, n, err
	}
	v.end(headSeq, headHash)
	return v.problem, n, nil
}

func isolation(db *database.DB) sql.IsolationLevel {
	if db.Driver() == database.Postgres {
		return sql.LevelRepeatableRead
	}
	return sql.LevelDefault
}

// Prune removes, per tenant, the longest prefix of the chain whose records are all older than
// before, and records the hash of the last removed record as the tenant's checkpoint, so the
// remaining chain still verifies. A record younger than before is never removed (nor, to keep
// the chain contiguous, any record after it). It returns the number of records removed.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	tenants, err := s.tenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit.Prune: tenants: %w", err)
	}
	var total int64
	for _, t := range tenants {
		n, err := s.pruneTenant(ctx, t, before)
		total += n
		if err != nil {
			return total, fmt.Errorf("audit.Prune %q: %w", t, err)
		}
	}
	return total, nil
}

func (s *Store) pruneTenant(ctx context.Context, tenant string, before time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if s.db.Driver() == database.Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", tenantLockKey(tenant)); err != nil {
			return 0, err
		}
	}
	cut := before.UnixMicro()
	// The last removable record: just before the first young one, or the head when all are old.
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT MIN(seq) FROM audit_records WHERE tenant = ? AND ts_us >= ?"),
		tenant, cut).Scan(&last); err != nil {
		return 0, err
	}
	upTo := last.Int64 - 1
	if !last.Valid {
		if err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT COALESCE(MAX(seq), 0) FROM audit_records WHERE tenant = ?"),
			tenant).Scan(&upTo); err != nil {
			return 0, err
		}
	}
	aSeq, _, err := anchor(ctx, tx, s.db, tenant)
	if err != nil {
		return 0, err
	}
	if upTo <= aSeq {
		return 0, nil
	}
	var hash []byte
	if err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT hash FROM audit_records WHERE tenant = ? AND seq = ?"),
		tenant, upTo).Scan(&hash); err != nil {
		return 0, fmt.Errorf("record %d: %w", upTo, err)
	}
	res, err := tx.ExecContext(ctx, s.db.Rebind("DELETE FROM audit_records WHERE tenant = ? AND seq <= ?"), tenant, upTo)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO audit_checkpoints (tenant, seq, hash, pruned_at_us) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, pruned_at_us = excluded.pruned_at_us`),
		tenant, upTo, hash, s.now().UnixMicro()); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// EraseBodies removes the stored bodies of the tenant's records whose principal subject or end
// user is subject, keeping their metadata, digests and hashes (the chain still verifies). It
// returns the number of bodies erased.
func (s *Store) EraseBodies(ctx context.Context, tenant, subject string) (int64, error) {
	if tenant == "" || subject == "" {
		return 0, errors.New("audit.EraseBodies: tenant and subject are required")
	}
	// An explicit transaction: on SQLite it begins IMMEDIATE (database.Open's txlock), so the
	// write lock is taken up front and waited for, instead of an autocommit UPDATE failing with
	// SQLITE_BUSY when the audit writer commits between its read and its write.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("audit.EraseBodies: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE audit_records SET body = NULL, erased_at_us = ?
		WHERE tenant = ? AND (subject = ? OR end_user = ?) AND body IS NOT NULL`),
		s.now().UnixMicro(), tenant, subject, subject)
	if err != nil {
		return 0, fmt.Errorf("audit.EraseBodies: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("audit.EraseBodies: %w", err)
	}
	return n, nil
}

// Count returns the number of stored records of tenant ("" for every tenant).
func (s *Store) Count(ctx context.Context, tenant string) (int64, error) {
	q, args := "SELECT COUNT(*) FROM audit_records", []any{}
	if tenant != "" {
		q, args = q+" WHERE tenant = ?", append(args, tenant)
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, s.db.Rebind(q), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit.Count: %w", err)
	}
	return n, nil
}
