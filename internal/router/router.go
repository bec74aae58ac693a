// Package router decides which upstream serves a request and runs the attempts.
//
// A client names a model as "provider/model" (pinned: that target only, no fallback, retried
// under its provider's retry policy) or as a route: an alias (one target) or a configured route
// (several targets and a strategy). For each
// request the Router returns a Plan: the route's targets ordered by its strategy, with their
// scores and an explanation. The Plan's executor (Chat, ChatStream, Embed, Rerank) then runs attempts:
// retries on one target under the route's retry policy, then falls back to the next candidate
// when retries are exhausted, the failure is the target's (not the request's), or the target's
// circuit breaker is open. Streams are committed at their first chunk; nothing is retried or
// fallen back after that.
//
// A Router is immutable and safe for concurrent use; a config reload builds a new one and swaps
// it in atomically. The live per-target state (breakers, latency averages, in-flight counts)
// lives in a State that outlives routers, keyed by TargetKey, so a reload keeps it.
package router

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/switchyard/switchyard/internal/llm"
)

// Target is a resolved model: the provider to call and the model name to send it.
type Target struct {
	ProviderName string
	Provider     llm.Provider
	Model        string // upstream model name, without the provider prefix
	KeyID        string // identity of the upstream credentials (Backend.KeyID)
	Weight       float64
	Price        *Price // nil: unpriced
}

// Name returns "provider/model".
func (t Target) Name() string { return t.ProviderName + "/" + t.Model }

// Key returns the identity of t's live state.
func (t Target) Key() TargetKey {
	return TargetKey{Provider: t.ProviderName, Model: t.Model, KeyID: t.KeyID}
}

// Price is a resolved price in currency units per million tokens.
type Price struct {
	InputPerMTok, OutputPerMTok float64
}

// Backend is a configured provider and the models it declares (empty: any name passes through).
type Backend struct {
	Provider llm.Provider
	Models   []string
	// KeyID identifies the credentials the provider uses (see KeyID), so breakers are per key.
	KeyID string
}

// KeyID returns a short, non-secret identity for an upstream credential: the first 12 hex digits
// of its SHA-256, or "" for no credential.
func KeyID(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:6])
}

// SelfRetrying is implemented by providers that retry failed calls themselves (grpcupstream,
// through go-grpc-middleware, with the same policy). DESIGN.md: one layer retries a call, never
// two, so the executor makes one attempt per candidate for such providers and only falls back.
type SelfRetrying interface {
	RetriesCalls() bool
}

// ModelInfo describes a servable name for model listings.
type ModelInfo struct {
	ID      string // "provider/model" or route name
	OwnedBy string // provider name, or "switchyard" for routes
	Target  string // for routes: the targets' "provider/model", comma-separated
	// Type is ModelTypeRerank for a rerank model (its provider lists it, llm.RerankModelLister)
	// and for a route whose targets all are; "" when unknown (chat or embeddings).
	Type string
}

// ModelTypeRerank is ModelInfo.Type of rerank models.
const ModelTypeRerank = "rerank"

// route is a resolved RouteConfig (or alias).
type route struct {
	name           string
	strategy       Strategy
	targets        []Target
	retry          retryPolicy
	breaker        breakerPolicy
	timeout        timeoutPolicy
	explainTargets string // for ModelInfo
	alias          bool   // from Config.Aliases
	shadow         *shadowRoute
	canary         *canaryRoute
	watch          *switchWatch // set by Reconfigure and Repoint for routes whose targets changed
}

// Router resolves model names to plans. It is immutable after Build, so safe for concurrent use.
type Router struct {
	backends map[string]Backend
	routes   map[string]*route
	models   []ModelInfo
	state    *State
	prices   map[string]Price
	pinned   route // the policies of "provider/model" requests; retry is the default one
	// pinnedRetry holds the retry policies of providers with their own (Config.ProviderRetry).
	pinnedRetry map[string]retryPolicy
	cfg         Config
	inflight    atomic.Int64 // executions and shadow calls running on this router's plans
}

// New returns a router over backends (keyed by provider name) and single-target aliases
// (alias → "provider/model"), with a fresh State. See Build.
func New(backends map[string]Backend, aliases map[string]string) (*Router, error) {
	return Build(backends, Config{Aliases: aliases}, nil)
}

