package router

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/llm"
)

// timeoutPolicy holds a route's timeouts; 0 means none.
type timeoutPolicy struct {
	total   time.Duration // the request until its answer (blocking) or first chunk (stream)
	attempt time.Duration // one attempt until its answer or first chunk
	idle    time.Duration // a committed stream's wait for each chunk after the first
}

// Span attributes set by the executor on the caller's current span.
const (
	AttrStrategy   = "switchyard.route.strategy"
	AttrChosen     = "switchyard.route.chosen"
	AttrCandidates = "switchyard.route.candidates"
	AttrAttempts   = "switchyard.route.attempts"
	AttrTarget     = "switchyard.route.target"
	AttrFallbacks  = "switchyard.route.fallbacks"
)

// Result says how a request was served, for response headers and logs.
type Result struct {
	// Target is the target that answered, or the last one tried when every attempt failed (zero
	// when none was tried).
	Target    Target
	Attempts  int    // upstream calls made
	Fallbacks int    // moves to the next candidate
	Decision  string // Plan.Decision
	// Warnings are the answering attempt's adapter warnings (parameters dropped or clamped).
	Warnings []string
}

// Chat answers req through the plan: attempts, retries and fallbacks as the route's policies
// say. req.Model is set per attempt on a copy; req itself is not modified.
func (p *Plan) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, Result, error) {
	p.enter()
	defer p.leave()
	var resp *llm.ChatResponse
	x, err := p.execute(ctx, func(ctx context.Context, t Target) error {
		r := *req
		r.Model = t.Model
		var err error
		resp, err = t.Provider.Chat(ctx, &r)
		return err
	}, nil)
	if err != nil {
		return nil, x.res, err
	}
	x.finish(nil)
	p.mirror(ctx, req, responseText(resp))
	return resp, x.res, nil
}

// Embed embeds req through the plan. Only candidates whose provider implements llm.Embedder are
// tried; with none, the answer is KindInvalidArgument.
func (p *Plan) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, Result, error) {
	return runCapable(ctx, p, "embeddings", func(ctx context.Context, e llm.Embedder, model string) (*llm.EmbeddingResponse, error) {
		r := *req
		r.Model = model
		return e.Embed(ctx, &r)
	})
}

// Rerank ranks req's documents through the plan, with the same retries, fallbacks and breakers
// as Embed. Only candidates whose provider implements llm.Reranker are tried; with none, the
// answer is KindInvalidArgument.
func (p *Plan) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, Result, error) {
	return runCapable(ctx, p, "rerank", func(ctx context.Context, r llm.Reranker, model string) (*llm.RerankResponse, error) {
		rr := *req
		rr.Model = model
		return r.Rerank(ctx, &rr)
	})
}

