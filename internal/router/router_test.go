package router

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/switchyard/switchyard/internal/llm"
)

// env is a router over fake providers a/m1, b/m2, c/m3 sharing one fake clock.
type env struct {
	clock *fakeClock
	provs map[string]*fakeProvider
	r     *Router
}

func newEnv(t *testing.T, rnd Rand, cfg Config, steps map[string][]step, opts ...StateOption) *env {
	t.Helper()
	e := &env{clock: newFakeClock(), provs: map[string]*fakeProvider{}}
	backends := map[string]Backend{}
	for _, pm := range []string{"a/m1", "b/m2", "c/m3"} {
		prov, model, _ := strings.Cut(pm, "/")
		p := &fakeProvider{name: prov, clock: e.clock, steps: steps[pm]}
		e.provs[pm] = p
		backends[prov] = Backend{Provider: p, Models: []string{model}, KeyID: "k-" + prov}
	}
	if rnd == nil {
		rnd = func() float64 { return 0.5 }
	}
	st := NewState(append([]StateOption{WithClock(e.clock), WithRand(rnd)}, opts...)...)
	r, err := Build(backends, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	return e
}

func (e *env) calls(pm string) int { return int(e.provs[pm].calls.Load()) }

func (e *env) chat(t *testing.T, ctx context.Context, model string) (Result, error) {
	t.Helper()
	p, err := e.r.Plan(model, Estimate{PromptTokens: 1000, MaxTokens: 500})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := p.Chat(ctx, &llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "hi")}})
	return res, err
}

func upErr(k llm.Kind, retryAfter time.Duration) *llm.Error {
	return &llm.Error{Kind: k, Provider: "up", Message: k.String(), RetryAfter: retryAfter}
}

func f64(v float64) *float64 { return &v }

func testRoute(s Strategy, targets ...TargetConfig) RouteConfig {
	return RouteConfig{Name: "r", Strategy: s, Targets: targets}
}

func tgt(m string) TargetConfig { return TargetConfig{Model: m} }

func TestStrategies(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		rnd    Rand
		steps  map[string][]step
		warm   func(t *testing.T, e *env) // drives live state through pinned requests
		want   string                     // Decision
		answer string                     // target that answers
	}{
		{
			name: "priority is config order",
			cfg:  Config{Routes: []RouteConfig{testRoute(StrategyPriority, tgt("b/m2"), tgt("a/m1"))}},
			want: "strategy=priority; chosen=b/m2; candidates=b/m2:#1,a/m1:#2", answer: "b/m2",
		},
		{
			name: "weighted draw lands on the heavy target",
			cfg: Config{Routes: []RouteConfig{testRoute(StrategyWeighted,
				TargetConfig{Model: "a/m1", Weight: 1}, TargetConfig{Model: "b/m2", Weight: 3})}},
			rnd:  func() float64 { return 0.5 }, // 0.5×4 = 2: past a's 1, inside b's 3
			want: "strategy=weighted; chosen=b/m2; candidates=b/m2:w=3,a/m1:w=1", answer: "b/m2",
		},
		{
			name: "weighted draw lands on the light target",
			cfg: Config{Routes: []RouteConfig{testRoute(StrategyWeighted,
				TargetConfig{Model: "a/m1", Weight: 1}, TargetConfig{Model: "b/m2", Weight: 3})}},
			rnd:  func() float64 { return 0.1 }, // 0.4: inside a's 1
			want: "strategy=weighted; chosen=a/m1; candidates=a/m1:w=1,b/m2:w=3", answer: "a/m1",
		},
		{
			name: "cost picks the cheapest estimate, unpriced last",
			cfg: Config{
				Routes: []RouteConfig{testRoute(StrategyCost, tgt("c/m3"), tgt("a/m1"),
					TargetConfig{Model: "b/m2", InputPricePerMTok: f64(1), OutputPricePerMTok: f64(2)})},
				Prices: map[string]PriceConfig{
					"a/m1": {InputPricePerMTok: 10, OutputPricePerMTok: 30},
					"b/m2": {InputPricePerMTok: 50, OutputPricePerMTok: 50}, // overridden by the target
				},
			},
			// 1000 prompt + 500 completion tokens: a = 0.01+0.015, b = 0.001+0.001.
			want: "strategy=cost; chosen=b/m2; candidates=b/m2:$0.002000,a/m1:$0.025000,c/m3:unpriced", answer: "b/m2",
		},
		{
			name:  "latency picks the lowest EWMA and explores unmeasured targets first",
			cfg:   Config{Routes: []RouteConfig{testRoute(StrategyLatency, tgt("a/m1"), tgt("b/m2"), tgt("c/m3"))}},
			steps: map[string][]step{"a/m1": {{latency: 40 * time.Millisecond}}, "b/m2": {{latency: 12 * time.Millisecond}}},
			warm: func(t *testing.T, e *env) {
				for _, m := range []string{"a/m1", "b/m2"} {
					if _, err := e.chat(t, t.Context(), m); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: "strategy=latency; chosen=c/m3; candidates=c/m3:unmeasured,b/m2:12.0ms,a/m1:40.0ms", answer: "c/m3",
		},
		{
			name: "latency penalises the error rate",
			cfg: Config{Routes: []RouteConfig{testRoute(StrategyLatency, tgt("b/m2"), tgt("a/m1"))},
				ProviderRetry: map[string]RetryConfig{"b": {MaxRetries: new(int)}}}, // one failure, not retried
			steps: map[string][]step{
				"a/m1": {{latency: 20 * time.Millisecond}},
				"b/m2": {{latency: 10 * time.Millisecond}, {err: upErr(llm.KindUpstream, 0)}},
			},
			warm: func(t *testing.T, e *env) {
				_, _ = e.chat(t, t.Context(), "a/m1")
				_, _ = e.chat(t, t.Context(), "b/m2") // 10ms
				_, _ = e.chat(t, t.Context(), "b/m2") // a failure: error rate 0.3, score 10ms × 2.2
			},
			want: "strategy=latency; chosen=a/m1; candidates=a/m1:20.0ms,b/m2:22.0ms", answer: "a/m1",
		},
		{
			name: "least-busy picks the fewest in flight",
			cfg:  Config{Routes: []RouteConfig{testRoute(StrategyLeastBusy, tgt("a/m1"), tgt("b/m2"))}},
			warm: func(t *testing.T, e *env) {
				for range 2 { // two open streams on a
					p, _ := e.r.Plan("a/m1", Estimate{})
					s, _, err := p.ChatStream(t.Context(), &llm.ChatRequest{})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = s.Close() })
				}
			},
			want: "strategy=least-busy; chosen=b/m2; candidates=b/m2:inflight=0,a/m1:inflight=2", answer: "b/m2",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.rnd, c.cfg, c.steps)
			if c.warm != nil {
				c.warm(t, e)
			}
			res, err := e.chat(t, t.Context(), "r")
			if err != nil {
				t.Fatal(err)
			}
			if res.Decision != c.want {
				t.Errorf("decision\n got %s\nwant %s", res.Decision, c.want)
			}
			if res.Target.Name() != c.answer || res.Attempts != 1 {
				t.Errorf("answered by %s after %d attempts, want %s after 1", res.Target.Name(), res.Attempts, c.answer)
			}
		})
	}
}

