package router

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Strategy orders a route's targets for one request.
type Strategy string

// The strategies. Every one of them explains its order (see Plan.Decision).
const (
	// StrategyPriority tries the targets in config order.
	StrategyPriority Strategy = "priority"
	// StrategyWeighted picks at random in proportion to the targets' weights; the fallback order
	// is drawn the same way among the targets left.
	StrategyWeighted Strategy = "weighted"
	// StrategyCost prefers the cheapest estimated cost for the request (prompt size estimate and
	// max_tokens against the price table); targets without a price come last.
	StrategyCost Strategy = "cost"
	// StrategyLatency prefers the lowest live latency score (EWMA of time to first token and total
	// latency, penalised by the error rate); unmeasured targets are explored first.
	StrategyLatency Strategy = "latency"
	// StrategyLeastBusy prefers the target with the fewest requests in flight.
	StrategyLeastBusy Strategy = "least-busy"
	// strategyPinned is a request naming "provider/model" directly: one candidate.
	strategyPinned Strategy = "pinned"
)

var strategies = []Strategy{StrategyPriority, StrategyWeighted, StrategyCost, StrategyLatency, StrategyLeastBusy}

// Defaults of DESIGN.md's retry policy and of the circuit breaker.
const (
	DefaultMaxRetries     = 3
	DefaultInitialBackoff = time.Second
	DefaultMultiplier     = 2.0
	DefaultMaxBackoff     = 30 * time.Second
	DefaultRetryAfterCap  = 30 * time.Second

	DefaultConsecutiveFailures = 5
	DefaultErrorRate           = 0.5
	DefaultWindow              = time.Minute
	DefaultMinRequests         = 20
	DefaultOpenFor             = 30 * time.Second
	DefaultHalfOpenProbes      = 1

	// DefaultCompletionTokens is the completion size the cost strategy assumes when a request
	// sets no max_tokens.
	DefaultCompletionTokens = 1024
)

// Config is the routing part of the configuration: routes, single-target aliases and the price
// table. The YAML fields are the top-level routes:, aliases: and prices: of the config file.
type Config struct {
	Routes []RouteConfig
	// Aliases maps a name to one "provider/model"; each is a route with one target, its
	// provider's retry policy (ProviderRetry, else the default) and the default breaker.
	Aliases map[string]string
	// Prices maps "provider/model" to its price; a route target's own price overrides it.
	Prices map[string]PriceConfig
	// ProviderRetry maps a provider name to the retry policy of its pinned names
	// ("provider/model") and of the aliases that point at it (the provider entry's retry: block).
	// A provider absent here gets DESIGN.md's default policy, as routes do.
	ProviderRetry map[string]RetryConfig
}

// RouteConfig configures one route: a name clients use as their model, and its targets.
type RouteConfig struct {
	Name     string         `yaml:"name"`
	Strategy Strategy       `yaml:"strategy,omitempty"` // default priority
	Targets  []TargetConfig `yaml:"targets"`
	Retry    RetryConfig    `yaml:"retry,omitempty"`
	Breaker  BreakerConfig  `yaml:"breaker,omitempty"`
	// Timeout bounds the whole request, every attempt and backoff included (0: the caller's
	// deadline only). The caller's deadline applies when it is earlier.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// AttemptTimeout bounds one attempt until the blocking answer or the first stream chunk
	// (0: none). An attempt that runs out is a KindTimeout failure: retried, then fallen back.
	AttemptTimeout time.Duration `yaml:"attempt_timeout,omitempty"`
	// StreamIdleTimeout bounds the wait for each chunk of a committed stream after the first
	// (0: none, the default: a reasoning model may be silent for minutes). A stream that stalls
	// longer breaks with a KindTimeout error event; it is not retried (the client has chunks).
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout,omitempty"`
	// Shadow mirrors a share of the route's requests to a candidate target whose answers are
	// recorded, never returned (see ShadowConfig).
	Shadow *ShadowConfig `yaml:"shadow,omitempty"`
	// Canary sends a share of the route's live traffic to a candidate target, and rolls back
	// when the candidate fails too often (see CanaryConfig).
	Canary *CanaryConfig `yaml:"canary,omitempty"`
}

