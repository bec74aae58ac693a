// Package batch merges short embedding requests to the same model, arriving within a small
// window, into one upstream call, and splits the answer back (docs/providers.md, "Micro-batching").
//
// Wrap decorates an llm.Provider whose adapter implements llm.Embedder. Chat and streams pass
// through untouched; only Embed is batched. Requests are merged only when their upstream requests
// would be identical but for the inputs: same partition (the tenant, from the function the
// composition root gives), same model, same dimensions, same user, and inputs of the same form
// (texts or token ids). Each caller keeps its own result, usage share, error and cancellation:
//
//   - Split: the merged answer's vectors are handed back by position; a caller sees only its own.
//   - Usage: the upstream's prompt tokens are divided by each caller's share of the estimated
//     input tokens (llm.TokensForChars, token ids counted exactly), summing to the upstream's
//     figure; a share of a merged call is marked estimated (EmbeddingResponse.UsageEstimated).
//   - Errors: a service- or quota-class error of the merged call goes to every caller with its
//     kind. A parameter- or business-class error may be caused by one caller's inputs, so each
//     caller then retries alone (a bad input never fails its neighbours). Requests larger than
//     the per-call limits are never merged.
//   - Cancellation: a caller that leaves before the call is sent is taken out of the batch; after
//     it is sent, the caller returns at once and the call goes on for the others; when every
//     caller has left, the upstream call is cancelled. The merged call's deadline is the latest
//     of its callers' (none if one of them has none).
//
// A batch is sent when it holds MaxBatch requests, when the next request would take it over
// MaxInputs or MaxTokens, or Window after its first request arrived. A batch of one is sent by
// its caller, with its own context, exactly as without batching.
package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxBatch  = 5
	DefaultWindow    = 5 * time.Millisecond
	DefaultMaxInputs = 32
	DefaultMaxTokens = 8192
)

// Limits of Config, checked by Validate.
const (
	maxMaxBatch = 256
	maxWindow   = 100 * time.Millisecond
)

