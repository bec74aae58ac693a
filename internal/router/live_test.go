package router

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard/switchyard/internal/llm"
)

// echoProvider answers with its own name, or fails with err when err is set.
type echoProvider struct {
	name  string
	calls atomic.Int32
	mu    sync.Mutex
	err   error
}

func (p *echoProvider) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *echoProvider) Chat(_ context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	p.calls.Add(1)
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	text := p.name
	return &llm.ChatResponse{Model: req.Model, Choices: []llm.Choice{{Content: &text}}}, nil
}

func (p *echoProvider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	resp, err := p.Chat(ctx, req)
	if err != nil {
		return nil, err
	}
	return &echoStream{text: *resp.Choices[0].Content}, nil
}

type echoStream struct {
	text string
	n    int
}

func (s *echoStream) Recv() (*llm.Chunk, error) {
	if s.n >= len(s.text) {
		return nil, io.EOF
	}
	c := s.text[s.n : s.n+1] // one byte per chunk
	s.n++
	return &llm.Chunk{Choices: []llm.ChunkChoice{{Content: &c}}}, nil
}

func (s *echoStream) Close() error { return nil }

// liveEnv is a router over echo providers a, b and c (models m1, m2, m3).
type liveEnv struct {
	clock  *fakeClock
	provs  map[string]*echoProvider
	r      *Router
	reader *sdkmetric.ManualReader
	shadow chan struct{} // one value per shadow call recorded
}

func newLiveEnv(t *testing.T, rnd Rand, cfg Config) *liveEnv {
	t.Helper()
	e := &liveEnv{clock: newFakeClock(), provs: map[string]*echoProvider{}, reader: sdkmetric.NewManualReader(),
		shadow: make(chan struct{}, 1000)}
	backends := map[string]Backend{}
	for _, pm := range []string{"a/m1", "b/m2", "c/m3"} {
		prov, model, _ := strings.Cut(pm, "/")
		p := &echoProvider{name: prov}
		e.provs[prov] = p
		backends[prov] = Backend{Provider: p, Models: []string{model}}
	}
	if rnd == nil {
		rnd = func() float64 { return 0.5 }
	}
	st := NewState(WithClock(e.clock), WithRand(rnd), WithLogger(slog.New(slog.DiscardHandler)),
		WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))))
	st.shadowDone = func() { e.shadow <- struct{}{} }
	r, err := Build(backends, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	return e
}

func (e *liveEnv) chat(t *testing.T, model string) (string, Result, error) {
	t.Helper()
	p, err := e.r.Plan(model, Estimate{})
	if err != nil {
		t.Fatal(err)
	}
	resp, res, err := p.Chat(t.Context(), &llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "hi")}})
	return responseText(resp), res, err
}

// counters sums the int64 counters named name by the value of attribute key.
func (e *liveEnv) counters(t *testing.T, name, key string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(key))
					out[v.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

// histogram returns the count and sum of the float64 histogram named name.
func (e *liveEnv) histogram(t *testing.T, name string) (count uint64, sum float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range d.DataPoints {
					count += dp.Count
					sum += dp.Sum
				}
			}
		}
	}
	return count, sum
}

// seqRand returns 0.005, 0.015, ..., 0.995 and starts over: of every 100 draws, exactly p fall
// below p/100.
func seqRand() Rand {
	var mu sync.Mutex
	i := 0
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		v := (float64(i%100) + 0.5) / 100
		i++
		return v
	}
}

// waitShadows waits until n shadow calls have been recorded, failing after a generous bound.
func (e *liveEnv) waitShadows(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-e.shadow:
		case <-time.After(5 * time.Second):
			t.Fatalf("fewer than %d shadow calls finished", n)
		}
	}
}

