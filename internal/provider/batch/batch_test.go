package batch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// fakeUpstream is an llm.Provider and llm.Embedder whose vector for a text is the text's bytes
// (so a test can read back which input a vector belongs to) and whose usage is one token per
// byte. hook, when set, runs before answering (to block, fail or inspect the context).
type fakeUpstream struct {
	mu    sync.Mutex
	calls []*llm.EmbeddingRequest
	ctxs  []context.Context
	hook  func(ctx context.Context, req *llm.EmbeddingRequest) error
}

func (f *fakeUpstream) Chat(context.Context, *llm.ChatRequest) (*llm.ChatResponse, error) {
	return &llm.ChatResponse{ID: "chat"}, nil
}

func (f *fakeUpstream) ChatStream(context.Context, *llm.ChatRequest) (llm.Stream, error) {
	return nil, errors.New("no streams")
}

func (f *fakeUpstream) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.ctxs = append(f.ctxs, ctx)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, req); err != nil {
			return nil, err
		}
	}
	out := &llm.EmbeddingResponse{Model: req.Model + "-v1"}
	for _, t := range req.Texts {
		out.Vectors = append(out.Vectors, vec(t))
		out.PromptTokens += int32(len(t))
	}
	for _, t := range req.Tokens {
		v := make([]float32, len(t))
		for i, x := range t {
			v[i] = float32(x)
		}
		out.Vectors = append(out.Vectors, v)
		out.PromptTokens += int32(len(t))
	}
	return out, nil
}

func (f *fakeUpstream) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func vec(t string) []float32 {
	v := make([]float32, len(t))
	for i := range len(t) {
		v[i] = float32(t[i])
	}
	return v
}

func text(v []float32) string {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return string(b)
}

// fakeClock collects the window timers; fire runs them.
type fakeClock struct {
	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{d: d, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// fire runs every timer not stopped or fired yet and returns how many ran.
func (c *fakeClock) fire() int {
	c.mu.Lock()
	var run []func()
	for _, t := range c.timers {
		if !t.stopped {
			t.stopped = true
			run = append(run, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range run {
		f()
	}
	return len(run)
}

func (c *fakeClock) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type tenantKey struct{}

// newTest wraps up with cfg, a fake clock, a joined signal and the tenant from tenantKey.
func newTest(t *testing.T, up *fakeUpstream, cfg Config) (*Provider, *fakeClock, chan struct{}) {
	t.Helper()
	p, err := Wrap(up, cfg, func(ctx context.Context) string { s, _ := ctx.Value(tenantKey{}).(string); return s })
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	p.afterFunc = clk.afterFunc
	joined := make(chan struct{}, 64)
	p.joined = func() { joined <- struct{}{} }
	return p, clk, joined
}

type result struct {
	resp *llm.EmbeddingResponse
	err  error
}

// embedAsync calls p.Embed on a goroutine and returns the channel of its result.
func embedAsync(ctx context.Context, p *Provider, req *llm.EmbeddingRequest) chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := p.Embed(ctx, req)
		ch <- result{r, err}
	}()
	return ch
}

func waitJoined(t *testing.T, joined chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-joined:
		case <-time.After(10 * time.Second):
			t.Fatal("callers did not join")
		}
	}
}

func get(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return result{}
	}
}

func texts(r *llm.EmbeddingResponse) []string {
	var out []string
	for _, v := range r.Vectors {
		out = append(out, text(v))
	}
	return out
}

func TestMergesWithinWindowAndSplitsBack(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{})
	reqs := [][]string{{"aaaa"}, {"bbbbbbbb", "cc"}, {"dddddddddddddddddddd"}}
	var chs []chan result
	for _, in := range reqs {
		chs = append(chs, embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: in}))
	}
	waitJoined(t, joined, len(reqs))
	if up.callCount() != 0 {
		t.Fatal("sent before the window ended")
	}
	if clk.count() != 1 || clk.timers[0].d != DefaultWindow {
		t.Fatalf("want one window timer of %s, got %d", DefaultWindow, clk.count())
	}
	clk.fire()
	var sum int32
	for i, ch := range chs {
		r := get(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := texts(r.resp); !slices.Equal(got, reqs[i]) {
			t.Errorf("caller %d got vectors of %q, want %q", i, got, reqs[i])
		}
		if !r.resp.UsageEstimated || r.resp.Model != "m-v1" {
			t.Errorf("caller %d: estimated %v model %q", i, r.resp.UsageEstimated, r.resp.Model)
		}
		sum += r.resp.PromptTokens
	}
	if up.callCount() != 1 || len(up.calls[0].Texts) != 4 {
		t.Fatalf("want one upstream call with 4 inputs, got %d calls", up.callCount())
	}
	if sum != 34 {
		t.Errorf("usage shares sum to %d, want the upstream's 34", sum)
	}
}

