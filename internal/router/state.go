package router

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
)

// TargetKey identifies a target's live state: its breaker, latency figures and in-flight count.
// KeyID names the upstream credentials (a hash, never the key), so two keys for one model have
// separate breakers.
type TargetKey struct {
	Provider, Model, KeyID string
}

// Latency scoring.
const (
	// ewmaAlpha is the weight of a new sample in the moving averages.
	ewmaAlpha = 0.3
	// errorPenalty scales the latency score by 1 + errorPenalty × error rate: a target failing
	// half its calls looks three times slower.
	errorPenalty = 4.0
)

// State is the live per-target state that outlives routers: a config reload builds a new
// Router over the same State, so breakers, latency figures and in-flight counts carry over.
// Safe for concurrent use.
type State struct {
	clock Clock
	rand  Rand

	mu      sync.Mutex
	targets map[TargetKey]*targetState

	fallbacks metric.Int64Counter
	retries   metric.Int64Counter
	reg       metric.Registration

	live        liveMetrics
	log         *slog.Logger
	shadowSlots chan struct{} // one token per running shadow call
	shadowDone  func()        // tests: called when a shadow call has been recorded
}

// StateOption configures NewState.
type StateOption func(*stateOptions)

type stateOptions struct {
	clock Clock
	rand  Rand
	mp    metric.MeterProvider
	log   *slog.Logger
}

// WithClock sets the clock of backoffs, attempt timeouts, breakers and latency measurements
// (default SystemClock).
func WithClock(c Clock) StateOption { return func(o *stateOptions) { o.clock = c } }

// WithRand sets the random source of the weighted strategy and the backoff jitter.
func WithRand(r Rand) StateOption { return func(o *stateOptions) { o.rand = r } }

// WithMeterProvider sets where the router's metrics go (default: otel's global provider).
func WithMeterProvider(mp metric.MeterProvider) StateOption {
	return func(o *stateOptions) { o.mp = mp }
}

// Metric names.
const (
	MetricBreakerState = "switchyard.router.breaker.state"
	MetricFallbacks    = "switchyard.router.fallbacks"
	MetricRetries      = "switchyard.router.retries"
)

// NewState returns an empty state and registers its metrics: the gauge
// switchyard.router.breaker.state (0 closed, 1 open, 2 half-open; attributes provider, model,
// key_id), and the counters switchyard.router.fallbacks (route, from, to) and
// switchyard.router.retries (route, provider, model). Call Close to unregister the gauge.
func NewState(opts ...StateOption) *State {
	o := stateOptions{clock: SystemClock{}, rand: defaultRand}
	for _, opt := range opts {
		opt(&o)
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	s := &State{clock: o.clock, rand: o.rand, targets: map[TargetKey]*targetState{}, log: o.log,
		shadowSlots: make(chan struct{}, maxShadowInFlight)}
	m := o.mp.Meter("github.com/switchyard/switchyard/internal/router")
	s.live = newLiveMetrics(m)
	// Instrument errors only happen for invalid names or options, which are constants here; a
	// nil instrument from a failing provider is replaced by a no-op one.
	s.fallbacks, _ = m.Int64Counter(MetricFallbacks,
		metric.WithDescription("Requests that moved on to the next target of their route."))
	s.retries, _ = m.Int64Counter(MetricRetries,
		metric.WithDescription("Attempts retried on the same target after a retryable failure."))
	gauge, err := m.Int64ObservableGauge(MetricBreakerState,
		metric.WithDescription("Circuit breaker state per target: 0 closed, 1 open, 2 half-open."))
	if err == nil {
		s.reg, _ = m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
			for _, st := range s.Snapshot() {
				obs.ObserveInt64(gauge, int64(st.Breaker), metric.WithAttributes(
					attribute.String("provider", st.Key.Provider),
					attribute.String("model", st.Key.Model),
					attribute.String("key_id", st.Key.KeyID)))
			}
			return nil
		}, gauge)
	}
	return s
}

// Close unregisters the state's metric callback.
func (s *State) Close() error {
	if s.reg == nil {
		return nil
	}
	return s.reg.Unregister()
}

