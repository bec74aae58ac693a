package llm

import (
	"context"
	"fmt"
	"sync"
)

// Warnings collects non-fatal notes about one request, such as a parameter an adapter dropped or
// clamped because the upstream does not support it. The server returns them to the client in the
// x-switchyard-warning header. Safe for concurrent use.
type Warnings struct {
	mu   sync.Mutex
	msgs []string
}

type warningsKey struct{}

// WithWarnings returns a context that collects warnings, and the collector.
func WithWarnings(ctx context.Context) (context.Context, *Warnings) {
	w := &Warnings{}
	return context.WithValue(ctx, warningsKey{}, w), w
}

// Warn records a warning on ctx's collector; without one it does nothing. Duplicates are kept once.
func Warn(ctx context.Context, format string, args ...any) {
	w, _ := ctx.Value(warningsKey{}).(*Warnings)
	if w == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if m == msg {
			return
		}
	}
	w.msgs = append(w.msgs, msg)
}

// List returns the warnings recorded so far.
func (w *Warnings) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}
