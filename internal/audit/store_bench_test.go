package audit

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

// benchRecords returns n records of a realistic size and spread: a REST chat call of an API key,
// with a random-looking request id, trace id and end user per record (so the request and user
// indexes take inserts all over their B-trees, as in production), no body (the default).
func benchRecords(n int) []*Record {
	out := make([]*Record, n)
	for i := range out {
		out[i] = &Record{
			Tenant:    "team-a",
			RequestID: fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(i*2654435761), i&0xffff, i&0xfff, (i*7)&0xfff, uint64(i)*0x9e3779b97f4a7c15&0xffffffffffff),
			TraceID:   fmt.Sprintf("%016x%016x", uint64(i)*0x9e3779b97f4a7c15, uint64(i)*0xbf58476d1ce4e5b9),
			Subject:   "key:team-a-prod", KeyName: "team-a-prod", User: fmt.Sprintf("user-%d", (i*7919)%1000),
			Transport: TransportREST, RPC: "/switchyard.v1.ChatService/CreateChatCompletion",
			Model: "gpt-4o-mini", Target: "openai/gpt-4o-mini", Attempts: 1, Class: ClassOK, Code: "OK",
			InputTokens: 412, OutputTokens: 187, Latency: 734 * time.Millisecond,
			ClientAddr: "10.1.2.3:54321", ForwardedFor: "203.0.113.7",
		}
	}
	return out
}

// appendFunc is one implementation of Store.Append.
type appendFunc func(s *Store, ctx context.Context, recs []*Record) error

var appendImpls = []struct {
	name string
	fn   appendFunc
}{
	{"rowwise", appendRowByRow}, // the implementation before multi-row inserts
	{"current", (*Store).Append},
}

// benchDBs are the databases the store benchmarks run on: SQLite in a temp dir, and PostgreSQL
// when the test server is reachable (see dbtest.PostgresDSN; skipped otherwise unless CI is set).
var benchDBs = []struct {
	name string
	open func(testing.TB) *database.DB
}{
	{"sqlite", dbtest.SQLite},
	{"postgres", dbtest.Postgres},
}

// BenchmarkStoreAppend appends batches of 1, 10 and 100 records, with the old (row by row) and
// the current Append, and reports wall time, process CPU time and allocations per record.
//
//	go test ./internal/audit -run '^$' -bench StoreAppend -benchtime 200x -count 3
func BenchmarkStoreAppend(b *testing.B) {
	for _, d := range benchDBs {
		for _, size := range []int{1, 10, 100} {
			for _, impl := range appendImpls {
				b.Run(fmt.Sprintf("db=%s/batch=%d/%s", d.name, size, impl.name), func(b *testing.B) {
					benchAppend(b, d.open(b), size, "", false, impl.fn)
				})
			}
		}
	}
}

// BenchmarkStoreIndexes measures what each secondary index of audit_records costs an append of
// 100 records on SQLite (by dropping it from the benchmark's database), and what the request-id
// index costs with time-ordered request ids (a millisecond timestamp before the random part)
// instead of the gateway's random ones.
//
//	go test ./internal/audit -run '^$' -bench StoreIndexes -benchtime 300x -count 3
func BenchmarkStoreIndexes(b *testing.B) {
	for _, c := range []struct {
		name        string
		drop        string
		timeOrdered bool
	}{
		{"all", "", false},
		{"all/time-ordered-ids", "", true},
		{"without-request", "audit_records_request", false},
		{"without-user", "audit_records_user", false},
		{"without-subject", "audit_records_subject", false},
		{"without-time", "audit_records_time", false},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchAppend(b, dbtest.SQLite(b), 100, c.drop, c.timeOrdered, (*Store).Append)
		})
	}
}

// benchPrefill is how many records the store benchmarks' store holds before the timing starts.
const benchPrefill = 16384

func benchAppend(b *testing.B, db *database.DB, size int, dropIndex string, timeOrdered bool, fn appendFunc) {
	ctx := context.Background()
	s, err := NewStore(ctx, db, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if dropIndex != "" {
		if _, err := db.ExecContext(ctx, "DROP INDEX "+dropIndex); err != nil {
			b.Fatal(err)
		}
	}
	pool := benchRecords(8192)
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Start from a store that holds records already: B-tree inserts cost more in bigger trees.
	for i := 0; i < benchPrefill; i += len(pool) {
		for _, r := range pool {
			t = t.Add(time.Millisecond)
			r.Time = t
		}
		if err := s.Append(ctx, pool); err != nil {
			b.Fatal(err)
		}
	}
	batch := make([]*Record, size)
	next := 0
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for range b.N {
		for j := range batch {
			r := pool[next%len(pool)]
			next++
			t = t.Add(time.Millisecond)
			r.Time = t
			if timeOrdered {
				r.RequestID = fmt.Sprintf("%012x%020x", t.UnixMilli(), uint64(next)*0x9e3779b97f4a7c15)
			}
			batch[j] = r
		}
		if err := fn(s, ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&ms1)
	n := float64(b.N * size)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/record")
}

// rowwiseSink is a Store whose Append is the old row-by-row one.
type rowwiseSink struct{ *Store }

func (s rowwiseSink) Append(ctx context.Context, recs []*Record) error {
	return appendRowByRow(s.Store, ctx, recs)
}

// BenchmarkWriter writes records through a Writer (default batch size and linger) to a SQLite
// store, with the old and the current Append: the whole write path of a request's record, from
// Write to the committed row. The writer takes what is queued, up to 256 records a batch.
//
//	go test ./internal/audit -run '^$' -bench Writer -benchtime 20000x -count 3
func BenchmarkWriter(b *testing.B) {
	for _, impl := range []string{"rowwise", "current"} {
		b.Run("sink="+impl, func(b *testing.B) {
			ctx := context.Background()
			s, err := NewStore(ctx, dbtest.SQLite(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			var sink Sink = s
			if impl == "rowwise" {
				sink = rowwiseSink{s}
			}
			pool := benchRecords(8192)
			w := NewWriter(sink, WriterOptions{})
			defer func() { _ = w.Close(ctx) }()
			t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := range b.N {
				r := *pool[i%len(pool)] // a new record per request, as the interceptors build it
				t = t.Add(time.Millisecond)
				r.Time = t
				w.Write(&Entry{Record: &r})
				if i%1024 == 1023 { // keep the buffer from overflowing: the sink sets the pace
					if err := w.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := w.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := processCPU(b) - cpu0
			runtime.ReadMemStats(&ms1)
			if d := w.Dropped(); d > 0 {
				b.Fatalf("%d records dropped", d)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/record")
		})
	}
}

// processCPU is the user and system CPU time the process has used so far (every goroutine: the
// writer's, the SQLite I/O system calls, the GC).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
