package router

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock is the time source of the executor and the breakers, so tests can drive backoffs,
// attempt timeouts and breaker windows without sleeping.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends and then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc calls f in its own goroutine after d, unless stop is called first; stop reports
	// whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits for d or until ctx ends.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Rand returns a pseudo-random number in [0, 1). The weighted strategy and the backoff jitter
// draw from it.
type Rand func() float64

// defaultRand is math/rand/v2's global source, safe for concurrent use.
func defaultRand() float64 { return rand.Float64() }
