package router

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// Estimate sizes a request for the cost strategy.
type Estimate struct {
	PromptTokens int // estimated input tokens
	MaxTokens    int // completion budget; 0 means DefaultCompletionTokens
}

// EstimateChat estimates req's prompt size from its text (about 4 characters a token, tools
// included) and takes its max_tokens.
func EstimateChat(req *llm.ChatRequest) Estimate {
	n := 0
	for i := range req.Messages {
		m := &req.Messages[i]
		for _, p := range m.Content {
			n += len(p.Text)
		}
		for _, tc := range m.ToolCalls {
			n += len(tc.Name) + len(tc.Arguments)
		}
	}
	for _, t := range req.Tools {
		n += len(t.Name) + len(t.Description) + len(t.Parameters)
	}
	e := Estimate{PromptTokens: llm.TokensForChars(n)}
	if req.MaxTokens != nil {
		e.MaxTokens = int(*req.MaxTokens)
	}
	return e
}

// EstimateEmbedding estimates req's input size; embeddings have no completion.
func EstimateEmbedding(req *llm.EmbeddingRequest) Estimate {
	n, toks := 0, 0
	for _, t := range req.Texts {
		n += len(t)
	}
	for _, t := range req.Tokens {
		toks += len(t)
	}
	return Estimate{PromptTokens: toks + llm.TokensForChars(n), MaxTokens: -1}
}

// EstimateRerank estimates req's input size: the query once per document plus the documents, as
// rerank models read each (query, document) pair; there is no completion.
func EstimateRerank(req *llm.RerankRequest) Estimate {
	n := 0
	for _, d := range req.Documents {
		n += len(req.Query) + len(d.AsText())
	}
	return Estimate{PromptTokens: llm.TokensForChars(n), MaxTokens: -1}
}

// Candidate is one target of a plan with the strategy's score for it.
type Candidate struct {
	Target Target
	// Score is what the strategy sorted by: rank (priority), weight (weighted), estimated cost
	// (cost), latency score in nanoseconds (latency), in-flight requests (least-busy). NaN when
	// the target has no score (unpriced, unmeasured).
	Score float64
	// Why is the score as the decision header shows it: "#1", "w=3", "$0.000150", "12.3ms",
	// "unmeasured", "inflight=2"; " [open]" is appended when the breaker was open at plan time.
	Why string
	// Open says the breaker was open at plan time; such candidates are moved to the end.
	Open bool
}

// Plan is the routing decision for one request and the executor that carries it out. A Plan is
// used for one request only.
type Plan struct {
	Route      string // route name; "" for a pinned "provider/model"
	Strategy   Strategy
	Candidates []Candidate

	retry   retryPolicy
	breaker breakerPolicy
	timeout timeoutPolicy
	state   *State

	router *Router      // whose in-flight count the execution holds
	rt     *route       // nil for pinned plans
	canary bool         // the first candidate is rt's canary
	shadow *shadowRoute // drawn for mirroring
}

// Chosen returns the candidate the strategy chose (the first), or nil for an empty plan.
func (p *Plan) Chosen() *Candidate {
	if len(p.Candidates) == 0 {
		return nil
	}
	return &p.Candidates[0]
}

// Decision explains the plan in one line, the value of the x-switchyard-route-decision header:
//
//	strategy=latency; chosen=b/m2; candidates=b/m2:12.3ms,a/m1:40.1ms
func (p *Plan) Decision() string {
	var b strings.Builder
	b.WriteString("strategy=")
	b.WriteString(string(p.Strategy))
	if c := p.Chosen(); c != nil {
		b.WriteString("; chosen=")
		b.WriteString(c.Target.Name())
	}
	b.WriteString("; candidates=")
	b.WriteString(p.CandidatesString())
	return b.String()
}

// CandidatesString lists the candidates with their scores: "b/m2:12.3ms,a/m1:40.1ms".
func (p *Plan) CandidatesString() string {
	var b strings.Builder
	for i, c := range p.Candidates {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.Target.Name())
		if c.Why != "" {
			b.WriteByte(':')
			b.WriteString(c.Why)
		}
	}
	return b.String()
}

