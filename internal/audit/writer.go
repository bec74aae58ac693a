package audit

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/seal"
)

// Defaults of WriterOptions.
const (
	DefaultBufferSize = 8192
	DefaultBatchSize  = 256
	DefaultLinger     = 5 * time.Millisecond
)

// Drop reasons (the "reason" attribute of the dropped-records counter).
const (
	DropBufferFull = "buffer_full" // the buffer was full: the sink is slower than the traffic
	DropSinkError  = "sink_error"  // the sink failed on every retry (no spool)
	DropClosed     = "closed"      // written after Close
	DropSpoolFull  = "spool_full"  // the sink was behind and the spool full
	DropSpoolError = "spool_error" // the sink was behind and the spool could not be written
	DropRejected   = "rejected"    // the sink answered but refused the record, again and again
)

// Policies when the spool is full (WriterOptions.OnSpoolFull), for the tenants that require
// their audit records.
const (
	FailClosed = "fail_closed" // Accepting refuses their new requests
	FailOpen   = "fail_open"   // their requests are served; records that find no room are dropped
)

// AllTenants in WriterOptions.RequiredTenants makes every tenant require its audit records.
const AllTenants = "*"

// MetricDropped counts records that were not stored, by reason. Alert on any increase, e.g. in
// Prometheus: increase(switchyard_audit_records_dropped_total[5m]) > 0.
const MetricDropped = "switchyard.audit.records.dropped"

// MetricWritten counts records stored.
const MetricWritten = "switchyard.audit.records.written"

// Metrics of the spool: records and bytes in it (gauges), records stored from it, and requests
// refused because their tenant requires audit and the spool is full.
const (
	MetricSpoolRecords = "switchyard.audit.spool.records"
	MetricSpoolSize    = "switchyard.audit.spool.size"
	MetricReplayed     = "switchyard.audit.records.replayed"
	MetricRefused      = "switchyard.audit.requests.refused"
)

// DefaultAppendTimeout bounds one Append of a writer with a spool.
const DefaultAppendTimeout = 30 * time.Second

// memBatches is how many batches a writer with a spool keeps in memory for the sink before it
// moves them to the spool; memBatchesMax how many when the spool takes no more.
const (
	memBatches    = 2
	memBatchesMax = 4
)

// rejectAfter is how many times in a row the sink may refuse one record alone before the writer
// tries the record after it: if the sink takes that one, the refused record is dropped.
const rejectAfter = 3

// dropLogInterval bounds how often drops are logged.
const dropLogInterval = 10 * time.Second

// Entry is one request to audit: its record and, when bodies are kept, a function returning the
// body, called on the writer's goroutine (off the request path).
type Entry struct {
	Record *Record
	Body   func() *Body

	flushed chan struct{} // a Flush marker, not a record
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	BufferSize    int // entries waiting for the sink (default DefaultBufferSize)
	BatchSize     int // records per Append at most (default DefaultBatchSize)
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider // nil: the global provider
	Redactor      *Redactor            // nil: bodies kept as they are
	Keyring       *seal.Keyring        // seals bodies; nil: plaintext
	// Linger is how long a batch waits for more records once it has one (default 5ms; negative:
	// no wait). Longer lingers mean fewer, larger transactions.
	Linger time.Duration
	// RetryDelays are the waits before retrying a failed Append (default 100ms, 500ms, 2s).
	// With a spool, the retries go on at the last delay until the sink takes the records.
	RetryDelays []time.Duration

	// Spool keeps the records the sink has not taken yet when it is slow or down; the writer
	// owns it from now on (Close closes it). nil: records the sink does not take after the
	// retries, or that find the buffer full, are dropped.
	Spool *Spool
	// RequiredTenants require their audit records ("*": every tenant): when the spool is full,
	// OnSpoolFull applies to their requests. Other tenants are served and their records that
	// find no room are dropped and counted.
	RequiredTenants []string
	// OnSpoolFull is FailClosed (default) or FailOpen.
	OnSpoolFull string
	// AppendTimeout bounds one Append of a writer with a spool (default 30s).
	AppendTimeout time.Duration
}

// Writer writes entries to a sink asynchronously through a bounded buffer. Write never blocks:
// when the buffer is full the entry is dropped, counted (MetricDropped, Dropped) and logged at
// warn at most every 10 s. A Writer is safe for concurrent use.
//
// With a spool, the records leave the buffer for a queue: a few batches in memory, handed to
// the sink as they come, and the spool on disk as soon as the sink falls behind (it fails, or
// more than two batches wait). While the spool holds records, every new record goes through it
// too, so the sink receives the records in the order they were written, and it chains them in
// that order. A batch leaves the queue only once the sink has stored it; a failed Append is
// retried (at the last of RetryDelays) until the sink takes it. After a failure, or when the
// spool had records at the start, the records the sink already holds (an Append that
// committed but reported an error, or stored before a crash) are skipped when the sink can
// tell (Contains), so no record is stored twice.
type Writer struct {
	sink Sink
	opts WriterOptions
	log  *slog.Logger
	keys *seal.Keyring

	mu     sync.RWMutex // guards closed against Write's send
	closed bool
	ch     chan *Entry
	done   chan struct{}

	dropped    atomic.Int64
	lastLog    atomic.Int64 // unix nanos of the last drop warning
	loggedDrop atomic.Int64 // Dropped() at the last drop warning
	full       atomic.Bool  // the last record that needed room found none

	droppedC metric.Int64Counter
	writtenC metric.Int64Counter
	attrs    map[string]metric.AddOption

	// With a spool (nil otherwise):
	spool     *Spool
	required  map[string]bool
	qmu       sync.Mutex  // guards mem, and keeps spool ++ mem one queue
	mem       [][]*Record // the queue's tail, after what the spool holds
	pending   atomic.Int64
	wake      chan struct{}
	stopShip  context.CancelFunc
	shipped   chan struct{}
	closeOnce sync.Once
	closeErr  error
	replayedC metric.Int64Counter
	refusedC  metric.Int64Counter
	gauges    metric.Registration
}

