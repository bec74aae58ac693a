package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/switchyard/switchyard/internal/database"
)

// appendRowByRow is Store.Append as it was before multi-row inserts: one prepared INSERT
// executed per record. It stays here as the baseline of BenchmarkStoreAppend and as a second
// writer of the same chain in the tests (records it writes must verify as Append's do).
func appendRowByRow(s *Store, ctx context.Context, recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit.Append: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	insert, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO audit_records (`+recordColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return fmt.Errorf("audit.Append: prepare: %w", err)
	}
	defer insert.Close()
	type head struct {
		seq  int64
		hash []byte
	}
	heads := map[string]*head{}
	for _, r := range recs {
		h, ok := heads[r.Tenant]
		if !ok {
			if s.db.Driver() == database.Postgres {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", tenantLockKey(r.Tenant)); err != nil {
					return fmt.Errorf("audit.Append: lock tenant %q: %w", r.Tenant, err)
				}
			}
			h = &head{}
			err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT seq, hash FROM audit_heads WHERE tenant = ?"), r.Tenant).Scan(&h.seq, &h.hash)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("audit.Append: head of %q: %w", r.Tenant, err)
			}
			heads[r.Tenant] = h
		}
		r.chain(h.seq+1, h.hash)
		if _, err := insert.ExecContext(ctx, appendRecordArgs(nil, r)...); err != nil {
			return fmt.Errorf("audit.Append: insert %q/%d: %w", r.Tenant, r.Seq, err)
		}
		h.seq, h.hash = r.Seq, r.Hash
	}
	for tenant, h := range heads {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO audit_heads (tenant, seq, hash) VALUES (?, ?, ?)
			ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`), tenant, h.seq, h.hash); err != nil {
			return fmt.Errorf("audit.Append: head of %q: %w", tenant, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit.Append: commit: %w", err)
	}
	return nil
}