// plan orders rt's targets by its strategy.
func (r *Router) plan(rt *route, est Estimate) *Plan {
	p := &Plan{Route: rt.name, Strategy: rt.strategy, retry: rt.retry, breaker: rt.breaker, timeout: rt.timeout, state: r.state}
	p.Candidates = make([]Candidate, len(rt.targets))
	for i, t := range rt.targets {
		p.Candidates[i] = Candidate{Target: t, Score: math.NaN()}
	}
	cs := p.Candidates
	switch rt.strategy {
	case strategyPinned:
	case StrategyPriority:
		for i := range cs {
			cs[i].Score, cs[i].Why = float64(i+1), "#"+strconv.Itoa(i+1)
		}
	case StrategyWeighted:
		orderWeighted(cs, r.state.rand)
	case StrategyCost:
		for i := range cs {
			if c, ok := estimateCost(cs[i].Target.Price, est); ok {
				cs[i].Score, cs[i].Why = c, fmt.Sprintf("$%.6f", c)
			} else {
				cs[i].Why = "unpriced"
			}
		}
		sortByScore(cs)
	case StrategyLatency:
		for i := range cs {
			if d, ok := r.state.target(cs[i].Target.Key()).latencyScore(); ok {
				cs[i].Score, cs[i].Why = float64(d), fmtMillis(d)
			} else {
				cs[i].Score, cs[i].Why = -1, "unmeasured" // explored first
			}
		}
		sortByScore(cs)
		for i := range cs {
			if cs[i].Score < 0 {
				cs[i].Score = math.NaN()
			}
		}
	case StrategyLeastBusy:
		for i := range cs {
			n := r.state.target(cs[i].Target.Key()).inflight.Load()
			cs[i].Score, cs[i].Why = float64(n), "inflight="+strconv.FormatInt(n, 10)
		}
		sortByScore(cs)
	}
	if len(cs) > 1 {
		now := r.state.clock.Now()
		for i := range cs {
			if r.state.target(cs[i].Target.Key()).breakerState(now, rt.breaker) == BreakerOpen {
				cs[i].Open = true
				cs[i].Why += " [open]"
			}
		}
		slices.SortStableFunc(cs, func(a, b Candidate) int {
			return cmpBool(a.Open, b.Open)
		})
	}
	return p
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// sortByScore sorts by ascending score, NaN (no score) last, keeping config order for ties.
func sortByScore(cs []Candidate) {
	slices.SortStableFunc(cs, func(a, b Candidate) int {
		an, bn := math.IsNaN(a.Score), math.IsNaN(b.Score)
		if an || bn {
			return cmpBool(an, bn)
		}
		return cmp.Compare(a.Score, b.Score)
	})
}

// orderWeighted draws the order at random, each place in proportion to the weights left.
func orderWeighted(cs []Candidate, rnd Rand) {
	for i := range cs {
		cs[i].Score, cs[i].Why = cs[i].Target.Weight, "w="+strconv.FormatFloat(cs[i].Target.Weight, 'g', -1, 64)
	}
	for i := 0; i < len(cs)-1; i++ {
		total := 0.0
		for _, c := range cs[i:] {
			total += c.Score
		}
		x := rnd() * total
		pick := len(cs) - 1
		for j := i; j < len(cs); j++ {
			if x < cs[j].Score {
				pick = j
				break
			}
			x -= cs[j].Score
		}
		c := cs[pick]
		copy(cs[i+1:pick+1], cs[i:pick])
		cs[i] = c
	}
}

// estimateCost is the price of est at p, in currency units; ok is false without a price.
func estimateCost(p *Price, est Estimate) (float64, bool) {
	if p == nil {
		return 0, false
	}
	out := est.MaxTokens
	switch {
	case out == 0:
		out = DefaultCompletionTokens
	case out < 0:
		out = 0
	}
	return (float64(est.PromptTokens)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6, true
}

func fmtMillis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}