// NewWriter starts a writer over sink. Close it to flush.
func NewWriter(sink Sink, opts WriterOptions) *Writer {
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	if opts.RetryDelays == nil {
		opts.RetryDelays = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter("github.com/switchyard/switchyard/internal/audit")
	w := &Writer{sink: sink, opts: opts, log: opts.Logger, keys: opts.Keyring,
		ch: make(chan *Entry, opts.BufferSize), done: make(chan struct{}), attrs: map[string]metric.AddOption{}}
	w.droppedC, _ = m.Int64Counter(MetricDropped, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records not stored (buffer full, sink failing, or written after close)."))
	w.writtenC, _ = m.Int64Counter(MetricWritten, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records stored."))
	for _, r := range []string{DropBufferFull, DropSinkError, DropClosed, DropSpoolFull, DropSpoolError, DropRejected} {
		w.attrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	if opts.Spool != nil {
		w.startSpool(m)
	}
	go w.run()
	return w
}

// Write queues e without blocking. It reports false when e was dropped.
func (w *Writer) Write(e *Entry) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(DropClosed, 1)
		return false
	}
	select {
	case w.ch <- e:
		return true
	default:
		w.drop(DropBufferFull, 1)
		return false
	}
}

// Dropped returns the number of entries dropped so far, for every reason.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

func (w *Writer) drop(reason string, n int) {
	total := w.dropped.Add(int64(n))
	w.droppedC.Add(context.Background(), int64(n), w.attrs[reason])
	now := time.Now().UnixNano()
	last := w.lastLog.Load()
	if now-last < int64(dropLogInterval) || !w.lastLog.CompareAndSwap(last, now) {
		return
	}
	since := total - w.loggedDrop.Swap(total)
	w.log.Warn("audit records dropped", "reason", reason, "dropped_since_last_warning", since, "dropped_total", total)
}

// Close stops accepting entries, writes what is queued, and closes the sink. It returns early
// with ctx's error if ctx ends first (the rest is then written in the background). With a
// spool, what the sink has not taken when ctx ends stays in the spool, read again after the
// next start, and Close returns nil unless the spool fails.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
	w.mu.Unlock()
	if w.spool != nil {
		return w.closeSpooled(ctx)
	}
	select {
	case <-w.done:
		return w.sink.Close()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush waits until every entry queued before the call has been handed to the sink, or ctx ends.
// With a spool, it waits until the queue is empty: the sink has stored every record, also those
// queued after the call. It does not stop the writer.
func (w *Writer) Flush(ctx context.Context) error {
	marker := &Entry{flushed: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		done := w.done
		if w.spool != nil {
			done = w.shipped
		}
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case w.ch <- marker:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-marker.flushed:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.spool != nil {
		return w.drained(ctx)
	}
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]*Record, 0, w.opts.BatchSize)
	var markers []chan struct{}
	add := func(e *Entry) {
		if e.flushed != nil {
			markers = append(markers, e.flushed)
			return
		}
		batch = append(batch, w.prepare(e))
	}
	for e := range w.ch {
		batch, markers = batch[:0], markers[:0]
		add(e)
		// Wait up to Linger for more records: one transaction per batch, not per record.
		var timer *time.Timer
		var linger <-chan time.Time
		if w.opts.Linger > 0 {
			timer = time.NewTimer(w.opts.Linger)
			linger = timer.C
		}
	fill:
		for len(batch) < w.opts.BatchSize && len(markers) == 0 {
			var e *Entry
			var ok bool
			if linger == nil {
				select {
				case e, ok = <-w.ch:
				default:
					break fill
				}
			} else {
				select {
				case e, ok = <-w.ch:
				case <-linger:
					break fill
				}
			}
			if !ok {
				break fill
			}
			add(e)
		}
		if timer != nil {
			timer.Stop()
		}
		if len(batch) > 0 {
			if w.spool != nil {
				w.enqueue(slices.Clone(batch))
			} else {
				w.append(batch)
			}
		}
		for _, m := range markers {
			close(m)
		}
	}
}

// prepare makes e's record storable and seals its body into it.
func (w *Writer) prepare(e *Entry) *Record {
	r := e.Record
	r.sanitize()
	if e.Body != nil {
		if b := e.Body(); b != nil {
			if err := sealBody(r, b, w.opts.Redactor, w.keys); err != nil {
				w.log.Error("audit body not kept", "request_id", r.RequestID, "err", err)
			}
		}
	}
	return r
}

func (w *Writer) append(batch []*Record) {
	ctx := context.Background()
	var err error
	for i := 0; ; i++ {
		if err = w.sink.Append(ctx, batch); err == nil {
			w.writtenC.Add(ctx, int64(len(batch)))
			return
		}
		if i == len(w.opts.RetryDelays) {
			break
		}
		w.log.Warn("audit append failed; retrying", "records", len(batch), "err", err)
		time.Sleep(w.opts.RetryDelays[i])
	}
	w.log.Error("audit records lost: the sink failed on every retry", "records", len(batch), "err", err)
	w.drop(DropSinkError, len(batch))
}