// Clock returns the state's clock.
func (s *State) Clock() Clock { return s.clock }

// TargetStatus is a snapshot of one target's live state.
type TargetStatus struct {
	Key      TargetKey
	Breaker  BreakerState
	InFlight int64
	// TTFT and Total are the moving averages of time to first token (the whole call for
	// blocking requests) and of total latency; Measured is false until a call has succeeded.
	TTFT, Total time.Duration
	Measured    bool
	ErrorRate   float64 // moving average of failures (service and quota classes) among outcomes
	Successes   int64
	Failures    int64
}

// Snapshot lists every target seen so far, sorted by key.
func (s *State) Snapshot() []TargetStatus {
	s.mu.Lock()
	ts := make([]*targetState, 0, len(s.targets))
	for _, t := range s.targets {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	now := s.clock.Now()
	out := make([]TargetStatus, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.status(now))
	}
	slices.SortFunc(out, func(a, b TargetStatus) int {
		switch {
		case a.Key.Provider != b.Key.Provider:
			return compare(a.Key.Provider, b.Key.Provider)
		case a.Key.Model != b.Key.Model:
			return compare(a.Key.Model, b.Key.Model)
		}
		return compare(a.Key.KeyID, b.Key.KeyID)
	})
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// target returns the live state of k, creating it on first use.
func (s *State) target(k TargetKey) *targetState {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[k]
	if !ok {
		t = &targetState{key: k}
		s.targets[k] = t
	}
	return t
}

// targetState is one target's live state.
type targetState struct {
	key      TargetKey
	inflight atomic.Int64

	mu                  sync.Mutex
	breaker             breaker
	breakerPolicy       breakerPolicy // of the last route that recorded an outcome, for peek
	ttft, total         float64       // EWMA, nanoseconds
	measured            bool
	errRate             float64
	successes, failures int64
}

func (t *targetState) status(now time.Time) TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TargetStatus{
		Key: t.key, Breaker: t.breaker.peek(now, t.breakerPolicy), InFlight: t.inflight.Load(),
		TTFT: time.Duration(t.ttft), Total: time.Duration(t.total), Measured: t.measured,
		ErrorRate: t.errRate, Successes: t.successes, Failures: t.failures,
	}
}

// allow asks the breaker for permission to send an attempt.
func (t *targetState) allow(now time.Time, p breakerPolicy) (ok, probe bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.breakerPolicy = p
	return t.breaker.allow(now, p)
}

// breakerState is the breaker's state as allow would see it now.
func (t *targetState) breakerState(now time.Time, p breakerPolicy) BreakerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.breaker.peek(now, p)
}

// record applies an outcome to the breaker and the error rate; a success with ttft > 0 also
// updates the time-to-first-token average.
func (t *targetState) record(now time.Time, o outcome, probe bool, p breakerPolicy, ttft time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.breaker.record(now, o, probe, p)
	switch o {
	case outcomeSuccess:
		t.successes++
		t.errRate = ewma(t.errRate, 0, true)
		if ttft > 0 {
			t.ttft = ewma(t.ttft, float64(ttft), t.measured)
		}
	case outcomeFailure:
		t.failures++
		t.errRate = ewma(t.errRate, 1, true)
	}
}

// recordTotal adds a total-latency sample of a successful call.
func (t *targetState) recordTotal(total time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total = ewma(t.total, float64(total), t.measured)
	t.measured = true
}

// recordStreamFailure counts a stream that broke after it was committed: the breaker and the
// error rate learn of it, but it is not retried.
func (t *targetState) recordStreamFailure(now time.Time, p breakerPolicy) {
	t.record(now, outcomeFailure, false, p, 0)
}

// latencyScore is the latency strategy's score; ok is false for an unmeasured target.
func (t *targetState) latencyScore() (score time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.measured {
		return 0, false
	}
	return time.Duration((t.ttft + t.total) / 2 * (1 + errorPenalty*t.errRate)), true
}

func ewma(avg, sample float64, seeded bool) float64 {
	if !seeded {
		return sample
	}
	return avg + ewmaAlpha*(sample-avg)
}