func TestMaxBatchSendsAtOnce(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{MaxBatch: 3})
	var chs []chan result
	for i := range 4 {
		chs = append(chs, embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{fmt.Sprint("t", i)}}))
		waitJoined(t, joined, 1)
	}
	for _, ch := range chs[:3] {
		if r := get(t, ch); r.err != nil || len(r.resp.Vectors) != 1 {
			t.Fatalf("%v %v", r.resp, r.err)
		}
	}
	if up.callCount() != 1 || len(up.calls[0].Texts) != 3 {
		t.Fatalf("want one call of 3, got %d calls", up.callCount())
	}
	if clk.count() != 2 || !clk.timers[0].stopped {
		t.Fatalf("the full batch's timer should be stopped and a second one started: %d timers", clk.count())
	}
	// The fourth waits for its window, then calls alone with its own request and context.
	clk.fire()
	r := get(t, chs[3])
	if r.err != nil || r.resp.UsageEstimated || r.resp.PromptTokens != 2 {
		t.Fatalf("lone caller: %+v %v", r.resp, r.err)
	}
	if up.callCount() != 2 || up.calls[1].Texts[0] != "t3" {
		t.Fatalf("calls %d", up.callCount())
	}
}

func TestLoneCallerUsesItsOwnRequestAndContext(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{})
	ctx := context.WithValue(t.Context(), tenantKey{}, "acme")
	req := &llm.EmbeddingRequest{Model: "m", Texts: []string{"x"}}
	ch := embedAsync(ctx, p, req)
	waitJoined(t, joined, 1)
	clk.fire()
	if r := get(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
	if up.calls[0] != req || up.ctxs[0] != ctx {
		t.Error("a batch of one should be sent as the caller's own request on its own context")
	}
}

func TestLargeRequestsAreNotBatched(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, _ := newTest(t, up, Config{MaxInputs: 2, MaxTokens: 10})
	for _, in := range [][]string{{"a", "b", "c"}, {strings.Repeat("x", 41)}} {
		r, err := p.Embed(t.Context(), &llm.EmbeddingRequest{Model: "m", Texts: in})
		if err != nil || len(r.Vectors) != len(in) {
			t.Fatal(r, err)
		}
	}
	if clk.count() != 0 || up.callCount() != 2 {
		t.Fatalf("timers %d calls %d: large requests should go straight upstream", clk.count(), up.callCount())
	}
}

func TestBatchSentBeforeItWouldExceedLimits(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{MaxInputs: 3})
	a := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a1", "a2"}})
	waitJoined(t, joined, 1)
	b := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"b1", "b2"}})
	waitJoined(t, joined, 1)
	// a's batch (2 inputs) could not take b's 2: a was sent alone, b opened a new batch.
	if r := get(t, a); r.err != nil || !slices.Equal(texts(r.resp), []string{"a1", "a2"}) {
		t.Fatal(r.err)
	}
	clk.fire()
	if r := get(t, b); r.err != nil || !slices.Equal(texts(r.resp), []string{"b1", "b2"}) {
		t.Fatal(r.err)
	}
	if up.callCount() != 2 {
		t.Fatalf("calls %d", up.callCount())
	}
}

