package router

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// fakeClock is a Clock that only moves when told to: Sleep and Advance move it and fire the
// timers that come due. It records every Sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	c.Advance(d)
	return ctx.Err()
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock and runs due timers synchronously.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// step is what a fake provider does on one call.
type step struct {
	latency time.Duration // clock advance before answering (ttft for streams)
	err     error         // returned instead of an answer
	tail    time.Duration // streams: clock advance after the first chunk
	midErr  error         // streams: error after the first chunk instead of io.EOF
	block   bool          // wait for ctx to end, then fail with its error
	stall   bool          // streams: after the first chunk (and tail), wait for ctx to end
}

// fakeProvider answers from a script of steps, one per call (the last repeats).
type fakeProvider struct {
	name  string
	clock *fakeClock
	steps []step
	calls atomic.Int32
}

func (p *fakeProvider) next() step {
	n := int(p.calls.Add(1)) - 1
	if len(p.steps) == 0 {
		return step{}
	}
	return p.steps[min(n, len(p.steps)-1)]
}

func (p *fakeProvider) do(ctx context.Context, s step) error {
	if s.block {
		p.clock.Advance(s.latency)
		<-ctx.Done()
		return llm.Wrap(llm.KindCanceled, ctx.Err(), "canceled")
	}
	p.clock.Advance(s.latency)
	if ctx.Err() != nil {
		return llm.Wrap(llm.KindCanceled, ctx.Err(), "canceled")
	}
	return s.err
}

func (p *fakeProvider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	if err := p.do(ctx, p.next()); err != nil {
		return nil, err
	}
	return &llm.ChatResponse{Model: req.Model}, nil
}

func (p *fakeProvider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	s := p.next()
	return &fakeStream{p: p, s: s, ctx: ctx, model: req.Model}, nil
}

func (p *fakeProvider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if err := p.do(ctx, p.next()); err != nil {
		return nil, err
	}
	return &llm.EmbeddingResponse{Model: req.Model, Vectors: [][]float32{{1}}}, nil
}

func (p *fakeProvider) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	if err := p.do(ctx, p.next()); err != nil {
		return nil, err
	}
	return &llm.RerankResponse{Model: req.Model, Results: []llm.RerankResult{{Index: 0, RelevanceScore: 1}}}, nil
}

type fakeStream struct {
	p     *fakeProvider
	s     step
	ctx   context.Context
	model string
	n     int
}

func (f *fakeStream) Recv() (*llm.Chunk, error) {
	f.n++
	switch f.n {
	case 1:
		if err := f.p.do(f.ctx, f.s); err != nil {
			return nil, err
		}
		return &llm.Chunk{Model: f.model, Choices: []llm.ChunkChoice{{Content: llm.Ptr("hi")}}}, nil
	case 2:
		f.p.clock.Advance(f.s.tail)
		if f.s.stall {
			<-f.ctx.Done()
			return nil, llm.Wrap(llm.KindCanceled, f.ctx.Err(), "canceled")
		}
		if f.s.midErr != nil {
			return nil, f.s.midErr
		}
	}
	return nil, io.EOF
}

func (f *fakeStream) Close() error { return nil }

// chatOnly is a provider without Embed and Rerank.
type chatOnly struct{ llm.Provider }