func TestRetryAndFallback(t *testing.T) {
	fail := func(k llm.Kind) []step { return []step{{err: upErr(k, 0)}} }
	cases := []struct {
		name     string
		a        []step
		retry    RetryConfig
		deadline time.Duration // from the fake now; 0: none
		canceled bool

		wantA, wantB int // upstream calls
		wantSleeps   []time.Duration
		wantKind     llm.Kind // of the error; 0 with wantOK
		wantOK       bool
		wantFallback bool
	}{
		{name: "500 then success: one retry after a jittered wait",
			a: []step{{err: upErr(llm.KindUpstream, 0)}, {}}, wantA: 2, wantSleeps: []time.Duration{500 * time.Millisecond}, wantOK: true},
		{name: "500 until retries run out, then the fallback",
			a: fail(llm.KindUpstream), wantA: 4, wantB: 1, wantOK: true, wantFallback: true,
			wantSleeps: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{name: "503 and 504 are retried too",
			a: []step{{err: upErr(llm.KindUnavailable, 0)}, {err: upErr(llm.KindTimeout, 0)}, {}}, wantA: 3, wantOK: true,
			wantSleeps: []time.Duration{500 * time.Millisecond, time.Second}},
		{name: "Retry-After honoured",
			a: []step{{err: upErr(llm.KindRateLimited, 7*time.Second)}, {}}, wantA: 2, wantOK: true, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "Retry-After capped",
			a: []step{{err: upErr(llm.KindRateLimited, 90*time.Second)}, {}}, wantA: 2, wantOK: true, wantSleeps: []time.Duration{30 * time.Second}},
		{name: "Retry-After cap configurable",
			a: []step{{err: upErr(llm.KindRateLimited, 90*time.Second)}, {}}, retry: RetryConfig{RetryAfterCap: 2 * time.Second},
			wantA: 2, wantOK: true, wantSleeps: []time.Duration{2 * time.Second}},
		{name: "a backoff that would pass the deadline is not started",
			a: fail(llm.KindUpstream), deadline: 2500 * time.Millisecond, wantA: 3, wantB: 1, wantOK: true, wantFallback: true,
			wantSleeps: []time.Duration{500 * time.Millisecond, time.Second}}, // the next wait (2s) would end at 3.5s
		{name: "max_retries 0 falls back at once",
			a: fail(llm.KindUpstream), retry: RetryConfig{MaxRetries: new(int)}, wantA: 1, wantB: 1, wantOK: true, wantFallback: true},
		{name: "400 is neither retried nor fallen back", a: fail(llm.KindInvalidArgument), wantA: 1, wantKind: llm.KindInvalidArgument},
		{name: "413 is neither retried nor fallen back", a: fail(llm.KindTooLarge), wantA: 1, wantKind: llm.KindTooLarge},
		{name: "business refusal is neither retried nor fallen back", a: fail(llm.KindBusiness), wantA: 1, wantKind: llm.KindBusiness},
		{name: "401 from the upstream falls back without a retry", a: fail(llm.KindUnauthenticated), wantA: 1, wantB: 1, wantOK: true, wantFallback: true},
		{name: "403 from the upstream falls back without a retry", a: fail(llm.KindPermissionDenied), wantA: 1, wantB: 1, wantOK: true, wantFallback: true},
		{name: "404 model at the upstream falls back without a retry", a: fail(llm.KindNotFound), wantA: 1, wantB: 1, wantOK: true, wantFallback: true},
		{name: "billing quota falls back without a retry", a: fail(llm.KindQuotaExceeded), wantA: 1, wantB: 1, wantOK: true, wantFallback: true},
		{name: "a canceled caller gets no attempt", canceled: true, wantKind: llm.KindCanceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))
			rc.Retry = c.retry
			e := newEnv(t, nil, Config{Routes: []RouteConfig{rc}}, map[string][]step{"a/m1": c.a})
			ctx := t.Context()
			if c.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, e.clock.Now().Add(c.deadline))
				defer cancel()
			}
			if c.canceled {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			res, err := e.chat(t, ctx, "r")
			if c.wantOK != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, c.wantOK)
			}
			if !c.wantOK && llm.KindOf(err) != c.wantKind {
				t.Errorf("kind = %v, want %v", llm.KindOf(err), c.wantKind)
			}
			if e.calls("a/m1") != c.wantA || e.calls("b/m2") != c.wantB {
				t.Errorf("calls a=%d b=%d, want a=%d b=%d", e.calls("a/m1"), e.calls("b/m2"), c.wantA, c.wantB)
			}
			if res.Attempts != c.wantA+c.wantB {
				t.Errorf("Attempts = %d, want %d", res.Attempts, c.wantA+c.wantB)
			}
			if (res.Fallbacks > 0) != c.wantFallback {
				t.Errorf("Fallbacks = %d, want fallback %v", res.Fallbacks, c.wantFallback)
			}
			if got := e.clock.Sleeps(); !slices.Equal(got, c.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", got, c.wantSleeps)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	p := RetryConfig{}.policy()
	for n := 1; n <= 8; n++ {
		ceiling := min(time.Second<<(n-1), 30*time.Second)
		for _, r := range []float64{0, 0.25, 0.999999} {
			got := p.backoff(n, 0, func() float64 { return r })
			if got < 0 || got >= ceiling {
				t.Errorf("backoff(%d) with rand %v = %v, want in [0, %v)", n, r, got, ceiling)
			}
			if want := time.Duration(r * float64(ceiling)); got != want {
				t.Errorf("backoff(%d) with rand %v = %v, want full jitter %v", n, r, got, want)
			}
		}
	}
	if got := p.backoff(1, 3*time.Second, func() float64 { return 0.9 }); got != 3*time.Second {
		t.Errorf("Retry-After 3s over a 0.9s jitter: wait %v, want 3s", got)
	}
	if got := p.backoff(3, time.Second, func() float64 { return 0.9 }); got != 3600*time.Millisecond {
		t.Errorf("Retry-After 1s under a 3.6s jitter: wait %v, want 3.6s", got)
	}
}