func TestShadow(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "blocking"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			rc := RouteConfig{Name: "r", Targets: []TargetConfig{tgt("a/m1")}, Shadow: &ShadowConfig{Model: "c/m3", Percent: 20}}
			e := newLiveEnv(t, seqRand(), Config{Routes: []RouteConfig{rc}})
			for range 100 {
				p, err := e.r.Plan("r", Estimate{})
				if err != nil {
					t.Fatal(err)
				}
				req := &llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "hi")}}
				var text string
				if stream {
					s, _, err := p.ChatStream(t.Context(), req)
					if err != nil {
						t.Fatal(err)
					}
					for {
						c, err := s.Recv()
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						text += *c.Choices[0].Content
					}
					_ = s.Close()
				} else {
					resp, _, err := p.Chat(t.Context(), req)
					if err != nil {
						t.Fatal(err)
					}
					text = responseText(resp)
				}
				if text != "a" {
					t.Fatalf("client got %q, want the primary's answer %q", text, "a")
				}
			}
			e.waitShadows(t, 20)
			if n := e.provs["c"].calls.Load(); n != 20 {
				t.Errorf("shadow target called %d times, want 20 (20%% of 100)", n)
			}
			if got := e.counters(t, MetricShadowRequests, "outcome"); got["success"] != 20 {
				t.Errorf("%s by outcome = %v, want success=20", MetricShadowRequests, got)
			}
			if n, _ := e.histogram(t, MetricShadowDuration); n != 20 {
				t.Errorf("%s count = %d, want 20", MetricShadowDuration, n)
			}
		})
	}
}

// TestShadowNotOnFailure: a failed primary answer is not mirrored, and a failing shadow does
// not change the client's answer.
func TestShadowFailures(t *testing.T) {
	rc := RouteConfig{Name: "r", Targets: []TargetConfig{tgt("a/m1")}, Retry: RetryConfig{MaxRetries: new(int)},
		Shadow: &ShadowConfig{Model: "c/m3", Percent: 100}}
	e := newLiveEnv(t, nil, Config{Routes: []RouteConfig{rc}})
	e.provs["c"].setErr(upErr(llm.KindUnavailable, 0))
	if text, _, err := e.chat(t, "r"); err != nil || text != "a" {
		t.Fatalf("with a failing shadow: %q, %v; want a's answer", text, err)
	}
	e.waitShadows(t, 1)
	e.provs["a"].setErr(upErr(llm.KindUnavailable, 0))
	if _, _, err := e.chat(t, "r"); err == nil {
		t.Fatal("primary failure not returned")
	}
	if got := e.counters(t, MetricShadowRequests, "outcome"); got["failure"] != 1 || got["success"] != 0 {
		t.Errorf("%s = %v, want one failure and no mirror of the failed primary", MetricShadowRequests, got)
	}
	if n := e.provs["c"].calls.Load(); n != 1 {
		t.Errorf("shadow called %d times, want 1", n)
	}
}

func TestCanaryRollback(t *testing.T) {
	rc := RouteConfig{Name: "r", Targets: []TargetConfig{tgt("a/m1")}, Retry: RetryConfig{MaxRetries: new(int)},
		Breaker: BreakerConfig{ConsecutiveFailures: -1, ErrorRate: -1},
		Canary:  &CanaryConfig{Model: "b/m2", Percent: 50, Window: time.Minute, MaxErrorRate: 0.5, MinRequests: 4}}
	e := newLiveEnv(t, seqRand(), Config{Routes: []RouteConfig{rc}})

	// A healthy canary gets its share.
	served := map[string]int{}
	for range 100 {
		text, res, err := e.chat(t, "r")
		if err != nil {
			t.Fatal(err)
		}
		served[text]++
		if text == "b" && !strings.HasPrefix(res.Decision, "strategy=priority; chosen=b/m2; candidates=b/m2:canary,a/m1:#1") {
			t.Errorf("canary decision %q", res.Decision)
		}
	}
	if served["a"] != 50 || served["b"] != 50 {
		t.Fatalf("healthy canary: served %v, want a=50 b=50", served)
	}

	// The candidate starts failing: clients still get answers (from the stable target) and the
	// canary is rolled back once its window has min_requests outcomes above the error rate.
	e.provs["b"].setErr(upErr(llm.KindUpstream, 0))
	e.clock.Advance(2 * time.Minute) // a fresh window: only failures from here
	before := e.provs["b"].calls.Load()
	for range 100 {
		text, _, err := e.chat(t, "r")
		if err != nil || text != "a" {
			t.Fatalf("during rollback: %q, %v; want a's answer", text, err)
		}
	}
	// Window: 4 failures of 4 > 0.5 trips at the 4th canary request.
	if n := e.provs["b"].calls.Load() - before; n != 4 {
		t.Errorf("candidate called %d times after it started failing, want 4 (min_requests)", n)
	}
	var cs *CanaryStatus
	for _, ri := range e.r.Routes() {
		if ri.Name == "r" {
			cs = ri.Canary
		}
	}
	if cs == nil || !cs.RolledBack || cs.WindowFailures != 4 {
		t.Fatalf("canary status %+v, want rolled back with 4 failures", cs)
	}
	if got := e.counters(t, MetricCanaryRollbacks, "route"); got["r"] != 1 {
		t.Errorf("%s = %v, want r=1", MetricCanaryRollbacks, got)
	}
	if got := e.counters(t, MetricCanaryRequests, "outcome"); got["success"] != 50 || got["failure"] != 4 {
		t.Errorf("%s = %v, want success=50 failure=4", MetricCanaryRequests, got)
	}

	// Rollback persists (a healthy candidate gets nothing) until a repoint builds a new router.
	e.provs["b"].setErr(nil)
	before = e.provs["b"].calls.Load()
	for range 10 {
		_, _, _ = e.chat(t, "r")
	}
	if n := e.provs["b"].calls.Load() - before; n != 0 {
		t.Errorf("rolled-back canary got %d requests", n)
	}
	nr, err := e.r.Repoint("r", []string{"a/m1"})
	if err != nil {
		t.Fatal(err)
	}
	e.r = nr
	for range 100 {
		_, _, _ = e.chat(t, "r")
	}
	if n := e.provs["b"].calls.Load() - before; n != 50 {
		t.Errorf("after repoint the canary got %d of 100 requests, want 50", n)
	}
}

