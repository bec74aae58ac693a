package telemetry

import (
	"io"
	"sync"
	"time"
)

// BufferedWriter batches small writes (log lines) into fewer writes to an underlying writer: it
// flushes when the next write would overflow its buffer, every interval, and on Flush and Close.
// A line is therefore written at most interval after it was logged; if the process dies without
// Close, up to interval of lines are lost. Writes larger than the buffer go through directly.
// It is safe for concurrent use; each Write is kept whole.
type BufferedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	err  error // the last write error, returned by the next Write or Flush
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewBufferedWriter returns a writer buffering up to size bytes for w, flushed every interval
// (interval ≤ 0: only when full and on Flush and Close). Close it to stop its flusher.
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{w: w, buf: make([]byte, 0, size), stop: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 {
		close(b.done)
		return b
	}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

// Write buffers p (or writes it through when it does not fit in an empty buffer).
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.err; err != nil {
		b.err = nil
		return 0, err
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.flushLocked(); err != nil {
		return err
	}
	err := b.err
	b.err = nil
	return err
}

func (b *BufferedWriter) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close stops the periodic flush and flushes. Writes after Close are still accepted and flushed
// when the buffer fills or on Flush.
func (b *BufferedWriter) Close() error {
	b.once.Do(func() {
		if b.stop != nil {
			select {
			case <-b.done:
			default:
				close(b.stop)
			}
		}
	})
	<-b.done
	return b.Flush()
}