func TestStreams(t *testing.T) {
	cases := []struct {
		name         string
		a            []step
		attemptTO    time.Duration
		idleTO       time.Duration
		wantA, wantB int
		wantMidErr   bool
		wantKind     llm.Kind // of the mid-stream error, when set
	}{
		{name: "an error before the first chunk is retried", a: []step{{err: upErr(llm.KindUnavailable, 0)}, {}}, wantA: 2},
		{name: "an error after the first chunk ends the stream, no retry, no fallback",
			a: []step{{midErr: upErr(llm.KindUpstream, 0)}}, wantA: 1, wantMidErr: true},
		{name: "an attempt without a first chunk in time falls back",
			a: []step{{block: true, latency: 10 * time.Second}}, attemptTO: 5 * time.Second, wantA: 1, wantB: 1},
		{name: "a stream that stalls after its first chunk breaks at the idle timeout, no retry",
			a: []step{{stall: true, tail: 10 * time.Second}}, idleTO: 5 * time.Second, wantA: 1, wantMidErr: true, wantKind: llm.KindTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))
			rc.AttemptTimeout = c.attemptTO
			rc.StreamIdleTimeout = c.idleTO
			if c.attemptTO > 0 {
				rc.Retry.MaxRetries = new(int)
			}
			e := newEnv(t, nil, Config{Routes: []RouteConfig{rc}}, map[string][]step{"a/m1": c.a})
			p, _ := e.r.Plan("r", Estimate{})
			s, res, err := p.ChatStream(t.Context(), &llm.ChatRequest{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if ch, err := s.Recv(); err != nil || ch == nil {
				t.Fatalf("first Recv = %v, %v", ch, err)
			}
			_, err = s.Recv()
			if c.wantMidErr != !errors.Is(err, io.EOF) {
				t.Errorf("second Recv err = %v, want mid-stream error %v", err, c.wantMidErr)
			}
			if c.wantKind != 0 && llm.KindOf(err) != c.wantKind {
				t.Errorf("second Recv err = %v, want kind %v", err, c.wantKind)
			}
			if e.calls("a/m1") != c.wantA || e.calls("b/m2") != c.wantB || res.Attempts != c.wantA+c.wantB {
				t.Errorf("calls a=%d b=%d attempts=%d, want a=%d b=%d", e.calls("a/m1"), e.calls("b/m2"), res.Attempts, c.wantA, c.wantB)
			}
		})
	}
}

