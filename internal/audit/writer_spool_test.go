package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

// flakySink is a Store that fails while down, can fail after committing (the commit's answer
// lost), refuses records whose request id is "poison", and counts its appends.
type flakySink struct {
	*audit.Store
	down         atomic.Bool
	lostAnswers  atomic.Int32 // the next appends commit, then fail
	delay        time.Duration
	appends      atomic.Int32
	mu           sync.Mutex
	failedWhile  int // appends refused while down
	poisonRefuse int
}

var errDown = errors.New("sink down")

func (s *flakySink) Append(ctx context.Context, recs []*audit.Record) error {
	s.appends.Add(1)
	time.Sleep(s.delay)
	if s.down.Load() {
		s.mu.Lock()
		s.failedWhile++
		s.mu.Unlock()
		return errDown
	}
	for _, r := range recs {
		if r.RequestID == "poison" {
			s.mu.Lock()
			s.poisonRefuse++
			s.mu.Unlock()
			return errors.New("invalid byte sequence")
		}
	}
	if err := s.Store.Append(ctx, recs); err != nil {
		return err
	}
	if s.lostAnswers.Add(-1) >= 0 {
		return errors.New("connection reset while committing")
	}
	return nil
}

func (s *flakySink) refusedWhileDown() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedWhile
}

func (s *flakySink) Contains(ctx context.Context, r *audit.Record) (bool, error) {
	if s.down.Load() {
		return false, errDown
	}
	return s.Store.Contains(ctx, r)
}

func newFlaky(t *testing.T, db *database.DB) *flakySink {
	return &flakySink{Store: newStore(t, db, nil)}
}

// spooled starts a writer over sink with a spool in dir (maxBytes 0: the default), small
// batches and quick retries.
func spooled(t *testing.T, sink audit.Sink, dir string, maxBytes int64, reader *sdkmetric.ManualReader, opts audit.WriterOptions) *audit.Writer {
	t.Helper()
	opts.Spool = openSpool(t, audit.SpoolConfig{Dir: dir, MaxBytes: maxBytes, Fsync: audit.FsyncInterval})
	opts.RetryDelays = []time.Duration{time.Millisecond, 5 * time.Millisecond}
	opts.Logger = slog.New(slog.DiscardHandler)
	if opts.BatchSize == 0 {
		opts.BatchSize = 8
	}
	if reader != nil {
		opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	}
	return audit.NewWriter(sink, opts)
}

// chainOrder returns the request ids of tenant's records in chain order.
func chainOrder(t *testing.T, st *audit.Store, tenant string) []string {
	t.Helper()
	recs, _, err := st.Query(context.Background(), audit.Filter{Tenant: tenant, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, recs[i].RequestID)
	}
	return out
}

// wantStored checks that the store holds exactly the records of tenants a and b numbered
// [0, n) but those in skip, each once, chained in that order, and that every chain verifies.
func wantStored(t *testing.T, st *audit.Store, n int, skip ...int) {
	t.Helper()
	for _, tn := range []string{"a", "b"} {
		var want []string
		for i := range n {
			if !slices.Contains(skip, i) {
				want = append(want, fmt.Sprintf("req-%s-%d", tn, i))
			}
		}
		if got := chainOrder(t, st, tn); !slices.Equal(got, want) {
			t.Errorf("tenant %s: chain holds %d records %v\nwant %d %v", tn, len(got), got, len(want), want)
		}
	}
	verifyOK(t, st, int64(2*n-2*len(skip)))
}

