package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

// batchRecords returns n records spread over three tenants, every fourth with a body, from a
// generator that makes the same records on every call.
func batchRecords(first, n int) []*Record {
	out := make([]*Record, n)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for k := range out {
		i := first + k
		r := &Record{
			Tenant: []string{"a", "b", "c"}[i%3], Time: base.Add(time.Duration(i) * 1500 * time.Nanosecond),
			RequestID: fmt.Sprintf("req-%d", i), TraceID: fmt.Sprintf("%032x", i), Subject: fmt.Sprintf("key-%d", i%5),
			KeyName: "k", User: fmt.Sprintf("user-%d", i%7), Transport: TransportGRPC, RPC: "/switchyard.v1.ChatService/CreateChatCompletion",
			Model: "fast", Target: "mock/m", Attempts: 1 + i%3, Class: ClassOK, Code: "OK", InputTokens: int64(i), OutputTokens: int64(2 * i),
			UsageEstimated: i%5 == 0, Latency: time.Duration(i) * 1001 * time.Nanosecond, ClientAddr: "127.0.0.1:1", ForwardedFor: "",
		}
		if i%4 == 0 {
			r.Body = []byte(fmt.Sprintf(`{"request":%d}`, i))
			r.BodyDigest = digest(r.Body)
			r.BodyKeyID = "k1"
		}
		out[k] = r
	}
	return out
}

// otherDB opens a second database of db's driver.
func otherDB(t *testing.T, db *database.DB) *database.DB {
	if db.Driver() == database.Postgres {
		return dbtest.Postgres(t)
	}
	return dbtest.SQLite(t)
}

// TestAppendMatchesRowByRow: the multi-row Append stores exactly what the row-by-row insert
// stored (the same rows, hashes included) for batch sizes around every statement size, with
// tenants interleaved, and a chain written partly by one and partly by the other verifies.
func TestAppendMatchesRowByRow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		multi, err := NewStore(ctx, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		rowwise, err := NewStore(ctx, otherDB(t, db), nil)
		if err != nil {
			t.Fatal(err)
		}
		mixed, err := NewStore(ctx, otherDB(t, db), nil)
		if err != nil {
			t.Fatal(err)
		}
		next := 0
		for k, n := range []int{1, 2, 3, 63, 64, 65, 100, 129} {
			if err := multi.Append(ctx, batchRecords(next, n)); err != nil {
				t.Fatalf("Append of %d: %v", n, err)
			}
			if err := appendRowByRow(rowwise, ctx, batchRecords(next, n)); err != nil {
				t.Fatal(err)
			}
			if k%2 == 0 {
				err = mixed.Append(ctx, batchRecords(next, n))
			} else {
				err = appendRowByRow(mixed, ctx, batchRecords(next, n))
			}
			if err != nil {
				t.Fatal(err)
			}
			next += n
		}
		for _, s := range []*Store{multi, rowwise, mixed} {
			if problems, checked, err := s.Verify(ctx); err != nil || len(problems) > 0 || checked != int64(next) {
				t.Fatalf("Verify = %v, %d checked, %v; want no problems, %d checked", problems, checked, err, next)
			}
		}
		for _, tenant := range []string{"a", "b", "c"} {
			want := dump(t, rowwise, tenant)
			for name, s := range map[string]*Store{"multi-row": multi, "mixed": mixed} {
				if got := dump(t, s, tenant); got != want {
					t.Errorf("tenant %s: the %s store differs from the row-by-row one:\n%s\nwant\n%s", tenant, name, got, want)
				}
			}
		}
		// Each tenant's chain is in the order of the batches: seq follows the request ids.
		recs, _, err := multi.Query(ctx, Filter{Tenant: "b", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for k, r := range recs {
			if want := fmt.Sprintf("req-%d", 3*(len(recs)-1-k)+1); r.RequestID != want || r.Seq != int64(len(recs)-k) {
				t.Fatalf("record %d of b: %s at seq %d, want %s at seq %d", k, r.RequestID, r.Seq, want, len(recs)-k)
			}
		}
	})
}