func TestOnlyIdenticalRequestsMerge(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{MaxBatch: 2})
	acme := context.WithValue(t.Context(), tenantKey{}, "acme")
	other := context.WithValue(t.Context(), tenantKey{}, "other")
	type call struct {
		ctx context.Context
		req *llm.EmbeddingRequest
	}
	calls := []call{
		{acme, &llm.EmbeddingRequest{Model: "m", Texts: []string{"base"}}},
		{other, &llm.EmbeddingRequest{Model: "m", Texts: []string{"tenant"}}},
		{acme, &llm.EmbeddingRequest{Model: "n", Texts: []string{"model"}}},
		{acme, &llm.EmbeddingRequest{Model: "m", Texts: []string{"dims"}, Dimensions: llm.Ptr[int32](256)}},
		{acme, &llm.EmbeddingRequest{Model: "m", Texts: []string{"user"}, User: "u1"}},
		{acme, &llm.EmbeddingRequest{Model: "m", Tokens: [][]int32{{1, 2}}}},
	}
	var chs []chan result
	for _, c := range calls {
		chs = append(chs, embedAsync(c.ctx, p, c.req))
	}
	waitJoined(t, joined, len(calls))
	if clk.count() != len(calls) {
		t.Fatalf("want %d separate batches, got %d", len(calls), clk.count())
	}
	// Their twins join each one's batch (max 2) and send it.
	var twins []chan result
	for _, c := range calls {
		r := *c.req
		twins = append(twins, embedAsync(c.ctx, p, &r))
	}
	for i := range calls {
		a, b := get(t, chs[i]), get(t, twins[i])
		if a.err != nil || b.err != nil {
			t.Fatal(a.err, b.err)
		}
	}
	if up.callCount() != len(calls) {
		t.Fatalf("want %d merged calls, got %d", len(calls), up.callCount())
	}
	for i, got := range up.calls {
		n := len(got.Texts) + len(got.Tokens)
		if n != 2 {
			t.Errorf("call %d merged %d inputs, want 2", i, n)
		}
	}
}

func TestCallerLeavingBeforeSendIsRemoved(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{})
	a := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a"}})
	ctx, cancel := context.WithCancel(t.Context())
	b := embedAsync(ctx, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"b"}})
	c := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"c"}})
	waitJoined(t, joined, 3)
	cancel()
	if r := get(t, b); llm.KindOf(r.err) != llm.KindCanceled {
		t.Fatalf("cancelled caller: %v", r.err)
	}
	clk.fire()
	for _, ch := range []chan result{a, c} {
		if r := get(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if up.callCount() != 1 || len(up.calls[0].Texts) != 2 || slices.Contains(up.calls[0].Texts, "b") {
		t.Fatalf("upstream got %v", up.calls[0].Texts)
	}
}

func TestAllLeavingBeforeSendLeavesNothing(t *testing.T) {
	up := &fakeUpstream{}
	p, clk, joined := newTest(t, up, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	a := embedAsync(ctx, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a"}})
	waitJoined(t, joined, 1)
	cancel()
	get(t, a)
	if clk.fire() != 0 || up.callCount() != 0 {
		t.Fatal("an emptied batch should stop its timer and never be sent")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.open) != 0 {
		t.Fatal("emptied batch still open")
	}
}

func TestCancellationAfterSend(t *testing.T) {
	up := &fakeUpstream{}
	started := make(chan context.Context, 1)
	up.hook = func(ctx context.Context, _ *llm.EmbeddingRequest) error {
		started <- ctx
		<-ctx.Done()
		return llm.AsError(ctx.Err())
	}
	p, _, joined := newTest(t, up, Config{MaxBatch: 2})
	ctxA, cancelA := context.WithCancel(t.Context())
	ctxB, cancelB := context.WithCancel(t.Context())
	a := embedAsync(ctxA, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a"}})
	waitJoined(t, joined, 1)
	b := embedAsync(ctxB, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"b"}})
	var upCtx context.Context
	select {
	case upCtx = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("not sent")
	}
	cancelA()
	if r := get(t, a); llm.KindOf(r.err) != llm.KindCanceled {
		t.Fatalf("a: %v", r.err)
	}
	if upCtx.Err() != nil {
		t.Fatal("one caller leaving cancelled the call of the others")
	}
	cancelB()
	if r := get(t, b); llm.KindOf(r.err) != llm.KindCanceled {
		t.Fatalf("b: %v", r.err)
	}
	select {
	case <-upCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream call was not cancelled when every caller left")
	}
}

func TestMergedDeadlineIsTheLatest(t *testing.T) {
	for _, c := range []struct {
		name      string
		deadlines []time.Duration // 0: none
		want      time.Duration   // 0: none
	}{
		{"latest", []time.Duration{time.Hour, 3 * time.Hour, 2 * time.Hour}, 3 * time.Hour},
		{"one without", []time.Duration{time.Hour, 0}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := &fakeUpstream{}
			p, _, joined := newTest(t, up, Config{MaxBatch: len(c.deadlines)})
			base := time.Now()
			var chs []chan result
			for i, d := range c.deadlines {
				ctx := t.Context()
				if d > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithDeadline(ctx, base.Add(d))
					defer cancel()
				}
				chs = append(chs, embedAsync(ctx, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{fmt.Sprint(i)}}))
				if i < len(c.deadlines)-1 {
					waitJoined(t, joined, 1)
				}
			}
			for _, ch := range chs {
				if r := get(t, ch); r.err != nil {
					t.Fatal(r.err)
				}
			}
			got, ok := up.ctxs[0].Deadline()
			switch {
			case c.want == 0 && ok:
				t.Errorf("merged call has deadline %v, want none", got)
			case c.want != 0 && (!ok || !got.Equal(base.Add(c.want))):
				t.Errorf("merged call deadline %v (%v), want %v", got, ok, base.Add(c.want))
			}
		})
	}
}