// write writes the records of tenants a and b numbered [from, to).
func write(w *audit.Writer, from, to int) {
	for i := from; i < to; i++ {
		for _, tn := range []string{"a", "b"} {
			w.Write(&audit.Entry{Record: rec(tn, i, t0.Add(time.Duration(i)*time.Second))})
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func counter(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					n += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestWriterSpoolOutage: while the sink is down, records go to the spool and no request is
// refused; once it is back, the spool drains in order: every record stored once, each chain
// in write order and verifying. An Append that commits but reports an error is not repeated.
func TestWriterSpoolOutage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		sink := newFlaky(t, db)
		reader := sdkmetric.NewManualReader()
		dir := t.TempDir()
		w := spooled(t, sink, dir, 0, reader, audit.WriterOptions{RequiredTenants: []string{"a"}})
		write(w, 0, 30)
		if err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		sink.down.Store(true)
		write(w, 30, 120)
		waitFor(t, "the sink to fail", func() bool { return sink.refusedWhileDown() > 0 })
		write(w, 120, 130)
		waitFor(t, "the spool to take records", func() bool { return counter(t, reader, audit.MetricSpoolRecords) > 0 })
		if err := w.Accepting("a"); err != nil {
			t.Errorf("Accepting with room in the spool = %v", err)
		}
		sink.lostAnswers.Store(2) // the first appends after the outage commit, then fail
		sink.down.Store(false)
		write(w, 130, 150)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wantStored(t, sink.Store, 150)
		if counter(t, reader, audit.MetricReplayed) == 0 || w.Dropped() != 0 {
			t.Errorf("replayed %d, dropped %d; want >0, 0", counter(t, reader, audit.MetricReplayed), w.Dropped())
		}
		if n := len(segFiles(t, dir)); n != 0 {
			t.Errorf("%d spool segments left after draining", n)
		}
	})
}

// TestWriterSpoolRestart: what the sink has not taken at Close stays in the spool and is
// stored by the next writer, after the records the sink already held are skipped.
func TestWriterSpoolRestart(t *testing.T) {
	db := dbtest.SQLite(t)
	sink := newFlaky(t, db)
	sink.down.Store(true)
	dir := t.TempDir()
	w := spooled(t, sink, dir, 0, nil, audit.WriterOptions{})
	write(w, 0, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close with the sink down = %v, want nil (the records stay in the spool)", err)
	}
	// As if the last run had stored the first 6 records and stopped before the spool knew.
	sp := openSpool(t, audit.SpoolConfig{Dir: dir})
	if sp.Len() != 40 {
		t.Fatalf("spool holds %d records, want 40", sp.Len())
	}
	first, err := sp.Read(6)
	if err != nil {
		t.Fatal(err)
	}
	sink.down.Store(false)
	if err := sink.Store.Append(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	_ = sp.Close()
	w = spooled(t, sink, dir, 0, nil, audit.WriterOptions{})
	write(w, 20, 25)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStored(t, sink.Store, 25)
}

// TestWriterSpoolFull: with the sink down and the spool full, tenants that require audit are
// refused under fail_closed (others are served, their records dropped and counted); once the
// sink is back and the spool drains, they are accepted again. fail_open refuses nobody.
func TestWriterSpoolFull(t *testing.T) {
	for _, policy := range []string{audit.FailClosed, audit.FailOpen} {
		t.Run(policy, func(t *testing.T) {
			sink := newFlaky(t, dbtest.SQLite(t))
			sink.down.Store(true)
			reader := sdkmetric.NewManualReader()
			w := spooled(t, sink, t.TempDir(), 8<<10, reader, audit.WriterOptions{RequiredTenants: []string{"a"}, OnSpoolFull: policy})
			defer w.Close(context.Background())
			if policy == audit.FailClosed {
				waitFor(t, "a refusal", func() bool {
					write(w, 0, 1)
					return w.Accepting("a") != nil
				})
				if err := w.Accepting("a"); !errors.Is(err, audit.ErrUnavailable) || !strings.Contains(err.Error(), "audit log unavailable") {
					t.Fatalf("Accepting(a) = %v", err)
				}
			}
			// Records keep coming (other tenants', refusals'): a few batches wait in memory,
			// then they are dropped.
			waitFor(t, "drops", func() bool {
				write(w, 0, 1)
				return droppedByReason(t, reader)[audit.DropSpoolFull] > 0
			})
			for _, tn := range []string{"a", "b", audit.UnauthenticatedTenant} {
				if err := w.Accepting(tn); err != nil && (tn != "a" || policy != audit.FailClosed) {
					t.Errorf("Accepting(%s) = %v", tn, err)
				}
			}
			if got := droppedByReason(t, reader); got[audit.DropSpoolFull] == 0 {
				t.Errorf("dropped = %v, want spool_full", got)
			}
			sink.down.Store(false)
			waitFor(t, "the spool to drain", func() bool { return counter(t, reader, audit.MetricSpoolRecords) == 0 })
			if err := w.Accepting("a"); err != nil {
				t.Errorf("Accepting(a) after draining = %v", err)
			}
		})
	}
}

// TestWriterSpoolSlowSink: a slow sink makes the writer spool; every record still arrives,
// in order.
func TestWriterSpoolSlowSink(t *testing.T) {
	sink := newFlaky(t, dbtest.SQLite(t))
	sink.delay = 5 * time.Millisecond
	reader := sdkmetric.NewManualReader()
	w := spooled(t, sink, t.TempDir(), 0, reader, audit.WriterOptions{BatchSize: 4, Linger: -1})
	write(w, 0, 100)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStored(t, sink.Store, 100)
	if counter(t, reader, audit.MetricReplayed) == 0 {
		t.Error("nothing went through the spool")
	}
}

// TestWriterSpoolRejects: a record the sink refuses while it takes the next one is dropped and
// counted after a few tries; the records around it are stored in order.
func TestWriterSpoolRejects(t *testing.T) {
	sink := newFlaky(t, dbtest.SQLite(t))
	reader := sdkmetric.NewManualReader()
	w := spooled(t, sink, t.TempDir(), 0, reader, audit.WriterOptions{})
	for i := range 10 {
		for _, tn := range []string{"a", "b"} {
			r := rec(tn, i, t0)
			if tn == "a" && i == 4 {
				r.RequestID = "poison"
			}
			w.Write(&audit.Entry{Record: r})
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"req-a-0", "req-a-1", "req-a-2", "req-a-3", "req-a-5", "req-a-6", "req-a-7", "req-a-8", "req-a-9"}
	if got := chainOrder(t, sink.Store, "a"); !slices.Equal(got, want) {
		t.Errorf("chain a = %v", got)
	}
	if got := chainOrder(t, sink.Store, "b"); len(got) != 10 {
		t.Errorf("chain b = %v", got)
	}
	if got := droppedByReason(t, reader); got[audit.DropRejected] != 1 || len(got) != 1 {
		t.Errorf("dropped = %v, want 1 rejected", got)
	}
}