// Build returns a router over backends (keyed by provider name) and cfg's routes, aliases and
// prices. state holds the live per-target state; pass the previous router's State on a reload,
// or nil for a new one. Build fails if a route or alias names an unknown provider or a model
// its provider does not declare, or if cfg is otherwise invalid (see Config.Validate).
func Build(backends map[string]Backend, cfg Config, state *State) (*Router, error) {
	declared := make(map[string][]string, len(backends))
	for n, b := range backends {
		declared[n] = b.Models
	}
	if err := cfg.Validate(declared); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if state == nil {
		state = NewState()
	}
	r := &Router{backends: backends, routes: map[string]*route{}, state: state, prices: map[string]Price{}, cfg: cfg}
	// Pinned names and aliases: DESIGN.md's retry policy on that one target, or the provider's own.
	r.pinned = route{strategy: strategyPinned, retry: RetryConfig{}.policy(), breaker: BreakerConfig{}.policy()}
	r.pinnedRetry = make(map[string]retryPolicy, len(cfg.ProviderRetry))
	for prov, rc := range cfg.ProviderRetry {
		r.pinnedRetry[prov] = rc.policy()
	}
	for m, p := range cfg.Prices {
		r.prices[m] = Price{InputPerMTok: p.InputPricePerMTok, OutputPerMTok: p.OutputPricePerMTok}
	}
	routes := slices.Clone(cfg.Routes)
	for _, alias := range sortedKeys(cfg.Aliases) {
		rc := RouteConfig{Name: alias, Targets: []TargetConfig{{Model: cfg.Aliases[alias]}}}
		if prov, _, _ := strings.Cut(cfg.Aliases[alias], "/"); prov != "" {
			rc.Retry = cfg.ProviderRetry[prov] // absent: the zero config, DESIGN.md's default
		}
		routes = append(routes, rc)
	}
	for _, rc := range routes {
		rt := &route{name: rc.Name, strategy: rc.Strategy, retry: rc.Retry.policy(), breaker: rc.Breaker.policy(),
			timeout: timeoutPolicy{total: rc.Timeout, attempt: rc.AttemptTimeout, idle: rc.StreamIdleTimeout}}
		if rt.strategy == "" {
			rt.strategy = StrategyPriority
		}
		names := make([]string, len(rc.Targets))
		for i, tc := range rc.Targets {
			t, err := r.resolveQualified(tc.Model)
			if err != nil {
				return nil, fmt.Errorf("router: route %q: %w", rc.Name, err)
			}
			t.Weight = tc.Weight
			if t.Weight == 0 {
				t.Weight = 1
			}
			if tc.InputPricePerMTok != nil || tc.OutputPricePerMTok != nil {
				p := Price{}
				if tc.InputPricePerMTok != nil {
					p.InputPerMTok = *tc.InputPricePerMTok
				}
				if tc.OutputPricePerMTok != nil {
					p.OutputPerMTok = *tc.OutputPricePerMTok
				}
				t.Price = &p
			}
			rt.targets = append(rt.targets, t)
			names[i] = t.Name()
		}
		rt.explainTargets = strings.Join(names, ",")
		rt.alias = cfg.Aliases[rc.Name] != ""
		if err := r.buildLive(rt, rc); err != nil {
			return nil, err
		}
		r.routes[rc.Name] = rt
	}

	for _, n := range sortedKeys(backends) {
		models := backends[n].Models
		if len(models) == 0 {
			if l, ok := backends[n].Provider.(llm.ModelLister); ok {
				models = l.Models()
			}
		}
		for _, m := range models {
			r.models = append(r.models, ModelInfo{ID: n + "/" + m, OwnedBy: n, Type: modelType(backends[n].Provider, m)})
		}
	}
	for _, name := range sortedKeys(r.routes) {
		rt := r.routes[name]
		typ := ModelTypeRerank
		for _, t := range rt.targets {
			if modelType(t.Provider, t.Model) != ModelTypeRerank {
				typ = ""
			}
		}
		r.models = append(r.models, ModelInfo{ID: name, OwnedBy: "switchyard", Target: rt.explainTargets, Type: typ})
	}
	return r, nil
}

// modelType is ModelTypeRerank when p lists model among its rerank models, else "".
func modelType(p llm.Provider, model string) string {
	if l, ok := p.(llm.RerankModelLister); ok && slices.Contains(l.RerankModels(), model) {
		return ModelTypeRerank
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// State returns the live per-target state the router records into; pass it to Build when
// building the router that replaces this one.
func (r *Router) State() *State { return r.state }

// Resolve returns the first target for model (a route's first configured target). Unknown names
// are KindNotFound errors with code "model_not_found".
func (r *Router) Resolve(model string) (Target, error) {
	if model == "" {
		return Target{}, &llm.Error{Kind: llm.KindInvalidArgument, Message: "model is required", Param: "model"}
	}
	if rt, ok := r.routes[model]; ok {
		return rt.targets[0], nil
	}
	return r.resolveQualified(model)
}

func (r *Router) resolveQualified(model string) (Target, error) {
	prov, name, ok := strings.Cut(model, "/")
	if !ok || name == "" {
		return Target{}, notFound(model)
	}
	b, ok := r.backends[prov]
	if !ok {
		return Target{}, notFound(model)
	}
	if len(b.Models) > 0 && !slices.Contains(b.Models, name) {
		return Target{}, notFound(model)
	}
	t := Target{ProviderName: prov, Provider: b.Provider, Model: name, KeyID: b.KeyID, Weight: 1}
	if p, ok := r.prices[model]; ok {
		t.Price = &p
	}
	return t, nil
}

func notFound(model string) *llm.Error {
	return &llm.Error{
		Kind:    llm.KindNotFound,
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model),
		Code:    "model_not_found",
		Param:   "model",
	}
}

// Models lists the servable names: each provider's declared models, then routes and aliases.
func (r *Router) Models() []ModelInfo { return r.models }

// Model returns the listing entry for id, if any.
func (r *Router) Model(id string) (ModelInfo, bool) {
	for _, m := range r.models {
		if m.ID == id {
			return m, true
		}
	}
	if t, err := r.Resolve(id); err == nil {
		return ModelInfo{ID: id, OwnedBy: t.ProviderName}, true
	}
	return ModelInfo{}, false
}

// Plan returns the plan for one request to model: the candidates in the order the route's
// strategy chose, with their scores. est sizes the request for the cost strategy. Unknown names
// are KindNotFound errors with code "model_not_found".
func (r *Router) Plan(model string, est Estimate) (*Plan, error) {
	if model == "" {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Message: "model is required", Param: "model"}
	}
	rt, ok := r.routes[model]
	if !ok {
		t, err := r.resolveQualified(model)
		if err != nil {
			return nil, err
		}
		p := r.pinned
		p.name = ""
		p.targets = []Target{t}
		if rp, ok := r.pinnedRetry[t.ProviderName]; ok {
			p.retry = rp
		}
		rt = &p
	}
	p := r.plan(rt, est)
	r.decorate(p, rt)
	return p, nil
}