func TestStreamInFlightReleased(t *testing.T) {
	e := newEnv(t, nil, Config{}, nil)
	p, _ := e.r.Plan("a/m1", Estimate{})
	s, _, err := p.ChatStream(t.Context(), &llm.ChatRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ts := e.r.State().target(TargetKey{"a", "m1", "k-a"})
	if n := ts.inflight.Load(); n != 1 {
		t.Errorf("in flight while open = %d, want 1", n)
	}
	_ = s.Close()
	_ = s.Close()
	if n := ts.inflight.Load(); n != 0 {
		t.Errorf("in flight after Close = %d, want 0", n)
	}
}

func TestBreakerTransitions(t *testing.T) {
	const S, F, N = outcomeSuccess, outcomeFailure, outcomeNeutral
	base := breakerPolicy{consecutive: 3, window: time.Minute, minRequests: 1000, openFor: 10 * time.Second, halfOpenProbes: 1}
	rate := breakerPolicy{errorRate: 0.5, window: time.Minute, minRequests: 4, openFor: 10 * time.Second, halfOpenProbes: 2}
	cases := []struct {
		name     string
		p        breakerPolicy
		outcomes []outcome
		gap      time.Duration // clock advance between outcomes
		want     BreakerState
	}{
		{"closed below the consecutive limit", base, []outcome{F, F}, 0, BreakerClosed},
		{"opens on consecutive failures", base, []outcome{F, F, F}, 0, BreakerOpen},
		{"a success resets the run", base, []outcome{F, F, S, F, F}, 0, BreakerClosed},
		{"neutral outcomes neither count nor reset", base, []outcome{F, N, F, N, F}, 0, BreakerOpen},
		{"opens on the error rate once min_requests is reached", rate, []outcome{S, F, S, F}, 0, BreakerOpen},
		{"below min_requests the rate does not apply", rate, []outcome{F, F, F}, 0, BreakerClosed},
		{"failures older than the window do not count", rate, []outcome{F, F, S, S}, 40 * time.Second, BreakerClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b breaker
			now := time.Unix(1_700_000_000, 0)
			for _, o := range c.outcomes {
				b.record(now, o, false, c.p)
				now = now.Add(c.gap)
			}
			if got := b.peek(now, c.p); got != c.want {
				t.Errorf("state = %v, want %v", got, c.want)
			}
		})
	}

	t.Run("open, half-open probes, closed again", func(t *testing.T) {
		var b breaker
		p := base
		p.halfOpenProbes = 2
		now := time.Unix(1_700_000_000, 0)
		for range 3 {
			b.record(now, F, false, p)
		}
		if ok, _ := b.allow(now.Add(9*time.Second), p); ok {
			t.Fatal("open breaker let a request through")
		}
		now = now.Add(10 * time.Second)
		ok1, probe1 := b.allow(now, p)
		ok2, probe2 := b.allow(now, p)
		ok3, _ := b.allow(now, p)
		if !ok1 || !probe1 || !ok2 || !probe2 || ok3 {
			t.Fatalf("half-open allowed %v %v %v, want 2 probes then no", ok1, ok2, ok3)
		}
		b.record(now, S, true, p)
		if b.state != BreakerHalfOpen {
			t.Fatalf("after 1 of 2 probe successes: %v, want half-open", b.state)
		}
		b.record(now, S, true, p)
		if b.state != BreakerClosed {
			t.Fatalf("after 2 probe successes: %v, want closed", b.state)
		}
	})
	t.Run("a failed probe reopens", func(t *testing.T) {
		var b breaker
		now := time.Unix(1_700_000_000, 0)
		for range 3 {
			b.record(now, F, false, base)
		}
		now = now.Add(10 * time.Second)
		if ok, probe := b.allow(now, base); !ok || !probe {
			t.Fatal("no probe after open_for")
		}
		b.record(now, F, true, base)
		if b.state != BreakerOpen || !b.openedAt.Equal(now) {
			t.Fatalf("state %v opened %v, want open since the probe", b.state, b.openedAt)
		}
	})
	t.Run("a neutral probe frees its slot", func(t *testing.T) {
		var b breaker
		now := time.Unix(1_700_000_000, 0)
		for range 3 {
			b.record(now, F, false, base)
		}
		now = now.Add(10 * time.Second)
		b.allow(now, base)
		b.record(now, N, true, base)
		if ok, _ := b.allow(now, base); !ok {
			t.Fatal("slot of a neutral probe not freed")
		}
	})
}