func TestServiceErrorGoesToEveryCaller(t *testing.T) {
	up := &fakeUpstream{hook: func(context.Context, *llm.EmbeddingRequest) error {
		return &llm.Error{Kind: llm.KindUnavailable, Message: "down", Provider: "up", RetryAfter: time.Second}
	}}
	p, _, joined := newTest(t, up, Config{MaxBatch: 2})
	a := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a"}})
	waitJoined(t, joined, 1)
	b := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"b"}})
	ra, rb := get(t, a), get(t, b)
	ea, eb := llm.AsError(ra.err), llm.AsError(rb.err)
	if ea == nil || eb == nil || ea.Kind != llm.KindUnavailable || eb.Kind != llm.KindUnavailable || ea.RetryAfter != time.Second {
		t.Fatalf("%v %v", ra.err, rb.err)
	}
	if ea == eb {
		t.Error("callers share one error value")
	}
	if up.callCount() != 1 {
		t.Errorf("a service error should not be retried here (the router retries): %d calls", up.callCount())
	}
}

func TestBadInputDoesNotPoisonOthers(t *testing.T) {
	up := &fakeUpstream{hook: func(_ context.Context, req *llm.EmbeddingRequest) error {
		if slices.Contains(req.Texts, "bad") {
			return &llm.Error{Kind: llm.KindInvalidArgument, Param: "input", Message: "input 'bad' is too long"}
		}
		return nil
	}}
	p, _, joined := newTest(t, up, Config{MaxBatch: 3})
	a := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"good1"}})
	waitJoined(t, joined, 1)
	b := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"bad"}})
	waitJoined(t, joined, 1)
	c := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"good2"}})
	for _, ch := range []chan result{a, c} {
		r := get(t, ch)
		if r.err != nil || r.resp.UsageEstimated {
			t.Fatalf("a good caller: %v (estimated %v)", r.err, r.resp != nil && r.resp.UsageEstimated)
		}
	}
	if r := get(t, b); llm.KindOf(r.err) != llm.KindInvalidArgument {
		t.Fatalf("bad caller: %v", r.err)
	}
	if up.callCount() != 4 {
		t.Errorf("want the merged call and three lone retries, got %d calls", up.callCount())
	}
}

func TestWrongVectorCountIsAnUpstreamError(t *testing.T) {
	up := &fakeUpstream{}
	p, _, joined := newTest(t, up, Config{MaxBatch: 2})
	inner := &shortEmbedder{up}
	p.emb = inner
	a := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a"}})
	waitJoined(t, joined, 1)
	b := embedAsync(t.Context(), p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"b"}})
	for _, ch := range []chan result{a, b} {
		if r := get(t, ch); llm.KindOf(r.err) != llm.KindUpstream {
			t.Fatalf("%v", r.err)
		}
	}
}

