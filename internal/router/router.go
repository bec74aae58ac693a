// Package router resolves the model a client names ("provider/model" or an alias) to the provider
// that serves it. This is the foundation's router: one target per name. Strategies, retries,
// breakers and fallbacks (issue "Resilience and routing") are not built yet.
package router

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// Target is a resolved model: the provider to call and the model name to send it.
type Target struct {
	ProviderName string
	Provider     llm.Provider
	Model        string // upstream model name, without the provider prefix
}

// Name returns "provider/model".
func (t Target) Name() string { return t.ProviderName + "/" + t.Model }

// Backend is a configured provider and the models it declares (empty: any name passes through).
type Backend struct {
	Provider llm.Provider
	Models   []string
}

// ModelInfo describes a servable name for model listings.
type ModelInfo struct {
	ID      string // "provider/model" or alias
	OwnedBy string // provider name, or "switchyard" for aliases
	Target  string // for aliases: "provider/model"
}

// Router resolves model names. It is immutable after New, so safe for concurrent use.
type Router struct {
	backends map[string]Backend
	aliases  map[string]string
	models   []ModelInfo
}

// New returns a router over backends (keyed by provider name) and aliases (alias → "provider/model").
// It fails if an alias points at an unknown provider or at a model its provider does not declare.
func New(backends map[string]Backend, aliases map[string]string) (*Router, error) {
	r := &Router{backends: backends, aliases: aliases}
	for alias, target := range aliases {
		if strings.Contains(alias, "/") {
			return nil, fmt.Errorf("router: alias %q must not contain '/'", alias)
		}
		if _, err := r.resolveQualified(target); err != nil {
			return nil, fmt.Errorf("router: alias %q: %w", alias, err)
		}
	}
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		models := r.backends[n].Models
		if len(models) == 0 {
			if l, ok := r.backends[n].Provider.(llm.ModelLister); ok {
				models = l.Models()
			}
		}
		for _, m := range models {
			r.models = append(r.models, ModelInfo{ID: n + "/" + m, OwnedBy: n})
		}
	}
	as := make([]string, 0, len(aliases))
	for a := range aliases {
		as = append(as, a)
	}
	sort.Strings(as)
	for _, a := range as {
		r.models = append(r.models, ModelInfo{ID: a, OwnedBy: "switchyard", Target: aliases[a]})
	}
	return r, nil
}

// Resolve returns the target for model. Unknown names are KindNotFound errors with code
// "model_not_found".
func (r *Router) Resolve(model string) (Target, error) {
	if model == "" {
		return Target{}, &llm.Error{Kind: llm.KindInvalidArgument, Message: "model is required", Param: "model"}
	}
	if t, ok := r.aliases[model]; ok {
		model = t
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
	return Target{ProviderName: prov, Provider: b.Provider, Model: name}, nil
}

func notFound(model string) *llm.Error {
	return &llm.Error{
		Kind:    llm.KindNotFound,
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model),
		Code:    "model_not_found",
		Param:   "model",
	}
}

// Models lists the servable names: each provider's declared models, then aliases.
func (r *Router) Models() []ModelInfo { return r.models }

// Model returns the listing entry for id, if any.
func (r *Router) Model(id string) (ModelInfo, bool) {
	for _, m := range r.models {
		if m.ID == id {
			return m, true
		}
	}
	if t, err := r.Resolve(id); err == nil && !strings.Contains(id, "/") {
		return ModelInfo{ID: id, OwnedBy: "switchyard", Target: t.Name()}, true
	} else if err == nil {
		return ModelInfo{ID: id, OwnedBy: t.ProviderName}, true
	}
	return ModelInfo{}, false
}