// dump is every stored field of the tenant's records, oldest first.
func dump(t *testing.T, s *Store, tenant string) string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), s.db.Rebind("SELECT "+recordColumns+" FROM audit_records WHERE tenant = ? ORDER BY seq"), tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%+v\n", *r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestAppendFailureRollsBackBatch: a batch whose insert fails is not stored at all, not even the
// rows before the failing one nor another tenant's, the chain heads stay, and the store (and
// SQLite's write queue) serve the next Append.
func TestAppendFailureRollsBackBatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := NewStore(ctx, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		first := []*Record{{Tenant: "a", RequestID: "a1"}, {Tenant: "a", RequestID: "a2"}}
		if err := s.Append(ctx, first); err != nil {
			t.Fatal(err)
		}
		// A row in the way of the batch's 5th record of a (seq 7), as a second writer that
		// ignored the lock would leave.
		rogue := &Record{Tenant: "a", RequestID: "rogue"}
		rogue.chain(7, nil)
		if _, err := db.ExecContext(ctx, db.Rebind(insertSQL(db.Driver(), 1)), appendRecordArgs(nil, rogue)...); err != nil {
			t.Fatal(err)
		}
		batch := func() []*Record {
			var out []*Record
			for i := range 70 { // two statements (64 + 4 + 2): the conflict is in the first
				out = append(out, &Record{Tenant: []string{"a", "b"}[i%2], RequestID: fmt.Sprint("r", i)})
			}
			return out
		}
		if err := s.Append(ctx, batch()); err == nil {
			t.Fatal("Append over a taken seq succeeded")
		}
		for tenant, want := range map[string]int64{"a": 3, "b": 0} {
			if n, err := s.Count(ctx, tenant); err != nil || n != want {
				t.Errorf("tenant %s holds %d records (%v), want %d", tenant, n, err, want)
			}
		}
		if _, err := db.ExecContext(ctx, db.Rebind("DELETE FROM audit_records WHERE request_id = ?"), "rogue"); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, batch()); err != nil {
			t.Fatalf("Append after the failure: %v", err)
		}
		if problems, checked, err := s.Verify(ctx); err != nil || len(problems) > 0 || checked != 72 {
			t.Fatalf("Verify = %v, %d checked, %v; want no problems, 72 checked", problems, checked, err)
		}
	})
}

// TestAppendAfterClose: Close releases the prepared statements; a later Append prepares them
// again and continues the chain.
func TestAppendAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(ctx, dbtest.SQLite(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Append(ctx, batchRecords(10*i, 10)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if problems, checked, err := s.Verify(ctx); err != nil || len(problems) > 0 || checked != 30 {
		t.Fatalf("Verify = %v, %d checked, %v", problems, checked, err)
	}
}

// TestInsertSQL: the statements have one placeholder per value, as many values as columns, and
// stay under SQLite's and PostgreSQL's parameter limits.
func TestInsertSQL(t *testing.T) {
	if n := strings.Count(recordColumns, ",") + 1; n != numRecordColumns {
		t.Fatalf("recordColumns has %d columns, numRecordColumns is %d", n, numRecordColumns)
	}
	if n := len(appendRecordArgs(nil, &Record{})); n != numRecordColumns {
		t.Fatalf("appendRecordArgs appends %d values, want %d", n, numRecordColumns)
	}
	if maxInsertRows*numRecordColumns > 32766 {
		t.Fatalf("%d parameters per statement exceed SQLite's limit", maxInsertRows*numRecordColumns)
	}
	for _, d := range []string{database.SQLite, database.Postgres} {
		for n, q := range insertStmts[d] {
			if got := strings.Count(q, "?"); got != n*numRecordColumns {
				t.Errorf("%s insert of %d rows has %d placeholders", d, n, got)
			}
		}
		if len(insertStmts[d]) != 7 || insertStmts[d][maxInsertRows] == "" {
			t.Errorf("%s: %d insert statements, want 1, 2, 4, ... %d rows", d, len(insertStmts[d]), maxInsertRows)
		}
	}
}
