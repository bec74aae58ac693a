package router

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Live switching: routers built from a previous one (Reconfigure, Repoint) measure the "model
// switch time", from the change to the first request a new target served; shadow traffic and
// canaries with automatic rollback (see shadow.go, canary.go); the count of executions in flight
// on a router, so a reload can close the providers it replaced once they are idle.

// Metric names of live switching, shadow traffic and canaries.
const (
	MetricSwitchTime      = "switchyard.router.switch_time"
	MetricShadowRequests  = "switchyard.router.shadow.requests"
	MetricShadowDuration  = "switchyard.router.shadow.duration"
	MetricCanaryRequests  = "switchyard.router.canary.requests"
	MetricCanaryRollbacks = "switchyard.router.canary.rollbacks"
)

// maxShadowInFlight bounds the shadow calls running at once per State; a request drawn for
// shadowing while that many run is not mirrored (counted with outcome "dropped").
const maxShadowInFlight = 64

// liveMetrics are the instruments of live switching, shadow traffic and canaries.
type liveMetrics struct {
	switchTime      metric.Float64Histogram
	shadowRequests  metric.Int64Counter
	shadowDuration  metric.Float64Histogram
	canaryRequests  metric.Int64Counter
	canaryRollbacks metric.Int64Counter
}

func newLiveMetrics(m metric.Meter) liveMetrics {
	var l liveMetrics
	// Instrument errors only happen for invalid names or options, which are constants here.
	l.switchTime, _ = m.Float64Histogram(MetricSwitchTime, metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300),
		metric.WithDescription("Time from a routing change (reload, repoint) to the first request served by a new target."))
	l.shadowRequests, _ = m.Int64Counter(MetricShadowRequests,
		metric.WithDescription("Mirrored (shadow) requests by outcome: success, failure, dropped."))
	l.shadowDuration, _ = m.Float64Histogram(MetricShadowDuration, metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
		metric.WithDescription("Latency of mirrored (shadow) requests."))
	l.canaryRequests, _ = m.Int64Counter(MetricCanaryRequests,
		metric.WithDescription("Attempts sent to a canary target by outcome: success, failure."))
	l.canaryRollbacks, _ = m.Int64Counter(MetricCanaryRollbacks,
		metric.WithDescription("Canaries rolled back because their error rate exceeded the threshold."))
	return l
}

// WithLogger sets the logger of switch, shadow and canary events (default slog.Default()).
func WithLogger(l *slog.Logger) StateOption { return func(o *stateOptions) { o.log = l } }

// Reconfigure builds the router that replaces r after a config change: Build over r's State,
// so breakers and latency figures carry over. Routes whose targets changed measure their switch
// time (MetricSwitchTime and a log line) at the first request a new target serves. Canary
// rollbacks and repoints are not carried over: the new router starts from cfg.
func (r *Router) Reconfigure(backends map[string]Backend, cfg Config) (*Router, error) {
	nr, err := Build(backends, cfg, r.state)
	if err != nil {
		return nil, err
	}
	nr.watchSwitches(r)
	return nr, nil
}

// Repoint returns a router like r with name pointed at targets ("provider/model", in priority
// order); r is unchanged. An alias stays an alias when given one target and becomes a priority
// route with several; a route keeps its strategy, policies, shadow and canary, and the weights
// and prices of targets it already had; an unknown name becomes a new alias or route. The
// result is validated like a config (Build). The switch time is measured as for Reconfigure.
func (r *Router) Repoint(name string, targets []string) (*Router, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("router: repoint %q: at least one target is required", name)
	}
	cfg := Config{Routes: slices.Clone(r.cfg.Routes), Aliases: maps.Clone(r.cfg.Aliases), Prices: r.cfg.Prices}
	if cfg.Aliases == nil {
		cfg.Aliases = map[string]string{}
	}
	i := slices.IndexFunc(cfg.Routes, func(rc RouteConfig) bool { return rc.Name == name })
	switch {
	case i >= 0:
		rc := cfg.Routes[i]
		old := rc.Targets
		rc.Targets = make([]TargetConfig, len(targets))
		for j, m := range targets {
			rc.Targets[j] = TargetConfig{Model: m}
			if k := slices.IndexFunc(old, func(t TargetConfig) bool { return t.Model == m }); k >= 0 {
				rc.Targets[j] = old[k]
			}
		}
		cfg.Routes[i] = rc
	case len(targets) == 1:
		cfg.Aliases[name] = targets[0]
	default:
		delete(cfg.Aliases, name)
		rc := RouteConfig{Name: name}
		for _, m := range targets {
			rc.Targets = append(rc.Targets, TargetConfig{Model: m})
		}
		cfg.Routes = append(cfg.Routes, rc)
	}
	nr, err := Build(r.backends, cfg, r.state)
	if err != nil {
		return nil, fmt.Errorf("repoint %q: %w", name, err)
	}
	nr.watchSwitches(r)
	return nr, nil
}

