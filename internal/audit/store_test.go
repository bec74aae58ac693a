package audit_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func rec(tenant string, i int, at time.Time) *audit.Record {
	return &audit.Record{
		Tenant: tenant, Time: at, RequestID: fmt.Sprintf("req-%s-%d", tenant, i), Subject: "key-" + tenant,
		User: "user-" + fmt.Sprint(i%3), Transport: audit.TransportREST, RPC: "/switchyard.v1.ChatService/CreateChatCompletion",
		Model: "fast", Target: "mock/m", Attempts: 1, Class: audit.ClassOK, Code: "OK", InputTokens: 5, OutputTokens: 7,
		Latency: 1234567 * time.Nanosecond, ClientAddr: "127.0.0.1:5555", UsageEstimated: i%4 == 3,
	}
}

func newStore(t *testing.T, db *database.DB, now func() time.Time) *audit.Store {
	t.Helper()
	s, err := audit.NewStore(context.Background(), db, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fill appends n records per tenant, one hour apart from t0, in batches of 7.
func fill(t *testing.T, s audit.Sink, tenants []string, n int) {
	t.Helper()
	var batch []*audit.Record
	for i := range n {
		for _, tn := range tenants {
			batch = append(batch, rec(tn, i, t0.Add(time.Duration(i)*time.Hour)))
			if len(batch) == 7 {
				if err := s.Append(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				batch = nil
			}
		}
	}
	if err := s.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

func verifyOK(t *testing.T, s *audit.Store, wantChecked int64) {
	t.Helper()
	problems, checked, err := s.Verify(context.Background())
	if err != nil || len(problems) > 0 || checked != wantChecked {
		t.Fatalf("Verify = %v, %d checked, %v; want no problems, %d checked", problems, checked, err, wantChecked)
	}
}

func TestStoreTamper(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		cases := []struct {
			name    string
			sql     string
			wantSeq int64
		}{
			{"edit a field", "UPDATE audit_records SET output_tokens = 8 WHERE tenant = 'a' AND seq = 7", 7},
			{"edit the time", "UPDATE audit_records SET ts_us = ts_us + 1 WHERE tenant = 'a' AND seq = 3", 3},
			{"delete a record", "DELETE FROM audit_records WHERE tenant = 'a' AND seq = 5", 6},
			{"delete the last record", "DELETE FROM audit_records WHERE tenant = 'a' AND seq = 10", 10},
			{"replace a body", "UPDATE audit_records SET body = body_digest WHERE tenant = 'a' AND seq = 4", 4},
			{"rewrite a hash", "UPDATE audit_records SET hash = prev_hash WHERE tenant = 'a' AND seq = 2", 2},
			{"mark usage estimated", "UPDATE audit_records SET usage_estimated = TRUE WHERE tenant = 'a' AND seq = 7", 7},
			{"unmark usage estimated", "UPDATE audit_records SET usage_estimated = FALSE WHERE tenant = 'a' AND seq = 4", 4},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS audit_records"); err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{"DROP TABLE IF EXISTS audit_heads", "DROP TABLE IF EXISTS audit_checkpoints",
					"DELETE FROM schema_migrations WHERE component = 'audit'"} {
					_, _ = db.ExecContext(ctx, q)
				}
				s := newStore(t, db, nil)
				// Give every record of tenant a a body, so "replace a body" has one to replace.
				var batch []*audit.Record
				for i := range 10 {
					r := rec("a", i, t0.Add(time.Duration(i)*time.Minute))
					batch = append(batch, r, rec("b", i, t0))
				}
				w := audit.NewWriter(s, audit.WriterOptions{})
				for _, r := range batch {
					b := &audit.Body{Request: []byte(`{"model":"fast"}`)}
					w.Write(&audit.Entry{Record: r, Body: func() *audit.Body { return b }})
				}
				if err := w.Close(ctx); err != nil {
					t.Fatal(err)
				}
				verifyOK(t, s, 20)
				if _, err := db.ExecContext(ctx, c.sql); err != nil {
					t.Fatal(err)
				}
				problems, _, err := s.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(problems) != 1 || problems[0].Tenant != "a" || problems[0].Seq != c.wantSeq {
					t.Fatalf("problems = %v, want one at a/%d", problems, c.wantSeq)
				}
			})
		}
	})
}