func TestRepointAndSwitchTime(t *testing.T) {
	e := newLiveEnv(t, nil, Config{
		Aliases: map[string]string{"chat": "a/m1"},
		Routes:  []RouteConfig{{Name: "r", Strategy: StrategyWeighted, Targets: []TargetConfig{{Model: "a/m1", Weight: 3}}}},
	})
	if text, _, _ := e.chat(t, "chat"); text != "a" {
		t.Fatalf("before: %q", text)
	}
	cases := []struct {
		name    string
		route   string
		targets []string
		wantErr string
		check   func(t *testing.T, r *Router)
	}{
		{name: "alias to one target stays an alias", route: "chat", targets: []string{"b/m2"},
			check: func(t *testing.T, r *Router) {
				if ri := routeInfo(r, "chat"); !ri.Alias || ri.Targets[0].Name() != "b/m2" {
					t.Errorf("%+v", ri)
				}
			}},
		{name: "alias to two targets becomes a priority route", route: "chat", targets: []string{"b/m2", "c/m3"},
			check: func(t *testing.T, r *Router) {
				if ri := routeInfo(r, "chat"); ri.Alias || len(ri.Targets) != 2 || ri.Strategy != StrategyPriority {
					t.Errorf("%+v", ri)
				}
			}},
		{name: "route keeps strategy and known weights", route: "r", targets: []string{"b/m2", "a/m1"},
			check: func(t *testing.T, r *Router) {
				ri := routeInfo(r, "r")
				if ri.Strategy != StrategyWeighted || ri.Targets[0].Weight != 1 || ri.Targets[1].Weight != 3 {
					t.Errorf("%+v", ri)
				}
			}},
		{name: "new name", route: "fresh", targets: []string{"c/m3"},
			check: func(t *testing.T, r *Router) {
				if ri := routeInfo(r, "fresh"); !ri.Alias {
					t.Errorf("%+v", ri)
				}
			}},
		{name: "unknown provider", route: "chat", targets: []string{"zz/m"}, wantErr: "unknown provider"},
		{name: "undeclared model", route: "chat", targets: []string{"a/nope"}, wantErr: "does not list model"},
		{name: "no targets", route: "chat", wantErr: "at least one target"},
		{name: "name with a slash", route: "a/b", targets: []string{"a/m1"}, wantErr: "must not contain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nr, err := e.r.Repoint(c.route, c.targets)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if nr.State() != e.r.State() {
				t.Error("repointed router has a new State")
			}
			c.check(t, nr)
			if routeInfo(e.r, "chat").Targets[0].Name() != "a/m1" {
				t.Error("Repoint changed the original router")
			}
		})
	}

	// The switch time runs from the repoint to the first answer of the new target.
	nr, err := e.r.Repoint("chat", []string{"b/m2"})
	if err != nil {
		t.Fatal(err)
	}
	e.r = nr
	e.clock.Advance(250 * time.Millisecond)
	for range 3 {
		if text, _, _ := e.chat(t, "chat"); text != "b" {
			t.Fatalf("after repoint: %q, want b", text)
		}
	}
	if n, sum := e.histogram(t, MetricSwitchTime); n != 1 || sum != 0.25 {
		t.Errorf("%s: %d samples summing %vs, want one of 0.25s", MetricSwitchTime, n, sum)
	}
}