// TestBreakerInExecutor shows an open breaker moving traffic to the fallback without calling the
// broken target, the [open] mark in the decision, the gauge and the fallback counter.
func TestBreakerInExecutor(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rc := testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))
	rc.Retry.MaxRetries = new(int)
	rc.Breaker = BreakerConfig{ConsecutiveFailures: 2, OpenFor: time.Minute}
	e := newEnv(t, nil, Config{Routes: []RouteConfig{rc}}, map[string][]step{"a/m1": {{err: upErr(llm.KindUnavailable, 0)}}},
		WithMeterProvider(mp))
	for range 2 {
		if _, err := e.chat(t, t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.chat(t, t.Context(), "r")
	if err != nil {
		t.Fatal(err)
	}
	if e.calls("a/m1") != 2 || res.Attempts != 1 || res.Target.Name() != "b/m2" {
		t.Errorf("a called %d times, attempts %d by %s; want a left alone, 1 attempt by b/m2", e.calls("a/m1"), res.Attempts, res.Target.Name())
	}
	if want := "strategy=priority; chosen=b/m2; candidates=b/m2:#2,a/m1:#1 [open]"; res.Decision != want {
		t.Errorf("decision\n got %s\nwant %s", res.Decision, want)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	gauge := map[string]int64{}
	var fallbacks int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					p, _ := dp.Attributes.Value(attribute.Key("provider"))
					gauge[p.AsString()] = dp.Value
				}
			case metricdata.Sum[int64]:
				if m.Name == MetricFallbacks {
					for _, dp := range d.DataPoints {
						fallbacks += dp.Value
					}
				}
			}
		}
	}
	if gauge["a"] != int64(BreakerOpen) || gauge["b"] != int64(BreakerClosed) {
		t.Errorf("breaker gauge = %v, want a=1 b=0", gauge)
	}
	if fallbacks != 2 {
		t.Errorf("fallback counter = %d, want 2 (two failures of a)", fallbacks)
	}

	// After open_for a probe goes to a again; it succeeds and closes the breaker.
	e.provs["a/m1"].steps = []step{{}}
	e.clock.Advance(time.Minute)
	res, err = e.chat(t, t.Context(), "r")
	if err != nil || res.Target.Name() != "a/m1" {
		t.Fatalf("after open_for: %v by %s, want a/m1", err, res.Target.Name())
	}
	if st := e.r.State().Snapshot()[0]; st.Key.Provider != "a" || st.Breaker != BreakerClosed {
		t.Errorf("snapshot %+v, want a closed", st)
	}
}

func TestAllOpen(t *testing.T) {
	rc := testRoute(StrategyPriority, tgt("a/m1"))
	rc.Retry.MaxRetries = new(int)
	rc.Breaker = BreakerConfig{ConsecutiveFailures: 1}
	e := newEnv(t, nil, Config{Routes: []RouteConfig{rc}}, map[string][]step{"a/m1": {{err: upErr(llm.KindUpstream, 0)}}})
	_, _ = e.chat(t, t.Context(), "r")
	res, err := e.chat(t, t.Context(), "r")
	var le *llm.Error
	if !errors.As(err, &le) || le.Kind != llm.KindUnavailable || le.Code != "circuit_open" || res.Attempts != 0 {
		t.Errorf("err = %v, attempts %d; want unavailable circuit_open, no attempt", err, res.Attempts)
	}
}

func TestRouteTimeout(t *testing.T) {
	rc := testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))
	rc.Timeout = 3 * time.Second
	e := newEnv(t, nil, Config{Routes: []RouteConfig{rc}}, map[string][]step{"a/m1": {{block: true, latency: 5 * time.Second}}})
	res, err := e.chat(t, t.Context(), "r")
	if llm.KindOf(err) != llm.KindTimeout || res.Attempts != 1 || e.calls("b/m2") != 0 {
		t.Errorf("err %v after %d attempts (b called %d); want a timeout, 1 attempt, no fallback past the request's deadline",
			err, res.Attempts, e.calls("b/m2"))
	}
}