func TestStorePrune(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := t0.Add(200 * 24 * time.Hour)
		s := newStore(t, db, func() time.Time { return now })
		// Records of tenant a at t0 + i days, i = 0..29; tenant b all recent.
		var batch []*audit.Record
		for i := range 30 {
			batch = append(batch, rec("a", i, t0.Add(time.Duration(i)*24*time.Hour)), rec("b", i, now.Add(-time.Hour)))
		}
		// One out-of-order record: young, early in the chain of tenant c, blocking c's pruning.
		batch = append(batch, rec("c", 0, t0), rec("c", 1, now), rec("c", 2, t0))
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		cutoff := now.Add(-audit.DefaultRetention) // t0 + 20 days
		n, err := s.Prune(ctx, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if n != 21 { // a: days 0..19 (day 20 is exactly at the cutoff, not older); c: its first record
			t.Errorf("pruned %d records, want 21", n)
		}
		recs, _, err := s.Query(ctx, audit.Filter{Tenant: "a", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Time.Before(cutoff) {
				t.Errorf("record a/%d at %v survived the cutoff %v", r.Seq, r.Time, cutoff)
			}
		}
		if len(recs) != 10 || recs[len(recs)-1].Seq != 21 {
			t.Errorf("tenant a keeps %d records from %d, want 10 from 21", len(recs), recs[len(recs)-1].Seq)
		}
		for tn, want := range map[string]int64{"b": 30, "c": 2} {
			if got, _ := s.Count(ctx, tn); got != want {
				t.Errorf("tenant %s keeps %d records, want %d", tn, got, want)
			}
		}
		verifyOK(t, s, 10+30+2)
		// Appending after pruning continues the chain; pruning again is idempotent.
		if err := s.Append(ctx, []*audit.Record{rec("a", 99, now)}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Prune(ctx, cutoff); err != nil || n != 0 {
			t.Errorf("second prune: %d, %v; want 0", n, err)
		}
		verifyOK(t, s, 11+30+2)
		// Everything old: tenant a's chain is pruned to its anchor and still verifies and grows.
		if _, err := s.Prune(ctx, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		verifyOK(t, s, 0)
		if err := s.Append(ctx, []*audit.Record{rec("a", 100, now)}); err != nil {
			t.Fatal(err)
		}
		verifyOK(t, s, 1)
	})
}

func TestStoreQueryAndErase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		s := newStore(t, db, nil)
		w := audit.NewWriter(s, audit.WriterOptions{BatchSize: 5})
		for i := range 25 {
			for _, tn := range []string{"a", "b"} {
				r := rec(tn, i, t0.Add(time.Duration(i)*time.Minute))
				w.Write(&audit.Entry{Record: r, Body: func() *audit.Body {
					return &audit.Body{Request: []byte(`{"messages":[{"content":"secret"}]}`)}
				}})
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var all []*audit.Record
		tok := ""
		for {
			page, next, err := s.Query(ctx, audit.Filter{Tenant: "a", PageSize: 10, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			tok = next
		}
		if len(all) != 25 || all[0].Seq != 25 || all[24].Seq != 1 {
			t.Fatalf("paged through %d records (first %d), want 25 newest first", len(all), all[0].Seq)
		}
		estimated := 0
		for _, r := range all {
			if r.Tenant != "a" {
				t.Fatalf("tenant a's query returned a record of %q", r.Tenant)
			}
			if r.UsageEstimated {
				estimated++
			}
		}
		if estimated != 6 { // i%4 == 3 for i in 0..24
			t.Errorf("%d records with usage estimated, want 6", estimated)
		}
		filters := []struct {
			name string
			f    audit.Filter
			want int
		}{
			{"time range", audit.Filter{Tenant: "a", From: t0.Add(5 * time.Minute), To: t0.Add(10 * time.Minute)}, 5},
			{"request id", audit.Filter{Tenant: "a", RequestID: "req-a-3"}, 1},
			{"request id of another tenant", audit.Filter{Tenant: "a", RequestID: "req-b-3"}, 0},
			{"subject", audit.Filter{Tenant: "b", Subject: "key-b"}, 25},
			{"subject of another tenant", audit.Filter{Tenant: "b", Subject: "key-a"}, 0},
			{"end user", audit.Filter{Tenant: "b", User: "user-2"}, 8},
		}
		for _, c := range filters {
			got, _, err := s.Query(ctx, c.f)
			if err != nil || len(got) != c.want {
				t.Errorf("%s: %d records, %v; want %d", c.name, len(got), err, c.want)
			}
		}
		if _, _, err := s.Query(ctx, audit.Filter{Tenant: "a", PageToken: "bogus"}); err != audit.ErrInvalidPageToken {
			t.Errorf("bogus page token: err = %v", err)
		}

		n, err := s.EraseBodies(ctx, "a", "user-1")
		if err != nil || n != 8 { // i%3 == 1 for i in 0..24
			t.Fatalf("EraseBodies = %d, %v; want 8", n, err)
		}
		got, _, _ := s.Query(ctx, audit.Filter{Tenant: "a", PageSize: 100})
		for _, r := range got {
			if (r.User == "user-1") != (r.Body == nil) || (r.User == "user-1") != !r.ErasedAt.IsZero() {
				t.Errorf("record a/%d of %s: body %q erased at %v", r.Seq, r.User, r.Body, r.ErasedAt)
			}
			if len(r.BodyDigest) != audit.HashSize {
				t.Errorf("record a/%d lost its body digest", r.Seq)
			}
		}
		if n, _ := s.EraseBodies(ctx, "b", "user-1"); n != 8 {
			t.Errorf("tenant b: erased %d, want 8", n)
		}
		verifyOK(t, s, 50)
	})
}

// TestHashCompatible: a record without estimated usage hashes as records did before
// UsageEstimated existed (the golden hash was computed by that version), so old chains still
// verify; setting it changes the hash.
func TestHashCompatible(t *testing.T) {
	r := rec("a", 1, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC))
	r.Seq = 1
	r.BodyDigest = []byte("0123456789abcdef0123456789abcdef")
	const golden = "31a997eefd9f1416c1bc5de450d14613f14020d667eda83d66c5bc7d7ed1dffa"
	if got := hex.EncodeToString(r.ComputeHash(nil)); got != golden {
		t.Errorf("hash = %s, want %s", got, golden)
	}
	r.UsageEstimated = true
	if got := hex.EncodeToString(r.ComputeHash(nil)); got == golden {
		t.Error("UsageEstimated is not covered by the hash")
	}
}