// TargetConfig is one target of a route.
type TargetConfig struct {
	Model  string  `yaml:"model"`            // provider/model
	Weight float64 `yaml:"weight,omitempty"` // for weighted; default 1
	// Prices in currency units per million tokens; when either is set they override the price
	// table's entry for this model (an unset side is 0).
	InputPricePerMTok  *float64 `yaml:"input_price_per_mtok,omitempty"`
	OutputPricePerMTok *float64 `yaml:"output_price_per_mtok,omitempty"`
}

// PriceConfig is one entry of the price table, in currency units per million tokens.
type PriceConfig struct {
	InputPricePerMTok  float64 `yaml:"input_price_per_mtok"`
	OutputPricePerMTok float64 `yaml:"output_price_per_mtok"`
}

// RetryConfig is a route's retry policy, or a provider's for its pinned names
// (Config.ProviderRetry); zero fields take DESIGN.md's defaults.
type RetryConfig struct {
	MaxRetries     *int          `yaml:"max_retries,omitempty"`     // retries after the first attempt, per target; default 3, 0 disables
	InitialBackoff time.Duration `yaml:"initial_backoff,omitempty"` // ceiling of the first backoff; default 1s
	Multiplier     float64       `yaml:"multiplier,omitempty"`      // ceiling growth per retry; default 2
	MaxBackoff     time.Duration `yaml:"max_backoff,omitempty"`     // largest ceiling; default 30s
	RetryAfterCap  time.Duration `yaml:"retry_after_cap,omitempty"` // largest Retry-After honoured; default 30s
}

// BreakerConfig is a route's circuit-breaker policy; zero fields take the defaults. The
// breaker itself belongs to the target (provider, model, key), so a target shared by two routes
// has one breaker, driven by the policy of whichever route recorded the outcome.
type BreakerConfig struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures,omitempty"` // open after this many failures in a row; default 5, -1 disables
	ErrorRate           float64       `yaml:"error_rate,omitempty"`           // open when the failure ratio over Window reaches this; default 0.5, -1 disables
	Window              time.Duration `yaml:"window,omitempty"`               // default 1m
	MinRequests         int           `yaml:"min_requests,omitempty"`         // outcomes needed in Window before ErrorRate applies; default 20
	OpenFor             time.Duration `yaml:"open_for,omitempty"`             // default 30s
	HalfOpenProbes      int           `yaml:"half_open_probes,omitempty"`     // probes let through, and successes needed to close; default 1
}

// retryPolicy is a RetryConfig with defaults applied.
type retryPolicy struct {
	maxRetries     int
	initialBackoff time.Duration
	multiplier     float64
	maxBackoff     time.Duration
	retryAfterCap  time.Duration
}

func (c RetryConfig) policy() retryPolicy {
	p := retryPolicy{maxRetries: DefaultMaxRetries, initialBackoff: c.InitialBackoff, multiplier: c.Multiplier,
		maxBackoff: c.MaxBackoff, retryAfterCap: c.RetryAfterCap}
	if c.MaxRetries != nil {
		p.maxRetries = *c.MaxRetries
	}
	setDefault(&p.initialBackoff, DefaultInitialBackoff)
	setDefault(&p.multiplier, DefaultMultiplier)
	setDefault(&p.maxBackoff, DefaultMaxBackoff)
	setDefault(&p.retryAfterCap, DefaultRetryAfterCap)
	return p
}

// breakerPolicy is a BreakerConfig with defaults applied; 0 disables a trigger.
type breakerPolicy struct {
	consecutive    int
	errorRate      float64
	window         time.Duration
	minRequests    int
	openFor        time.Duration
	halfOpenProbes int
}