// Config configures batching for one provider (the provider's `batching` block). Zero fields
// take the defaults.
type Config struct {
	// MaxBatch is the most requests merged into one upstream call (2-256; default 5).
	MaxBatch int `yaml:"max_batch,omitempty"`
	// Window is how long the first request of a batch waits for others (1µs-100ms; default 5ms).
	Window time.Duration `yaml:"window,omitempty"`
	// MaxInputs bounds the inputs of one merged call (default 32, the smallest common server
	// limit: Hugging Face TEI's max_client_batch_size); a request with more is sent alone.
	MaxInputs int `yaml:"max_inputs,omitempty"`
	// MaxTokens bounds the estimated input tokens of one merged call (default 8192); a request
	// with more is sent alone.
	MaxTokens int `yaml:"max_tokens,omitempty"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxInputs == 0 {
		c.MaxInputs = DefaultMaxInputs
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	return c
}

// Validate checks c (zero fields mean their defaults).
func (c Config) Validate() error {
	var errs []error
	if c.MaxBatch != 0 && (c.MaxBatch < 2 || c.MaxBatch > maxMaxBatch) {
		errs = append(errs, fmt.Errorf("max_batch %d is not between 2 and %d", c.MaxBatch, maxMaxBatch))
	}
	if c.Window < 0 || c.Window > maxWindow {
		errs = append(errs, fmt.Errorf("window %s is not between 1µs and %s", c.Window, maxWindow))
	}
	if c.MaxInputs < 0 {
		errs = append(errs, errors.New("max_inputs must not be negative"))
	}
	if c.MaxTokens < 0 {
		errs = append(errs, errors.New("max_tokens must not be negative"))
	}
	return errors.Join(errs...)
}

// Partition names the group a request may be merged within (the tenant); requests of different
// partitions are never merged.
type Partition func(ctx context.Context) string

// Provider batches the embeddings of the provider it wraps. Safe for concurrent use.
type Provider struct {
	llm.Provider
	emb       llm.Embedder
	cfg       Config
	partition Partition

	// afterFunc runs f after d (time.AfterFunc; a fake clock in tests).
	afterFunc func(d time.Duration, f func()) (stop func() bool)
	// joined, when set (tests), is called after a request joined an open batch.
	joined func()

	mu   sync.Mutex
	open map[key]*batch
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
	_ io.Closer       = (*Provider)(nil)
)

// Wrap returns p with its embeddings batched as cfg says. partition may be nil (one partition).
// It fails when p does not serve embeddings or cfg is invalid.
func Wrap(p llm.Provider, cfg Config, partition Partition) (*Provider, error) {
	emb, ok := p.(llm.Embedder)
	if !ok {
		return nil, errors.New("batching: this provider type serves no embeddings")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("batching: %w", err)
	}
	if partition == nil {
		partition = func(context.Context) string { return "" }
	}
	return &Provider{
		Provider: p, emb: emb, cfg: cfg.WithDefaults(), partition: partition,
		afterFunc: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
		open:      map[key]*batch{},
	}, nil
}

// WithRest returns p as the provider to serve: p itself, or, when the wrapped provider also
// reranks, p with its Rerank and RerankModels forwarded (batching covers embeddings only, and
// must not hide what else the provider serves).
func (p *Provider) WithRest() llm.Provider {
	r, ok := p.Provider.(llm.Reranker)
	if !ok {
		return p
	}
	rp := &rerankingProvider{Provider: p, rerank: r}
	if l, ok := p.Provider.(llm.RerankModelLister); ok {
		return &listingRerankingProvider{rerankingProvider: rp, lister: l}
	}
	return rp
}

// rerankingProvider is a batching provider whose wrapped provider reranks.
type rerankingProvider struct {
	*Provider
	rerank llm.Reranker
}

func (p *rerankingProvider) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	return p.rerank.Rerank(ctx, req)
}

// listingRerankingProvider also names the wrapped provider's rerank models.
type listingRerankingProvider struct {
	*rerankingProvider
	lister llm.RerankModelLister
}

func (p *listingRerankingProvider) RerankModels() []string { return p.lister.RerankModels() }

// Models returns the wrapped provider's models, if it lists them.
func (p *Provider) Models() []string {
	if l, ok := p.Provider.(llm.ModelLister); ok {
		return l.Models()
	}
	return nil
}

// Close closes the wrapped provider, if it is an io.Closer.
func (p *Provider) Close() error {
	if c, ok := p.Provider.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// key is what merged requests share: everything of the upstream request but the inputs.
type key struct {
	partition string
	model     string
	dims      int32
	hasDims   bool
	user      string
	tokens    bool
}

// member is one caller waiting in a batch.
type member struct {
	ctx    context.Context
	req    *llm.EmbeddingRequest
	inputs int
	est    int          // estimated input tokens: the usage weight
	done   chan outcome // buffered; receives exactly one outcome
	batch  *batch       // the batch it joined
	gone   bool         // left after the batch was sent (p.mu)
}

// outcome is what a member gets back: a response, an error, or the word to call alone.
type outcome struct {
	resp  *llm.EmbeddingResponse
	err   error
	alone bool
}

// batch is an open or sent group of members with the same key.
type batch struct {
	key     key
	members []*member
	inputs  int
	tokens  int
	stop    func() bool        // the window's timer
	sent    bool               // p.mu
	live    int                // members still waiting after sending (p.mu)
	cancel  context.CancelFunc // cancels the merged call (set before live > 0)
}

// Embed batches req with others of the same key, or sends it alone when it is too large to
// merge. See the package comment for the contract.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	n := len(req.Texts)
	k := key{partition: p.partition(ctx), model: req.Model, user: req.User}
	if n == 0 {
		n, k.tokens = len(req.Tokens), true
	}
	if req.Dimensions != nil {
		k.dims, k.hasDims = *req.Dimensions, true
	}
	est := estimate(req)
	if n == 0 || n > p.cfg.MaxInputs || est > p.cfg.MaxTokens || ctx.Err() != nil {
		return p.emb.Embed(ctx, req)
	}
	m := &member{ctx: ctx, req: req, inputs: n, est: est, done: make(chan outcome, 1)}
	p.join(k, m)
	if p.joined != nil {
		p.joined()
	}
	select {
	case o := <-m.done:
		return p.finish(m, o)
	case <-ctx.Done():
	}
	if o, ok := p.leave(m); ok {
		return p.finish(m, o)
	}
	return nil, llm.AsError(ctx.Err())
}

// finish turns an outcome into Embed's answer.
func (p *Provider) finish(m *member, o outcome) (*llm.EmbeddingResponse, error) {
	if o.alone {
		return p.emb.Embed(m.ctx, m.req)
	}
	return o.resp, o.err
}

// join adds m to the open batch of k (sending it first if m would take it over a limit), and
// sends the batch when it is full.
func (p *Provider) join(k key, m *member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.open[k]
	if b != nil && (b.inputs+m.inputs > p.cfg.MaxInputs || b.tokens+m.est > p.cfg.MaxTokens) {
		p.sendLocked(b)
		b = nil
	}
	if b == nil {
		b = &batch{key: k}
		p.open[k] = b
		b.stop = p.afterFunc(p.cfg.Window, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.open[k] == b {
				p.sendLocked(b)
			}
		})
	}
	m.batch = b
	b.members = append(b.members, m)
	b.inputs += m.inputs
	b.tokens += m.est
	if len(b.members) >= p.cfg.MaxBatch {
		p.sendLocked(b)
	}
}

// leave takes m out after its context ended. If an outcome arrived meanwhile, it is returned.
func (p *Provider) leave(m *member) (outcome, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case o := <-m.done:
		if !o.alone {
			return o, true
		}
		// Told to call alone, but the caller is gone: nothing to do.
		return outcome{}, false
	default:
	}
	b := m.batch
	if !b.sent {
		for i, x := range b.members {
			if x == m {
				b.members = append(b.members[:i], b.members[i+1:]...)
				break
			}
		}
		b.inputs -= m.inputs
		b.tokens -= m.est
		if len(b.members) == 0 {
			b.stop()
			delete(p.open, b.key)
		}
		return outcome{}, false
	}
	m.gone = true
	if b.live--; b.live == 0 && b.cancel != nil {
		b.cancel()
	}
	return outcome{}, false
}

// sendLocked closes b to new members and sends it: a lone member is told to call alone; several
// are merged into one upstream call on a new goroutine. p.mu is held.
func (p *Provider) sendLocked(b *batch) {
	if p.open[b.key] == b {
		delete(p.open, b.key)
	}
	b.stop()
	b.sent = true
	switch len(b.members) {
	case 0:
		return
	case 1:
		b.members[0].done <- outcome{alone: true}
		return
	}
	ctx, cancel := mergedContext(b.members)
	b.cancel = cancel
	b.live = len(b.members)
	go p.run(ctx, b)
}

// mergedContext is the context of a merged call: the first member's values (its trace), not its
// cancellation; the latest of the members' deadlines (none if one has none); cancelled by the
// returned function.
func mergedContext(ms []*member) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(ms[0].ctx)
	var latest time.Time
	for _, m := range ms {
		d, ok := m.ctx.Deadline()
		if !ok {
			return context.WithCancel(ctx)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}

// run makes the merged call of b and hands each member its part.
func (p *Provider) run(ctx context.Context, b *batch) {
	defer b.cancel()
	ms := b.members
	merged := &llm.EmbeddingRequest{Model: ms[0].req.Model, Dimensions: ms[0].req.Dimensions, User: ms[0].req.User}
	if b.key.tokens {
		merged.Tokens = make([][]int32, 0, b.inputs)
		for _, m := range ms {
			merged.Tokens = append(merged.Tokens, m.req.Tokens...)
		}
	} else {
		merged.Texts = make([]string, 0, b.inputs)
		for _, m := range ms {
			merged.Texts = append(merged.Texts, m.req.Texts...)
		}
	}
	ctx, warnings := llm.WithWarnings(ctx)
	resp, err := p.emb.Embed(ctx, merged)
	if err == nil && len(resp.Vectors) != b.inputs {
		err = &llm.Error{Kind: llm.KindUpstream, Message: "upstream returned a wrong number of embeddings",
			Err: fmt.Errorf("batch: got %d vectors for %d merged inputs", len(resp.Vectors), b.inputs)}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		alone := false
		switch llm.KindOf(err).Info().Class {
		case llm.ClassParameter, llm.ClassBusiness:
			alone = true // perhaps one member's inputs: each finds out on its own
		}
		for _, m := range ms {
			if m.gone {
				continue
			}
			if alone {
				m.done <- outcome{alone: true}
			} else {
				e := *llm.AsError(err) // each caller gets its own copy
				m.done <- outcome{err: &e}
			}
		}
		return
	}
	shares := split(resp.PromptTokens, ms)
	off := 0
	for i, m := range ms {
		part := &llm.EmbeddingResponse{Model: resp.Model, Vectors: resp.Vectors[off : off+m.inputs : off+m.inputs],
			PromptTokens: shares[i], UsageEstimated: resp.PromptTokens > 0 || resp.UsageEstimated}
		off += m.inputs
		if m.gone {
			continue
		}
		for _, w := range warnings.List() {
			llm.Warn(m.ctx, "%s", w)
		}
		m.done <- outcome{resp: part}
	}
}

// estimate is req's input size in tokens: token ids counted, text by llm.TokensForChars.
func estimate(req *llm.EmbeddingRequest) int {
	n := 0
	for _, t := range req.Texts {
		n += llm.TokensForChars(len(t))
	}
	for _, t := range req.Tokens {
		n += len(t)
	}
	return n
}

// split divides total among ms in proportion to their estimated tokens (equally if every
// estimate is 0), by largest remainder, so that the shares sum to total.
func split(total int32, ms []*member) []int32 {
	out := make([]int32, len(ms))
	if total <= 0 {
		return out
	}
	w := make([]int64, len(ms))
	var sum int64
	for i, m := range ms {
		w[i] = int64(m.est)
		sum += w[i]
	}
	if sum == 0 {
		for i := range w {
			w[i] = 1
		}
		sum = int64(len(w))
	}
	rem := make([]int64, len(ms))
	given := int64(0)
	for i := range ms {
		q := int64(total) * w[i]
		out[i] = int32(q / sum)
		rem[i] = q % sum
		given += int64(out[i])
	}
	for left := int64(total) - given; left > 0; left-- {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		out[best]++
		rem[best] = -1
	}
	return out
}