func TestSpanAttributes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	rc := testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))
	rc.Retry.MaxRetries = new(int)
	e := newEnv(t, nil, Config{Routes: []RouteConfig{rc}}, map[string][]step{"a/m1": {{err: upErr(llm.KindUpstream, 0)}}})
	ctx, span := tp.Tracer("t").Start(t.Context(), "req")
	if _, err := e.chat(t, ctx, "r"); err != nil {
		t.Fatal(err)
	}
	span.End()
	got := map[string]string{}
	for _, kv := range exp.GetSpans()[0].Attributes {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{AttrStrategy: "priority", AttrChosen: "a/m1", AttrCandidates: "a/m1:#1,b/m2:#2",
		AttrAttempts: "2", AttrFallbacks: "1", AttrTarget: "b/m2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestEmbedSkipsNonEmbedders(t *testing.T) {
	clk := newFakeClock()
	a := chatOnly{&fakeProvider{clock: clk}}
	b := &fakeProvider{clock: clk}
	r, err := Build(map[string]Backend{"a": {Provider: a}, "b": {Provider: b}},
		Config{Routes: []RouteConfig{testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))}}, NewState(WithClock(clk)))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := r.Plan("r", Estimate{})
	_, res, err := p.Embed(t.Context(), &llm.EmbeddingRequest{Texts: []string{"x"}})
	if err != nil || res.Target.Name() != "b/m2" || res.Attempts != 1 {
		t.Errorf("embed: %v by %s in %d attempts, want b/m2 in 1", err, res.Target.Name(), res.Attempts)
	}
	p, _ = r.Plan("a/m1", Estimate{})
	if _, _, err := p.Embed(t.Context(), &llm.EmbeddingRequest{Texts: []string{"x"}}); llm.KindOf(err) != llm.KindInvalidArgument {
		t.Errorf("embed on a chat-only model: %v, want invalid_argument", err)
	}
}

func TestRerankRetriesAndSkipsNonRerankers(t *testing.T) {
	clk := newFakeClock()
	a := chatOnly{&fakeProvider{clock: clk}}
	b := &fakeProvider{clock: clk, steps: []step{{err: upErr(llm.KindUnavailable, 0)}, {}}}
	r, err := Build(map[string]Backend{"a": {Provider: a}, "b": {Provider: b}},
		Config{Routes: []RouteConfig{testRoute(StrategyPriority, tgt("a/m1"), tgt("b/m2"))}}, NewState(WithClock(clk)))
	if err != nil {
		t.Fatal(err)
	}
	req := &llm.RerankRequest{Query: "q", Documents: []llm.RerankDocument{{Text: "d"}}}
	p, _ := r.Plan("r", EstimateRerank(req))
	resp, res, err := p.Rerank(t.Context(), req)
	if err != nil || res.Target.Name() != "b/m2" || res.Attempts != 2 || resp.Model != "m2" {
		t.Errorf("rerank: %v by %s in %d attempts, want b/m2 in 2 (one retry)", err, res.Target.Name(), res.Attempts)
	}
	if req.Model != "" {
		t.Errorf("the request was modified: model %q", req.Model)
	}
	p, _ = r.Plan("a/m1", Estimate{})
	if _, _, err := p.Rerank(t.Context(), req); llm.KindOf(err) != llm.KindInvalidArgument {
		t.Errorf("rerank on a chat-only model: %v, want invalid_argument", err)
	}
}

func TestEstimateRerank(t *testing.T) {
	req := &llm.RerankRequest{Query: "abcd", Documents: []llm.RerankDocument{{Text: "efgh"}, {Fields: map[string]string{"t": "x"}, Keys: []string{"t"}}}}
	// (4+4) + (4+len("t: x")=4) = 16 characters: 4 tokens.
	if got := EstimateRerank(req); got.PromptTokens != 4 || got.MaxTokens != -1 {
		t.Errorf("EstimateRerank = %+v, want 4 prompt tokens and no completion", got)
	}
}

func TestStateSurvivesRebuild(t *testing.T) {
	e := newEnv(t, nil, Config{}, map[string][]step{"a/m1": {{latency: 7 * time.Millisecond}}})
	if _, err := e.chat(t, t.Context(), "a/m1"); err != nil {
		t.Fatal(err)
	}
	backends := map[string]Backend{"a": {Provider: e.provs["a/m1"], Models: []string{"m1"}, KeyID: "k-a"}}
	r2, err := Build(backends, Config{Routes: []RouteConfig{testRoute(StrategyLatency, tgt("a/m1"))}}, e.r.State())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := r2.Plan("r", Estimate{})
	if want := "strategy=latency; chosen=a/m1; candidates=a/m1:7.0ms"; p.Decision() != want {
		t.Errorf("decision after rebuild = %s, want %s", p.Decision(), want)
	}
}