// Config returns the routing config r was built from (after Repoint: with the repoint applied).
// The caller must not modify it.
func (r *Router) Config() Config { return r.cfg }

// InFlight returns the number of requests executing on r's plans, shadow calls included. A
// reload closes the providers it replaced once the old router's count has dropped to zero.
func (r *Router) InFlight() int64 { return r.inflight.Load() }

// switchWatch measures one route's switch time: from at to the first success of a fresh target.
type switchWatch struct {
	at    time.Time
	fresh map[TargetKey]bool
	done  atomic.Bool
}

// watchSwitches marks r's routes whose targets differ from old's: the targets old's route did
// not have, or, when only the order changed, the new first target. A route new in r watches all
// its targets. Called before r is published.
func (r *Router) watchSwitches(old *Router) {
	now := r.state.clock.Now()
	for name, rt := range r.routes {
		fresh := map[TargetKey]bool{}
		prev, ok := old.routes[name]
		if !ok {
			for _, t := range rt.targets {
				fresh[t.Key()] = true
			}
		} else {
			had := map[TargetKey]bool{}
			for _, t := range prev.targets {
				had[t.Key()] = true
			}
			for _, t := range rt.targets {
				if !had[t.Key()] {
					fresh[t.Key()] = true
				}
			}
			if len(fresh) == 0 && rt.targets[0].Key() != prev.targets[0].Key() {
				fresh[rt.targets[0].Key()] = true
			}
		}
		if len(fresh) > 0 {
			rt.watch = &switchWatch{at: now, fresh: fresh}
		}
	}
}

// served notes that t answered a request of the route; the first time a fresh target does, the
// switch time is recorded.
func (w *switchWatch) served(ctx context.Context, st *State, route string, t Target, now time.Time) {
	if !w.fresh[t.Key()] || w.done.Load() || !w.done.CompareAndSwap(false, true) {
		return
	}
	d := now.Sub(w.at)
	st.live.switchTime.Record(ctx, d.Seconds(), metric.WithAttributes(
		attribute.String("route", route), attribute.String("target", t.Name())))
	st.log.Info("model switch", "route", route, "target", t.Name(), "switch_time", d.String(),
		"switch_seconds", d.Seconds())
}

// RouteInfo describes one route or alias of a router, for admin listings.
type RouteInfo struct {
	Name     string
	Alias    bool // configured under aliases: (one target, default policies)
	Strategy Strategy
	Targets  []Target
	Shadow   *ShadowStatus // nil without shadow traffic
	Canary   *CanaryStatus // nil without a canary
}

// ShadowStatus describes a route's shadow traffic.
type ShadowStatus struct {
	Target  Target
	Percent float64
}

// CanaryStatus describes a route's canary and its rollback state.
type CanaryStatus struct {
	Target       Target
	Percent      float64
	MaxErrorRate float64
	MinRequests  int
	Window       time.Duration
	// WindowRequests and WindowFailures are the canary's outcomes in the current window.
	WindowRequests, WindowFailures int
	RolledBack                     bool
	RolledBackAt                   time.Time
}

// Routes lists r's routes and aliases by name.
func (r *Router) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(r.routes))
	now := r.state.clock.Now()
	for _, name := range sortedKeys(r.routes) {
		rt := r.routes[name]
		ri := RouteInfo{Name: name, Alias: rt.alias, Strategy: rt.strategy, Targets: slices.Clone(rt.targets)}
		if s := rt.shadow; s != nil {
			ri.Shadow = &ShadowStatus{Target: s.target, Percent: s.percent}
		}
		if c := rt.canary; c != nil {
			ri.Canary = c.status(now)
		}
		out = append(out, ri)
	}
	return out
}

