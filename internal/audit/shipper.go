package audit

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/llm"
)

// Container is an optional Sink capability a writer with a spool uses: Contains tells whether
// r, as it was handed to Append, is stored. After an Append that failed (it may have committed
// all the same) and after a restart, the writer skips the records the sink already holds.
type Container interface {
	Contains(ctx context.Context, r *Record) (bool, error)
}

// ErrUnavailable is Accepting's refusal: 503 / UNAVAILABLE for the caller.
var ErrUnavailable = &llm.Error{Kind: llm.KindUnavailable, Code: "audit_unavailable",
	Message: "audit log unavailable: the request cannot be recorded now; try again later"}

// startSpool sets up the queue and starts the goroutine that feeds the sink from it.
func (w *Writer) startSpool(m metric.Meter) {
	w.spool = w.opts.Spool
	if w.opts.OnSpoolFull == "" {
		w.opts.OnSpoolFull = FailClosed
	}
	if w.opts.AppendTimeout <= 0 {
		w.opts.AppendTimeout = DefaultAppendTimeout
	}
	w.required = map[string]bool{}
	for _, t := range w.opts.RequiredTenants {
		w.required[t] = true
	}
	w.wake, w.shipped = make(chan struct{}, 1), make(chan struct{})
	w.pending.Store(w.spool.Len())
	w.replayedC, _ = m.Int64Counter(MetricReplayed, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records stored from the spool."))
	w.refusedC, _ = m.Int64Counter(MetricRefused, metric.WithUnit("{request}"),
		metric.WithDescription("Requests refused because their tenant requires audit and the spool is full."))
	records, _ := m.Int64ObservableGauge(MetricSpoolRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records in the spool, waiting for the sink."))
	size, _ := m.Int64ObservableGauge(MetricSpoolSize, metric.WithUnit("By"),
		metric.WithDescription("Bytes of the audit spool's files."))
	w.gauges, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(records, w.spool.Len())
		o.ObserveInt64(size, w.spool.Size())
		return nil
	}, records, size)
	ctx, cancel := context.WithCancel(context.Background())
	w.stopShip = cancel
	go w.ship(ctx, w.spool.Len() > 0)
}

// Accepting returns ErrUnavailable when tenant requires its audit records, the policy is
// FailClosed and the writer has no room for them: the spool is full (or failing), or the
// buffer is. Otherwise, and for a writer without a spool, it returns nil. It is cheap: call it
// once per request, when the tenant is known.
func (w *Writer) Accepting(tenant string) error {
	if w.spool == nil || w.opts.OnSpoolFull != FailClosed || !(w.required[tenant] || w.required[AllTenants]) ||
		tenant == UnauthenticatedTenant {
		return nil
	}
	if !w.full.Load() && len(w.ch) < cap(w.ch) {
		return nil
	}
	w.refusedC.Add(context.Background(), 1)
	return ErrUnavailable
}