// runCapable runs call through the plan's candidates whose provider implements C (an optional
// capability such as llm.Embedder), with the plan's retries, fallbacks and breakers; with no
// such candidate the answer is KindInvalidArgument naming what is unsupported.
func runCapable[C, R any](ctx context.Context, p *Plan, what string, call func(context.Context, C, string) (R, error)) (R, Result, error) {
	var zero R
	name := p.Route
	kept := p.Candidates[:0:0]
	for _, c := range p.Candidates {
		if name == "" {
			name = c.Target.Name()
		}
		if _, ok := c.Target.Provider.(C); ok {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		return zero, Result{Decision: p.Decision()}, &llm.Error{Kind: llm.KindInvalidArgument, Param: "model",
			Message: "model " + name + " does not support " + what}
	}
	p.Candidates = kept
	p.enter()
	defer p.leave()
	var resp R
	x, err := p.execute(ctx, func(ctx context.Context, t Target) error {
		var err error
		resp, err = call(ctx, t.Provider.(C), t.Model)
		return err
	}, nil)
	if err != nil {
		return zero, x.res, err
	}
	x.finish(nil)
	return resp, x.res, nil
}

// ChatStream starts a streamed answer through the plan. An attempt is ChatStream plus the first
// Recv: failures up to there are retried and fallen back like blocking calls; once a first chunk
// (or a clean end) has arrived the stream is committed and returned, and an error after that
// ends it (Recv returns it; nothing is retried). The caller must Close the stream.
func (p *Plan) ChatStream(ctx context.Context, req *llm.ChatRequest) (*Stream, Result, error) {
	p.enter()
	s := &Stream{leave: p.leave}
	if p.shadow != nil {
		s.text = &streamText{req: req}
	}
	x, err := p.execute(ctx, func(ctx context.Context, t Target) error {
		r := *req
		r.Model = t.Model
		up, err := t.Provider.ChatStream(ctx, &r)
		if err != nil {
			return err
		}
		c, err := up.Recv()
		switch {
		case errors.Is(err, io.EOF):
			s.up, s.first, s.eof = up, nil, true
			return nil
		case err != nil:
			_ = up.Close()
			return err
		}
		s.up, s.first, s.eof = up, c, false
		return nil
	}, func() {
		if s.up != nil {
			_ = s.up.Close()
			s.up = nil
		}
	})
	if err != nil {
		p.leave()
		return nil, x.res, err
	}
	s.x = x
	return s, x.res, nil
}

// Stream is a committed stream: it yields the first chunk the executor already received, then
// the upstream's chunks. When it ends (io.EOF, an error, or Close) it reports to the target's
// live state. Used by one goroutine at a time; Close may be called more than once.
type Stream struct {
	up    llm.Stream
	first *llm.Chunk
	eof   bool // the upstream ended cleanly before any chunk
	x     *execution

	firstDone bool
	endOnce   sync.Once
	leave     func() // ends the plan's in-flight count, once
	leaveOnce sync.Once
	text      *streamText // collected for the shadow comparison; nil without shadow
}

// Recv returns the next chunk, io.EOF at the end, or the error that broke the stream.
func (s *Stream) Recv() (*llm.Chunk, error) {
	if !s.firstDone {
		s.firstDone = true
		if !s.eof {
			s.text.add(s.first)
			return s.first, nil
		}
		s.end(io.EOF)
		return nil, io.EOF
	}
	c, err := s.recvWithin(s.x.plan.timeout.idle)
	if err != nil {
		s.end(err)
	} else {
		s.text.add(c)
	}
	return c, err
}

// recvWithin is the upstream's Recv, bounded by idle (0: unbounded): when no chunk arrives in
// time the attempt's context is cancelled, which ends the upstream call and closes its
// connection, and the stream breaks with a KindTimeout error.
func (s *Stream) recvWithin(idle time.Duration) (*llm.Chunk, error) {
	if idle <= 0 {
		return s.up.Recv()
	}
	var fired atomic.Bool
	stop := s.x.plan.state.clock.AfterFunc(idle, func() { fired.Store(true); s.x.release() })
	c, err := s.up.Recv()
	if !stop() && fired.Load() && err != nil && !errors.Is(err, io.EOF) {
		err = &llm.Error{Kind: llm.KindTimeout, Provider: s.x.res.Target.ProviderName,
			Message: "the upstream stream stalled: no chunk for " + idle.String(), Err: err}
	}
	return c, err
}

// Close releases the upstream stream and the request's context.
func (s *Stream) Close() error {
	s.end(nil)
	err := s.up.Close()
	s.x.release()
	if s.leave != nil {
		s.leaveOnce.Do(s.leave)
	}
	return err
}

// end reports the stream's outcome once: io.EOF completes it, another error is a failure of the
// target, nil (closed early) says nothing.
func (s *Stream) end(err error) {
	s.endOnce.Do(func() {
		s.x.finish(err)
		if s.text != nil && errors.Is(err, io.EOF) {
			s.x.plan.mirror(s.x.ctx, s.text.req, s.text.b.String())
		}
	})
}

// execution is one run of a plan.
type execution struct {
	plan *Plan
	res  Result
	// The committed attempt.
	ts      *targetState
	start   time.Time
	ctx     context.Context // the caller's context
	release func()          // cancels the committed attempt's and the request's contexts
}

// finish records the end of a committed call: err nil for a completed blocking call or a
// stream closed early (neutral), io.EOF for a completed stream, else the error that broke it.
func (x *execution) finish(err error) {
	st := x.plan.state
	switch {
	case err == nil && x.release == nil, errors.Is(err, io.EOF): // a blocking call is released below
		x.ts.recordTotal(st.clock.Now().Sub(x.start))
	case err != nil && x.ctx.Err() == nil && classify(err) == outcomeFailure:
		x.ts.recordStreamFailure(st.clock.Now(), x.plan.breaker)
	}
	x.ts.inflight.Add(-1)
}

// attemptFunc makes one upstream call to t. It must honour ctx.
type attemptFunc func(ctx context.Context, t Target) error

// execute runs the plan's attempts until one succeeds, and returns the execution of the
// successful one. For a stream (discard not nil) the successful attempt's context stays live
// until x.release; discard undoes a successful attempt that is then abandoned (its attempt
// timeout fired just as it succeeded). For blocking calls the contexts are released before
// execute returns, and x.finish must be called on success.
func (p *Plan) execute(ctx context.Context, do attemptFunc, discard func()) (*execution, error) {
	st := p.state
	clock := st.clock
	x := &execution{plan: p, ctx: ctx, res: Result{Decision: p.Decision()}}
	defer p.annotate(ctx, &x.res)

	// The request's own context: the route's total timeout, until the answer.
	rctx, rcancel := context.WithCancel(ctx)
	var totalFired atomic.Bool
	stopTotal := func() bool { return false }
	deadline, hasDeadline := ctx.Deadline()
	if p.timeout.total > 0 {
		stopTotal = clock.AfterFunc(p.timeout.total, func() { totalFired.Store(true); rcancel() })
		if d := clock.Now().Add(p.timeout.total); !hasDeadline || d.Before(deadline) {
			deadline, hasDeadline = d, true
		}
	}
	fail := func(err error) (*execution, error) {
		stopTotal()
		rcancel()
		if totalFired.Load() && ctx.Err() == nil {
			err = &llm.Error{Kind: llm.KindTimeout, Provider: x.res.Target.ProviderName,
				Message: "the request timed out", Err: err}
		}
		return x, err
	}

	var lastErr error
	for i, c := range p.Candidates {
		t := c.Target
		ts := st.target(t.Key())
		retries := p.retry.maxRetries
		if sr, ok := t.Provider.(SelfRetrying); ok && sr.RetriesCalls() {
			retries = 0
		}
		for try := 0; ; try++ {
			if err := rctx.Err(); err != nil {
				return fail(ctxError(rctx, t, lastErr))
			}
			ok, probe := ts.allow(clock.Now(), p.breaker)
			if !ok {
				break // breaker open: fall back
			}
			x.res.Attempts++
			x.res.Target = t
			actx, acancel := context.WithCancel(rctx)
			actx, warnings := llm.WithWarnings(actx)
			var attemptFired atomic.Bool
			stopAttempt := func() bool { return false }
			if p.timeout.attempt > 0 {
				stopAttempt = clock.AfterFunc(p.timeout.attempt, func() { attemptFired.Store(true); acancel() })
			}
			ts.inflight.Add(1)
			start := clock.Now()
			err := do(actx, t)
			if !stopAttempt() && attemptFired.Load() && err == nil && discard != nil {
				discard() // the stream's context was cancelled as it committed
				err = context.Canceled
			}
			now := clock.Now()
			if err == nil && stopTotal() || err == nil && p.timeout.total == 0 {
				ts.record(now, outcomeSuccess, probe, p.breaker, now.Sub(start))
				p.observe(ctx, t, outcomeSuccess, now)
				x.res.Warnings = warnings.List()
				x.ts, x.start = ts, start
				if discard == nil { // blocking: the answer is in hand
					acancel()
					rcancel()
				} else {
					x.release = func() { acancel(); rcancel() }
				}
				return x, nil
			}
			if err == nil { // the total timeout fired as the attempt succeeded
				if discard != nil {
					discard()
				}
				err = context.Canceled
			}
			acancel()
			ts.inflight.Add(-1)
			if attemptFired.Load() && rctx.Err() == nil {
				err = &llm.Error{Kind: llm.KindTimeout, Provider: t.ProviderName,
					Message: "the upstream provider did not answer in time", Err: err}
			}
			if rctx.Err() != nil {
				ts.record(now, outcomeNeutral, probe, p.breaker, 0)
				return fail(ctxError(rctx, t, err))
			}
			ts.record(now, classify(err), probe, p.breaker, 0)
			p.observe(ctx, t, classify(err), now)
			lastErr = err
			kind := llm.KindOf(err)
			if !fallsBack(kind) {
				return fail(err)
			}
			if !kind.Info().Retryable || try >= retries {
				break
			}
			wait := p.retry.backoff(try+1, retryAfter(err), st.rand)
			if hasDeadline && !clock.Now().Add(wait).Before(deadline) {
				break // the retry could not finish in time: fall back now
			}
			if err := clock.Sleep(rctx, wait); err != nil {
				return fail(ctxError(rctx, t, lastErr))
			}
			st.retries.Add(ctx, 1, metric.WithAttributes(attribute.String("route", p.Route),
				attribute.String("provider", t.ProviderName), attribute.String("model", t.Model)))
		}
		if i+1 < len(p.Candidates) {
			x.res.Fallbacks++
			st.fallbacks.Add(ctx, 1, metric.WithAttributes(attribute.String("route", p.Route),
				attribute.String("from", t.Name()), attribute.String("to", p.Candidates[i+1].Target.Name())))
		}
	}
	if lastErr == nil {
		lastErr = &llm.Error{Kind: llm.KindUnavailable, Code: "circuit_open",
			Message: "no upstream is available for this model right now (circuit breaker open)"}
	}
	return fail(lastErr)
}

// annotate sets the routing attributes on ctx's span.
func (p *Plan) annotate(ctx context.Context, res *Result) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String(AttrStrategy, string(p.Strategy)),
		attribute.String(AttrCandidates, p.CandidatesString()),
		attribute.Int(AttrAttempts, res.Attempts),
		attribute.Int(AttrFallbacks, res.Fallbacks),
	}
	if c := p.Chosen(); c != nil {
		attrs = append(attrs, attribute.String(AttrChosen, c.Target.Name()))
	}
	if res.Target.Provider != nil {
		attrs = append(attrs, attribute.String(AttrTarget, res.Target.Name()))
	}
	span.SetAttributes(attrs...)
}