// decorate completes a plan of rt: the router's in-flight count, the switch watch, and the
// canary and shadow draws (each from the State's Rand, canary first).
func (r *Router) decorate(p *Plan, rt *route) {
	p.router, p.rt = r, rt
	if c := rt.canary; c != nil && !c.rolledBack.Load() && r.state.rand()*100 < c.percent {
		p.Candidates = append([]Candidate{{Target: c.target, Score: math.NaN(), Why: "canary"}}, p.Candidates...)
		p.canary = true
	}
	if s := rt.shadow; s != nil && r.state.rand()*100 < s.percent {
		p.shadow = s
	}
}

// enter counts an execution of p on its router; leave ends it.
func (p *Plan) enter() {
	if p.router != nil {
		p.router.inflight.Add(1)
	}
}

func (p *Plan) leave() {
	if p.router != nil {
		p.router.inflight.Add(-1)
	}
}

// observe is called with the outcome of every attempt of p: it feeds the canary's window and
// the route's switch watch.
func (p *Plan) observe(ctx context.Context, t Target, o outcome, now time.Time) {
	if p.rt == nil {
		return
	}
	if p.canary && t.Key() == p.rt.canary.target.Key() {
		p.rt.canary.record(ctx, p.state, p.rt.name, o, now)
	}
	if o == outcomeSuccess && p.rt.watch != nil {
		p.rt.watch.served(ctx, p.state, p.rt.name, t, now)
	}
}

// validateLive checks a route's shadow and canary settings.
func validateLive(where string, r RouteConfig, checkTarget func(where, target string), add func(string, ...any)) {
	isTarget := func(m string) bool {
		return slices.ContainsFunc(r.Targets, func(t TargetConfig) bool { return t.Model == m })
	}
	if s := r.Shadow; s != nil {
		checkTarget(where+".shadow", s.Model)
		if isTarget(s.Model) {
			add("%s.shadow: %q is already a target of the route", where, s.Model)
		}
		if s.Percent < 0 || s.Percent > 100 {
			add("%s.shadow.percent: must be from 0 to 100, got %v", where, s.Percent)
		}
		if s.Timeout < 0 {
			add("%s.shadow.timeout: must not be negative", where)
		}
	}
	if c := r.Canary; c != nil {
		checkTarget(where+".canary", c.Model)
		if isTarget(c.Model) {
			add("%s.canary: %q is already a target of the route", where, c.Model)
		}
		if c.Percent < 0 || c.Percent > 100 {
			add("%s.canary.percent: must be from 0 to 100, got %v", where, c.Percent)
		}
		if c.MaxErrorRate < 0 || c.MaxErrorRate > 1 {
			add("%s.canary.max_error_rate: must be from 0 to 1, got %v", where, c.MaxErrorRate)
		}
		if c.Window < 0 || c.MinRequests < 0 {
			add("%s.canary: window and min_requests must not be negative", where)
		}
	}
}

// buildLive resolves rc's shadow and canary onto rt.
func (r *Router) buildLive(rt *route, rc RouteConfig) error {
	if s := rc.Shadow; s != nil {
		t, err := r.resolveQualified(s.Model)
		if err != nil {
			return fmt.Errorf("router: route %q: shadow: %w", rc.Name, err)
		}
		rt.shadow = &shadowRoute{target: t, percent: s.Percent, timeout: s.Timeout}
		setDefault(&rt.shadow.timeout, DefaultShadowTimeout)
	}
	if c := rc.Canary; c != nil {
		t, err := r.resolveQualified(c.Model)
		if err != nil {
			return fmt.Errorf("router: route %q: canary: %w", rc.Name, err)
		}
		rt.canary = &canaryRoute{target: t, percent: c.Percent, maxErrorRate: c.MaxErrorRate,
			minRequests: c.MinRequests, window: c.Window}
		setDefault(&rt.canary.maxErrorRate, DefaultCanaryMaxErrorRate)
		setDefault(&rt.canary.minRequests, DefaultCanaryMinRequests)
		setDefault(&rt.canary.window, DefaultCanaryWindow)
	}
	return nil
}