func (c BreakerConfig) policy() breakerPolicy {
	p := breakerPolicy{consecutive: c.ConsecutiveFailures, errorRate: c.ErrorRate, window: c.Window,
		minRequests: c.MinRequests, openFor: c.OpenFor, halfOpenProbes: c.HalfOpenProbes}
	setDefault(&p.consecutive, DefaultConsecutiveFailures)
	setDefault(&p.errorRate, DefaultErrorRate)
	setDefault(&p.window, DefaultWindow)
	setDefault(&p.minRequests, DefaultMinRequests)
	setDefault(&p.openFor, DefaultOpenFor)
	setDefault(&p.halfOpenProbes, DefaultHalfOpenProbes)
	p.consecutive = max(p.consecutive, 0)
	p.errorRate = max(p.errorRate, 0)
	return p
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate checks cfg without building anything: route and alias names, strategies, targets
// (provider/model of a provider in models, a model it declares if it declares any), weights,
// prices and policies. models maps each configured provider name to its declared models. Errors
// name the offending field; all problems found are joined.
func (cfg Config) Validate(models map[string][]string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkTarget := func(where, target string) {
		prov, model, ok := strings.Cut(target, "/")
		declared, known := models[prov]
		switch {
		case !ok || prov == "" || model == "":
			add("%s: target %q is not provider/model", where, target)
		case !known:
			add("%s: target %q names unknown provider %q", where, target, prov)
		case len(declared) > 0 && !slices.Contains(declared, model):
			add("%s: target %q: provider %q does not list model %q (models: %s)",
				where, target, prov, model, strings.Join(declared, ", "))
		}
	}
	for _, alias := range slices.Sorted(maps.Keys(cfg.Aliases)) {
		if alias == "" || strings.Contains(alias, "/") {
			add("aliases: %q: an alias must be non-empty and must not contain '/'", alias)
			continue
		}
		checkTarget(fmt.Sprintf("aliases: %q", alias), cfg.Aliases[alias])
	}
	names := map[string]bool{}
	for i, r := range cfg.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if r.Name != "" {
			where += " (" + r.Name + ")"
		}
		switch {
		case r.Name == "" || strings.Contains(r.Name, "/"):
			add("%s: name must be non-empty and must not contain '/'", where)
		case names[r.Name]:
			add("%s: duplicate route name", where)
		case cfg.Aliases[r.Name] != "":
			add("%s: name is also an alias", where)
		}
		names[r.Name] = true
		if r.Strategy != "" && !slices.Contains(strategies, r.Strategy) {
			add("%s: unknown strategy %q (known: priority, weighted, cost, latency, least-busy)", where, r.Strategy)
		}
		if len(r.Targets) == 0 {
			add("%s: at least one target is required", where)
		}
		seen := map[string]bool{}
		for j, t := range r.Targets {
			tw := fmt.Sprintf("%s.targets[%d]", where, j)
			checkTarget(tw, t.Model)
			if seen[t.Model] {
				add("%s: duplicate target %q", tw, t.Model)
			}
			seen[t.Model] = true
			if t.Weight < 0 {
				add("%s: weight must not be negative", tw)
			}
			if (t.InputPricePerMTok != nil && *t.InputPricePerMTok < 0) || (t.OutputPricePerMTok != nil && *t.OutputPricePerMTok < 0) {
				add("%s: prices must not be negative", tw)
			}
		}
		r.Retry.validate(where+".retry", add)
		b := r.Breaker
		if b.ErrorRate > 1 {
			add("%s.breaker.error_rate: must be at most 1, got %v", where, b.ErrorRate)
		}
		if b.Window < 0 || b.OpenFor < 0 || b.MinRequests < 0 || b.HalfOpenProbes < 0 {
			add("%s.breaker: window, open_for, min_requests and half_open_probes must not be negative", where)
		}
		if r.Timeout < 0 || r.AttemptTimeout < 0 || r.StreamIdleTimeout < 0 {
			add("%s: timeouts must not be negative", where)
		}
		validateLive(where, r, checkTarget, add)
	}
	for _, prov := range slices.Sorted(maps.Keys(cfg.ProviderRetry)) {
		where := fmt.Sprintf("providers (%s).retry", prov)
		if _, known := models[prov]; !known {
			add("%s: unknown provider %q", where, prov)
		}
		cfg.ProviderRetry[prov].validate(where, add)
	}
	for _, m := range slices.Sorted(maps.Keys(cfg.Prices)) {
		p := cfg.Prices[m]
		checkTarget(fmt.Sprintf("prices: %q", m), m)
		if p.InputPricePerMTok < 0 || p.OutputPricePerMTok < 0 {
			add("prices: %q: prices must not be negative", m)
		}
	}
	return errors.Join(errs...)
}

// validate reports c's invalid fields through add; where names the retry block.
func (c RetryConfig) validate(where string, add func(format string, args ...any)) {
	if c.MaxRetries != nil && *c.MaxRetries < 0 {
		add("%s.max_retries: must not be negative", where)
	}
	if c.InitialBackoff < 0 || c.MaxBackoff < 0 || c.RetryAfterCap < 0 {
		add("%s: durations must not be negative", where)
	}
	if c.Multiplier != 0 && c.Multiplier < 1 {
		add("%s.multiplier: must be at least 1, got %v", where, c.Multiplier)
	}
}