func TestConfigValidate(t *testing.T) {
	models := map[string][]string{"a": {"m1"}, "b": nil}
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"valid", Config{Routes: []RouteConfig{testRoute(StrategyCost, tgt("a/m1"), tgt("b/any"))}, Aliases: map[string]string{"x": "a/m1"}}, ""},
		{"unknown strategy", Config{Routes: []RouteConfig{testRoute("fastest", tgt("a/m1"))}}, "unknown strategy"},
		{"no targets", Config{Routes: []RouteConfig{{Name: "r"}}}, "at least one target"},
		{"undeclared model", Config{Routes: []RouteConfig{testRoute("", tgt("a/m9"))}}, `does not list model "m9"`},
		{"unknown provider", Config{Routes: []RouteConfig{testRoute("", tgt("z/m1"))}}, "unknown provider"},
		{"name with slash", Config{Routes: []RouteConfig{{Name: "a/b", Targets: []TargetConfig{tgt("a/m1")}}}}, "must not contain '/'"},
		{"route and alias share a name", Config{Routes: []RouteConfig{testRoute("", tgt("a/m1"))}, Aliases: map[string]string{"r": "a/m1"}}, "also an alias"},
		{"negative weight", Config{Routes: []RouteConfig{testRoute("", TargetConfig{Model: "a/m1", Weight: -1})}}, "weight"},
		{"multiplier below 1", Config{Routes: []RouteConfig{{Name: "r", Targets: []TargetConfig{tgt("a/m1")}, Retry: RetryConfig{Multiplier: 0.5}}}}, "multiplier"},
		{"error rate above 1", Config{Routes: []RouteConfig{{Name: "r", Targets: []TargetConfig{tgt("a/m1")}, Breaker: BreakerConfig{ErrorRate: 2}}}}, "error_rate"},
		{"price of an unknown model", Config{Prices: map[string]PriceConfig{"a/m9": {}}}, "prices"},
		{"provider retry", Config{ProviderRetry: map[string]RetryConfig{"a": {InitialBackoff: time.Second}}}, ""},
		{"provider retry of an unknown provider", Config{ProviderRetry: map[string]RetryConfig{"z": {}}}, `providers (z).retry: unknown provider "z"`},
		{"provider retry multiplier below 1", Config{ProviderRetry: map[string]RetryConfig{"a": {Multiplier: 0.5}}}, "providers (a).retry.multiplier"},
		{"provider retry negative max_retries", Config{ProviderRetry: map[string]RetryConfig{"b": {MaxRetries: new(-1)}}}, "providers (b).retry.max_retries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate(models)
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}

func TestEstimateChat(t *testing.T) {
	req := &llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", strings.Repeat("x", 401))}, MaxTokens: llm.Ptr(int32(64))}
	if got := EstimateChat(req); got != (Estimate{PromptTokens: 101, MaxTokens: 64}) {
		t.Errorf("EstimateChat = %+v, want 101 prompt tokens, 64 max", got)
	}
}

func TestModelsAndResolve(t *testing.T) {
	e := newEnv(t, nil, Config{Routes: []RouteConfig{testRoute(StrategyPriority, tgt("b/m2"), tgt("a/m1"))}, Aliases: map[string]string{"x": "c/m3"}}, nil)
	m, ok := e.r.Model("r")
	if !ok || m.Target != "b/m2,a/m1" || m.OwnedBy != "switchyard" {
		t.Errorf("Model(r) = %+v %v", m, ok)
	}
	if tg, err := e.r.Resolve("x"); err != nil || tg.Name() != "c/m3" {
		t.Errorf("Resolve(x) = %v %v", tg.Name(), err)
	}
	if _, err := e.r.Plan("nope", Estimate{}); llm.KindOf(err) != llm.KindNotFound {
		t.Errorf("Plan(nope) = %v, want not_found", err)
	}
}