// ctxError is the error for a request whose context ended: the attempt's error when it already
// says so, else one made from the context's cause.
func ctxError(ctx context.Context, t Target, err error) error {
	if k := llm.KindOf(err); err != nil && (k == llm.KindCanceled || k == llm.KindTimeout) {
		return err
	}
	e := llm.AsError(context.Cause(ctx))
	e.Provider = t.ProviderName
	return e
}

// classify says what a failed attempt tells about its target: service and quota failures count
// against it; parameter, authentication and business errors, and a caller who went away, do not.
func classify(err error) outcome {
	if err == nil {
		return outcomeSuccess
	}
	k := llm.KindOf(err)
	switch k.Info().Class {
	case llm.ClassService:
		if k == llm.KindCanceled {
			return outcomeNeutral
		}
		return outcomeFailure
	case llm.ClassQuota:
		return outcomeFailure
	}
	return outcomeNeutral
}

// fallsBack reports whether another target may succeed where this one failed: the failure is
// the target's (service, quota, the gateway's credentials for that upstream, a model that
// upstream lacks), not the request's (parameters, size, business refusals, a canceled call).
func fallsBack(k llm.Kind) bool {
	switch k.Info().Class {
	case llm.ClassService:
		return k != llm.KindCanceled
	case llm.ClassQuota, llm.ClassAuthentication:
		return true
	case llm.ClassParameter:
		return k == llm.KindNotFound
	}
	return false
}

// retryAfter is the upstream's Retry-After carried by err, 0 if none.
func retryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*llm.Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// backoff returns the wait before retry n (1 for the first retry): full jitter, a random time in
// [0, ceiling) where ceiling = initial × multiplier^(n−1), at most max_backoff; at least the
// upstream's Retry-After, which is honoured up to retry_after_cap.
func (p retryPolicy) backoff(n int, retryAfter time.Duration, rnd Rand) time.Duration {
	ceiling := float64(p.initialBackoff)
	for i := 1; i < n && ceiling < float64(p.maxBackoff); i++ {
		ceiling *= p.multiplier
	}
	ceiling = min(ceiling, float64(p.maxBackoff))
	wait := time.Duration(rnd() * ceiling)
	if ra := min(retryAfter, p.retryAfterCap); ra > wait {
		wait = ra
	}
	return wait
}

// AttemptsString formats n for the x-switchyard-attempts header.
func (r Result) AttemptsString() string { return strconv.Itoa(r.Attempts) }