// shortEmbedder drops the last vector.
type shortEmbedder struct{ *fakeUpstream }

func (s *shortEmbedder) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	r, err := s.fakeUpstream.Embed(ctx, req)
	if err == nil {
		r.Vectors = r.Vectors[:len(r.Vectors)-1]
	}
	return r, err
}

func TestWarningsReachEveryCaller(t *testing.T) {
	up := &fakeUpstream{hook: func(ctx context.Context, _ *llm.EmbeddingRequest) error {
		llm.Warn(ctx, "user dropped")
		return nil
	}}
	p, _, joined := newTest(t, up, Config{MaxBatch: 2})
	ctxA, wa := llm.WithWarnings(t.Context())
	ctxB, wb := llm.WithWarnings(t.Context())
	a := embedAsync(ctxA, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"a"}})
	waitJoined(t, joined, 1)
	b := embedAsync(ctxB, p, &llm.EmbeddingRequest{Model: "m", Texts: []string{"b"}})
	get(t, a)
	get(t, b)
	if !slices.Equal(wa.List(), []string{"user dropped"}) || !slices.Equal(wb.List(), []string{"user dropped"}) {
		t.Fatalf("%v %v", wa.List(), wb.List())
	}
}

func TestChatPassesThrough(t *testing.T) {
	p, _, _ := newTest(t, &fakeUpstream{}, Config{})
	if r, err := p.Chat(t.Context(), &llm.ChatRequest{}); err != nil || r.ID != "chat" {
		t.Fatal(r, err)
	}
}

func TestWrapRefusesProvidersWithoutEmbeddings(t *testing.T) {
	type chatOnly struct{ llm.Provider }
	if _, err := Wrap(chatOnly{}, Config{}, nil); err == nil {
		t.Fatal("want an error")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{MaxBatch: 2, Window: time.Microsecond, MaxInputs: 1, MaxTokens: 1}, true},
		{Config{MaxBatch: 256, Window: 100 * time.Millisecond}, true},
		{Config{MaxBatch: 1}, false},
		{Config{MaxBatch: 257}, false},
		{Config{Window: -time.Millisecond}, false},
		{Config{Window: time.Second}, false},
		{Config{MaxInputs: -1}, false},
		{Config{MaxTokens: -1}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}

func TestSplit(t *testing.T) {
	ms := func(est ...int) []*member {
		var out []*member
		for _, e := range est {
			out = append(out, &member{est: e})
		}
		return out
	}
	for _, c := range []struct {
		total int32
		est   []int
		want  []int32
	}{
		{100, []int{1, 1, 2}, []int32{25, 25, 50}},
		{10, []int{1, 1, 1}, []int32{4, 3, 3}},
		{7, []int{0, 0}, []int32{4, 3}},
		{0, []int{5, 5}, []int32{0, 0}},
		{3, []int{1, 100}, []int32{0, 3}},
	} {
		got := split(c.total, ms(c.est...))
		if !slices.Equal(got, c.want) {
			t.Errorf("split(%d, %v) = %v, want %v", c.total, c.est, got, c.want)
		}
	}
}

// TestConcurrentCallersGetTheirOwnVectors runs many callers with random inputs on the real clock
// and checks each answer against its own inputs (run with -race).
func TestConcurrentCallersGetTheirOwnVectors(t *testing.T) {
	up := &fakeUpstream{}
	p, err := Wrap(up, Config{MaxBatch: 4, Window: 200 * time.Microsecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				n := 1 + rand.IntN(3)
				in := make([]string, n)
				for j := range in {
					in[j] = fmt.Sprintf("g%d-i%d-j%d", g, i, j)
				}
				ctx := t.Context()
				if i%7 == 3 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					cancel()
				}
				r, err := p.Embed(ctx, &llm.EmbeddingRequest{Model: "m", Texts: in})
				if ctx.Err() != nil {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if got := texts(r); !slices.Equal(got, in) {
					t.Errorf("got %v, want %v", got, in)
				}
			}
		})
	}
	wg.Wait()
	if c := up.callCount(); c >= 16*40 {
		t.Logf("no merging happened (%d calls); the machine is slow", c)
	}
}
