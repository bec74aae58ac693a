package router

import "time"

// BreakerState is a circuit breaker's state, exported as the gauge value of
// switchyard.router.breaker.state.
type BreakerState int

// Breaker states.
const (
	BreakerClosed   BreakerState = 0 // requests flow
	BreakerOpen     BreakerState = 1 // requests are refused until open_for has passed
	BreakerHalfOpen BreakerState = 2 // half_open_probes requests are let through to test the target
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// outcome is what an attempt tells the breaker and the live statistics.
type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomeFailure         // counts against the target: service or quota class
	outcomeNeutral         // says nothing about the target's health: parameter, auth, business, caller gone
)

// windowBuckets is the resolution of the error-rate window.
const windowBuckets = 10

type bucket struct {
	start           time.Time
	total, failures int
}

// breaker is one target's circuit breaker. Not safe for concurrent use: targetState's mutex
// guards it.
type breaker struct {
	state       BreakerState
	consecutive int
	openedAt    time.Time
	probes      int // half-open: probes let through and not yet decided
	successes   int // half-open: probes that succeeded
	buckets     [windowBuckets]bucket
}

// allow reports whether a request may go to the target now, and whether it is a half-open probe
// (whose outcome must then be recorded with probe set).
func (b *breaker) allow(now time.Time, p breakerPolicy) (ok, probe bool) {
	switch b.state {
	case BreakerClosed:
		return true, false
	case BreakerOpen:
		if now.Sub(b.openedAt) < p.openFor {
			return false, false
		}
		b.state, b.probes, b.successes = BreakerHalfOpen, 0, 0
	}
	if b.probes+b.successes >= p.halfOpenProbes {
		return false, false
	}
	b.probes++
	return true, true
}

// peek reports the state as allow would see it, without changing anything.
func (b *breaker) peek(now time.Time, p breakerPolicy) BreakerState {
	if b.state == BreakerOpen && now.Sub(b.openedAt) >= p.openFor {
		return BreakerHalfOpen
	}
	return b.state
}

// record applies an attempt's outcome.
func (b *breaker) record(now time.Time, o outcome, probe bool, p breakerPolicy) {
	if probe && b.state == BreakerHalfOpen {
		b.probes--
		switch o {
		case outcomeFailure:
			b.trip(now)
		case outcomeSuccess:
			b.successes++
			if b.successes >= p.halfOpenProbes {
				b.reset()
			}
		}
		return
	}
	if o == outcomeNeutral || b.state != BreakerClosed {
		return // late outcomes of requests let through before the breaker opened
	}
	bk := b.bucket(now, p.window)
	bk.total++
	if o == outcomeSuccess {
		b.consecutive = 0
		return
	}
	bk.failures++
	b.consecutive++
	if p.consecutive > 0 && b.consecutive >= p.consecutive {
		b.trip(now)
		return
	}
	if p.errorRate > 0 {
		total, failures := b.window(now, p.window)
		if total >= p.minRequests && float64(failures) >= p.errorRate*float64(total) {
			b.trip(now)
		}
	}
}

func (b *breaker) trip(now time.Time) {
	b.state, b.openedAt, b.probes, b.successes = BreakerOpen, now, 0, 0
}

func (b *breaker) reset() {
	*b = breaker{}
}

// bucket returns the bucket for now, starting a fresh one when its slot holds an older period.
func (b *breaker) bucket(now time.Time, window time.Duration) *bucket {
	width := window / windowBuckets
	if width <= 0 {
		width = 1
	}
	start := now.Truncate(width)
	bk := &b.buckets[(start.UnixNano()/int64(width))%windowBuckets]
	if !bk.start.Equal(start) {
		*bk = bucket{start: start}
	}
	return bk
}

// window sums the buckets of the last window.
func (b *breaker) window(now time.Time, window time.Duration) (total, failures int) {
	for _, bk := range b.buckets {
		if !bk.start.IsZero() && now.Sub(bk.start) < window {
			total += bk.total
			failures += bk.failures
		}
	}
	return total, failures
}