// TestPinnedRetries: a pinned "provider/model" (and an alias) is retried on that target only,
// under its provider's retry policy (DESIGN.md's by default), never fallen back.
func TestPinnedRetries(t *testing.T) {
	fail := func(k llm.Kind) []step { return []step{{err: upErr(k, 0)}} }
	one := 1
	cases := []struct {
		name       string
		model      string // default a/m1
		a          []step
		retry      map[string]RetryConfig
		aliases    map[string]string
		deadline   time.Duration
		wantA      int
		wantSleeps []time.Duration
		wantKind   llm.Kind // 0: success
	}{
		{name: "429 then 200: one retry", a: []step{{err: upErr(llm.KindRateLimited, 0)}, {}}, wantA: 2,
			wantSleeps: []time.Duration{500 * time.Millisecond}},
		{name: "503 until the retries run out: DESIGN's 3 retries, no fallback", a: fail(llm.KindUnavailable), wantA: 4,
			wantSleeps: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, wantKind: llm.KindUnavailable},
		{name: "Retry-After honoured", a: []step{{err: upErr(llm.KindRateLimited, 7*time.Second)}, {}}, wantA: 2,
			wantSleeps: []time.Duration{7 * time.Second}},
		{name: "400 is not retried", a: fail(llm.KindInvalidArgument), wantA: 1, wantKind: llm.KindInvalidArgument},
		{name: "billing quota is not retried", a: fail(llm.KindQuotaExceeded), wantA: 1, wantKind: llm.KindQuotaExceeded},
		{name: "401 from the upstream is not retried", a: fail(llm.KindUnauthenticated), wantA: 1, wantKind: llm.KindUnauthenticated},
		{name: "a backoff that would pass the deadline is not started", a: fail(llm.KindUpstream), deadline: 2500 * time.Millisecond,
			wantA: 3, wantSleeps: []time.Duration{500 * time.Millisecond, time.Second}, wantKind: llm.KindUpstream},
		{name: "provider max_retries 0: one attempt", a: fail(llm.KindUnavailable),
			retry: map[string]RetryConfig{"a": {MaxRetries: new(int)}}, wantA: 1, wantKind: llm.KindUnavailable},
		{name: "provider policy: 1 retry after at most 100ms", a: fail(llm.KindUnavailable),
			retry: map[string]RetryConfig{"a": {MaxRetries: &one, InitialBackoff: 100 * time.Millisecond}},
			wantA: 2, wantSleeps: []time.Duration{50 * time.Millisecond}, wantKind: llm.KindUnavailable},
		{name: "another provider's policy does not apply", a: []step{{err: upErr(llm.KindRateLimited, 0)}, {}},
			retry: map[string]RetryConfig{"b": {MaxRetries: new(int)}}, wantA: 2, wantSleeps: []time.Duration{500 * time.Millisecond}},
		{name: "an alias takes its provider's policy", model: "x", aliases: map[string]string{"x": "a/m1"}, a: fail(llm.KindUnavailable),
			retry: map[string]RetryConfig{"a": {MaxRetries: &one}}, wantA: 2, wantSleeps: []time.Duration{500 * time.Millisecond},
			wantKind: llm.KindUnavailable},
		{name: "an alias without one gets DESIGN's default", model: "x", aliases: map[string]string{"x": "a/m1"},
			a: []step{{err: upErr(llm.KindUpstream, 0)}, {err: upErr(llm.KindUpstream, 0)}, {}}, wantA: 3,
			wantSleeps: []time.Duration{500 * time.Millisecond, time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil, Config{ProviderRetry: c.retry, Aliases: c.aliases}, map[string][]step{"a/m1": c.a})
			ctx := t.Context()
			if c.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, e.clock.Now().Add(c.deadline))
				defer cancel()
			}
			model := c.model
			if model == "" {
				model = "a/m1"
			}
			res, err := e.chat(t, ctx, model)
			if llm.KindOf(err) != c.wantKind || (c.wantKind == 0) != (err == nil) {
				t.Errorf("err = %v, want kind %v", err, c.wantKind)
			}
			if e.calls("a/m1") != c.wantA || res.Attempts != c.wantA || res.Fallbacks != 0 {
				t.Errorf("calls %d, attempts %d, fallbacks %d; want %d, %d, 0", e.calls("a/m1"), res.Attempts, res.Fallbacks, c.wantA, c.wantA)
			}
			if e.calls("b/m2")+e.calls("c/m3") != 0 {
				t.Errorf("another target was called")
			}
			if got := e.clock.Sleeps(); !slices.Equal(got, c.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", got, c.wantSleeps)
			}
		})
	}
}

func TestPinnedStreamRetries(t *testing.T) {
	cases := []struct {
		name       string
		a          []step
		wantA      int
		wantMidErr bool
	}{
		{name: "an error before the first chunk is retried", a: []step{{err: upErr(llm.KindRateLimited, 0)}, {}}, wantA: 2},
		{name: "an error after the first chunk ends the stream, no retry",
			a: []step{{midErr: upErr(llm.KindUnavailable, 0)}, {}}, wantA: 1, wantMidErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil, Config{}, map[string][]step{"a/m1": c.a})
			p, _ := e.r.Plan("a/m1", Estimate{})
			s, res, err := p.ChatStream(t.Context(), &llm.ChatRequest{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if ch, err := s.Recv(); err != nil || ch == nil {
				t.Fatalf("first Recv = %v, %v", ch, err)
			}
			_, err = s.Recv()
			if c.wantMidErr != !errors.Is(err, io.EOF) {
				t.Errorf("second Recv err = %v, want mid-stream error %v", err, c.wantMidErr)
			}
			if e.calls("a/m1") != c.wantA || res.Attempts != c.wantA {
				t.Errorf("calls %d, attempts %d; want %d", e.calls("a/m1"), res.Attempts, c.wantA)
			}
		})
	}
}

func TestPinnedBreaker(t *testing.T) {
	four := 4
	e := newEnv(t, nil, Config{ProviderRetry: map[string]RetryConfig{"a": {MaxRetries: &four}}},
		map[string][]step{"a/m1": {{err: upErr(llm.KindUnavailable, 0)}}})
	// Five failures in a row (1 attempt + 4 retries) open a's breaker (default: 5 consecutive).
	if res, err := e.chat(t, t.Context(), "a/m1"); llm.KindOf(err) != llm.KindUnavailable || res.Attempts != 5 {
		t.Fatalf("first request: %v after %d attempts, want unavailable after 5", err, res.Attempts)
	}
	res, err := e.chat(t, t.Context(), "a/m1")
	var le *llm.Error
	if !errors.As(err, &le) || le.Code != "circuit_open" || res.Attempts != 0 || e.calls("a/m1") != 5 {
		t.Errorf("breaker open: %v after %d attempts (%d calls); want circuit_open, no attempt", err, res.Attempts, e.calls("a/m1"))
	}
}