func routeInfo(r *Router, name string) RouteInfo {
	for _, ri := range r.Routes() {
		if ri.Name == name {
			return ri
		}
	}
	return RouteInfo{}
}

// TestReconfigureKeepsState: a reload keeps the live state (an open breaker stays open) and
// measures the switch time only for routes whose targets changed.
func TestReconfigureKeepsState(t *testing.T) {
	cfg := Config{Aliases: map[string]string{"x": "a/m1", "y": "c/m3"}}
	e := newLiveEnv(t, nil, cfg)
	e.provs["a"].setErr(upErr(llm.KindUnavailable, 0))
	for range 5 {
		p, _ := e.r.Plan("a/m1", Estimate{})
		_, _, _ = p.Chat(t.Context(), &llm.ChatRequest{})
	}
	nr, err := e.r.Reconfigure(e.r.backends, Config{Aliases: map[string]string{"x": "b/m2", "y": "c/m3"}})
	if err != nil {
		t.Fatal(err)
	}
	if nr.State() != e.r.State() {
		t.Fatal("new State")
	}
	open := false
	for _, st := range nr.State().Snapshot() {
		open = open || st.Key.Provider == "a" && st.Breaker == BreakerOpen
	}
	if !open {
		t.Error("a's open breaker did not survive the reload")
	}
	if nr.routes["x"].watch == nil || nr.routes["y"].watch != nil {
		t.Error("switch watch: want x (changed) only")
	}
	if _, err := e.r.Reconfigure(e.r.backends, Config{Aliases: map[string]string{"x": "zz/m"}}); err == nil {
		t.Error("invalid config accepted")
	}
}

// TestInFlight: executions hold the router's in-flight count until they end (streams: Close).
func TestInFlight(t *testing.T) {
	e := newLiveEnv(t, nil, Config{Aliases: map[string]string{"x": "a/m1"}})
	p, _ := e.r.Plan("x", Estimate{})
	s, _, err := p.ChatStream(t.Context(), &llm.ChatRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.r.InFlight(); n != 1 {
		t.Errorf("stream open: in flight %d, want 1", n)
	}
	_ = s.Close()
	_ = s.Close()
	if _, _, err := e.chat(t, "x"); err != nil {
		t.Fatal(err)
	}
	if n := e.r.InFlight(); n != 0 {
		t.Errorf("after close: in flight %d, want 0", n)
	}
}

func TestValidateLive(t *testing.T) {
	models := map[string][]string{"a": {"m1"}, "b": {"m2"}}
	base := func() RouteConfig { return RouteConfig{Name: "r", Targets: []TargetConfig{tgt("a/m1")}} }
	cases := []struct {
		name string
		mod  func(*RouteConfig)
		want string // "" for valid
	}{
		{"valid shadow and canary", func(r *RouteConfig) {
			r.Shadow = &ShadowConfig{Model: "b/m2", Percent: 5}
			r.Canary = &CanaryConfig{Model: "b/m2", Percent: 10, MaxErrorRate: 0.1}
		}, ""},
		{"shadow unknown provider", func(r *RouteConfig) { r.Shadow = &ShadowConfig{Model: "z/m", Percent: 5} }, "unknown provider"},
		{"shadow is a target", func(r *RouteConfig) { r.Shadow = &ShadowConfig{Model: "a/m1", Percent: 5} }, "already a target"},
		{"shadow percent", func(r *RouteConfig) { r.Shadow = &ShadowConfig{Model: "b/m2", Percent: 101} }, "shadow.percent"},
		{"shadow timeout", func(r *RouteConfig) { r.Shadow = &ShadowConfig{Model: "b/m2", Timeout: -1} }, "shadow.timeout"},
		{"canary undeclared model", func(r *RouteConfig) { r.Canary = &CanaryConfig{Model: "b/m9", Percent: 5} }, "does not list"},
		{"canary percent", func(r *RouteConfig) { r.Canary = &CanaryConfig{Model: "b/m2", Percent: -1} }, "canary.percent"},
		{"canary error rate", func(r *RouteConfig) { r.Canary = &CanaryConfig{Model: "b/m2", MaxErrorRate: 2} }, "max_error_rate"},
		{"canary window", func(r *RouteConfig) { r.Canary = &CanaryConfig{Model: "b/m2", Window: -time.Second} }, "must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			c.mod(&r)
			err := Config{Routes: []RouteConfig{r}}.Validate(models)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}