// enqueue adds a batch at the queue's tail: in memory while the sink keeps up, in the spool
// once it does not (or while the spool holds records).
func (w *Writer) enqueue(b []*Record) {
	w.pending.Add(int64(len(b)))
	w.qmu.Lock()
	w.mem = append(w.mem, b)
	w.rebalance()
	w.qmu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// rebalance moves the memory tail to the spool when the sink is behind: more than memBatches
// batches wait, or the spool holds records (new ones go after them). Called with qmu held.
func (w *Writer) rebalance() {
	if len(w.mem) <= memBatches && w.spool.Len() == 0 {
		w.full.Store(false)
		return
	}
	w.spill()
}

// spill moves the memory tail to the spool, oldest first. Called with qmu held.
func (w *Writer) spill() {
	var err error
	for len(w.mem) > 0 && err == nil {
		var n int
		n, err = w.spool.Append(w.mem[0])
		if w.mem[0] = w.mem[0][n:]; len(w.mem[0]) == 0 {
			w.mem = w.mem[1:]
		}
	}
	w.full.Store(err != nil)
	if err == nil {
		return
	}
	reason := DropSpoolFull
	if !errors.Is(err, ErrSpoolFull) {
		reason = DropSpoolError
		w.log.Error("audit spool: append failed", "err", err)
	}
	// What the spool does not take waits in memory, up to memBatchesMax batches; beyond, the
	// newest are dropped (the oldest may be at the sink right now).
	for len(w.mem) > memBatchesMax {
		last := w.mem[len(w.mem)-1]
		w.mem = w.mem[:len(w.mem)-1]
		w.pending.Add(-int64(len(last)))
		w.drop(reason, len(last))
	}
}

// peek returns up to n records from the queue's head without removing them, and whether they
// come from the spool.
func (w *Writer) peek(n int) ([]*Record, bool, error) {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	if w.spool.Len() > 0 {
		recs, err := w.spool.Read(n)
		return recs, true, err
	}
	if len(w.mem) == 0 {
		return nil, false, nil
	}
	head := w.mem[0][:min(n, len(w.mem[0]))]
	// Copies: Append sets the chain fields while spill may encode the originals.
	recs := make([]*Record, len(head))
	for i, r := range head {
		c := *r
		recs[i] = &c
	}
	return recs, false, nil
}

// commit removes the n records at the queue's head.
func (w *Writer) commit(n int) {
	w.pending.Add(-int64(n))
	w.qmu.Lock()
	defer w.qmu.Unlock()
	if s := int(min(int64(n), w.spool.Len())); s > 0 {
		if err := w.spool.Commit(s); err != nil {
			w.log.Error("audit spool: commit", "err", err) // read again after a restart, then skipped
		}
		n -= s
	}
	for n > 0 && len(w.mem) > 0 {
		k := min(n, len(w.mem[0]))
		if w.mem[0] = w.mem[0][k:]; len(w.mem[0]) == 0 {
			w.mem = w.mem[1:]
		}
		n -= k
	}
	if len(w.mem) > 0 {
		w.rebalance() // the spool may have room again
	} else {
		w.full.Store(false)
	}
}

// shipState is what the shipper knows of the sink between attempts.
type shipState struct {
	inDoubt bool // the sink may hold records of the queue's head already
	fails   int  // failed attempts in a row
	single  int  // records left to append one at a time, to find one the sink refuses
	strikes int  // failed appends in a row of the head record alone
}

// ship feeds the sink from the queue's head until the writer is closed and the queue empty,
// or ctx ends. inDoubt: the sink may hold some of the spool's first records already.
func (w *Writer) ship(ctx context.Context, inDoubt bool) {
	defer close(w.shipped)
	st := shipState{inDoubt: inDoubt}
	for ctx.Err() == nil {
		recs, fromSpool, err := w.peek(w.opts.BatchSize)
		switch {
		case err != nil:
			w.log.Error("audit spool: read", "err", err)
			st.fails++
		case len(recs) == 0:
			select {
			case <-w.wake:
			case <-w.done: // closed, and the buffer empty: done once the queue is
				if w.queued() == 0 {
					return
				}
			case <-ctx.Done():
			}
			continue
		case w.store(ctx, recs, fromSpool, &st):
			continue
		}
		if !w.wait(ctx, st.fails) {
			return
		}
	}
}

// queued returns the number of records in the queue.
func (w *Writer) queued() int64 {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	n := w.spool.Len()
	for _, b := range w.mem {
		n += int64(len(b))
	}
	return n
}

// store appends recs, the queue's head, to the sink and removes from the queue what the sink
// took. It reports false at the first failure: the caller waits, then calls again.
//
// A failed batch is retried one record at a time. When the head record alone keeps failing
// (rejectAfter times in a row) while the record after it can be stored, the sink refuses that
// record, not every record: it is dropped (DropRejected), so that it does not hold up the rest.
func (w *Writer) store(ctx context.Context, recs []*Record, fromSpool bool, st *shipState) bool {
	stored := func(n int) {
		w.commit(n)
		w.writtenC.Add(ctx, int64(n))
		if fromSpool {
			w.replayedC.Add(ctx, int64(n))
		}
		recs = recs[n:]
	}
	for len(recs) > 0 {
		if st.inDoubt {
			n, err := w.alreadyStored(ctx, recs)
			if err != nil {
				st.fails++
				return false
			}
			st.inDoubt = false
			if n > 0 {
				w.log.Info("audit records already stored, skipped", "records", n)
				stored(n)
				st.single = max(st.single-n, 0)
				continue
			}
		}
		k := len(recs)
		if st.single > 0 {
			k = 1
		}
		err := w.appendTimed(ctx, recs[:k])
		if err == nil {
			stored(k)
			if st.fails > 0 {
				w.log.Info("audit sink recovered", "failed_attempts", st.fails)
			}
			st.fails, st.strikes, st.single = 0, 0, max(st.single-k, 0)
			continue
		}
		st.inDoubt = true
		if ctx.Err() != nil {
			return false
		}
		st.fails++
		if k > 1 {
			st.single = k
		} else if st.strikes++; st.strikes >= rejectAfter && len(recs) > 1 && w.appendTimed(ctx, recs[1:2]) == nil {
			w.log.Error("audit record dropped: the sink refuses it and takes the next one",
				"tenant", recs[0].Tenant, "request_id", recs[0].RequestID, "err", err)
			w.drop(DropRejected, 1)
			w.commit(2) // the refused record leaves the queue with the next one, stored
			w.writtenC.Add(ctx, 1)
			if fromSpool {
				w.replayedC.Add(ctx, 1)
			}
			recs = recs[2:]
			st.inDoubt, st.strikes, st.single = false, 0, max(st.single-2, 0)
			continue
		}
		if st.fails == 1 || st.fails%30 == 0 {
			w.log.Warn("audit sink failing; records wait in the queue", "queued", w.pending.Load(),
				"failed_attempts", st.fails, "err", err)
		}
		return false
	}
	return true
}

func (w *Writer) appendTimed(ctx context.Context, recs []*Record) error {
	actx, cancel := context.WithTimeout(ctx, w.opts.AppendTimeout)
	defer cancel()
	return w.sink.Append(actx, recs)
}

// alreadyStored returns how many of recs, from the first, the sink holds already: a prefix, as
// each Append stores its records in one transaction, in order.
func (w *Writer) alreadyStored(ctx context.Context, recs []*Record) (int, error) {
	c, ok := w.sink.(Container)
	if !ok {
		return 0, nil
	}
	has := func(i int) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, w.opts.AppendTimeout)
		defer cancel()
		return c.Contains(cctx, recs[i])
	}
	// Binary search for the first record not stored.
	lo, hi := 0, len(recs)
	if ok, err := has(hi - 1); err != nil || ok {
		if err != nil {
			return 0, err
		}
		return hi, nil
	}
	hi--
	for lo < hi {
		mid := (lo + hi) / 2
		ok, err := has(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// wait sleeps before retry number fails (RetryDelays, then its last delay) and reports false
// when ctx ended first.
func (w *Writer) wait(ctx context.Context, fails int) bool {
	d := time.Second
	if n := len(w.opts.RetryDelays); n > 0 {
		d = w.opts.RetryDelays[min(max(fails, 1), n)-1]
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drained waits until the queue is empty, or ctx ends.
func (w *Writer) drained(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for w.pending.Load() > 0 {
		select {
		case <-t.C:
		case <-w.shipped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// closeSpooled is Close with a spool: the sink gets what it takes until ctx ends; the rest of
// the queue goes to the spool.
func (w *Writer) closeSpooled(ctx context.Context) error {
	select {
	case <-w.shipped:
	case <-ctx.Done():
		w.stopShip()
		<-w.shipped
	}
	<-w.done
	w.closeOnce.Do(func() {
		w.stopShip()
		w.qmu.Lock()
		w.spill()
		lost := 0
		for _, b := range w.mem {
			lost += len(b)
		}
		w.mem = nil
		w.qmu.Unlock()
		if lost > 0 {
			w.drop(DropSpoolFull, lost)
		}
		if n := w.spool.Len(); n > 0 {
			w.log.Warn("audit records left in the spool; the sink gets them after the next start", "records", n)
		}
		if w.gauges != nil {
			_ = w.gauges.Unregister()
		}
		w.closeErr = errors.Join(w.spool.Close(), w.sink.Close())
	})
	return w.closeErr
}
