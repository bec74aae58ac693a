package router

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Canary defaults.
const (
	DefaultCanaryWindow       = time.Minute
	DefaultCanaryMaxErrorRate = 0.2
	DefaultCanaryMinRequests  = 10
)

// CanaryConfig sends a share of a route's live traffic to a candidate target. A request drawn
// for the canary tries the candidate first and falls back to the route's targets, so a failing
// canary costs latency, not errors. When the candidate's failures (service and quota classes,
// as for breakers) exceed MaxErrorRate of its outcomes in the last Window, once there are at
// least MinRequests, the canary is rolled back: no more traffic goes to it until the next
// reload or repoint.
type CanaryConfig struct {
	Model        string        `yaml:"model"`                    // provider/model of the candidate
	Percent      float64       `yaml:"percent"`                  // share of requests, 0 to 100
	Window       time.Duration `yaml:"window,omitempty"`         // default 1m
	MaxErrorRate float64       `yaml:"max_error_rate,omitempty"` // default 0.2
	MinRequests  int           `yaml:"min_requests,omitempty"`   // default 10
}

// canaryRoute is a route's resolved canary and its live window. It belongs to one Router: a
// reload or repoint starts a fresh one.
type canaryRoute struct {
	target       Target
	percent      float64
	maxErrorRate float64
	minRequests  int
	window       time.Duration

	rolledBack atomic.Bool
	mu         sync.Mutex
	outcomes   breaker // only its buckets are used: the window of outcomes
	rolledAt   time.Time
}

// record adds an attempt's outcome on the canary target and rolls the canary back when its
// error rate over the window exceeds the threshold.
func (c *canaryRoute) record(ctx context.Context, st *State, route string, o outcome, now time.Time) {
	if o == outcomeNeutral {
		return
	}
	name := "success"
	if o == outcomeFailure {
		name = "failure"
	}
	st.live.canaryRequests.Add(ctx, 1, metric.WithAttributes(attribute.String("route", route),
		attribute.String("target", c.target.Name()), attribute.String("outcome", name)))
	c.mu.Lock()
	bk := c.outcomes.bucket(now, c.window)
	bk.total++
	if o == outcomeFailure {
		bk.failures++
	}
	total, failures := c.outcomes.window(now, c.window)
	trip := !c.rolledBack.Load() && total >= c.minRequests && float64(failures) > c.maxErrorRate*float64(total)
	if trip {
		c.rolledBack.Store(true)
		c.rolledAt = now
	}
	c.mu.Unlock()
	if trip {
		st.live.canaryRollbacks.Add(ctx, 1, metric.WithAttributes(attribute.String("route", route),
			attribute.String("target", c.target.Name())))
		st.log.Warn("canary rolled back", "route", route, "target", c.target.Name(),
			"failures", failures, "requests", total, "window", c.window.String(),
			"max_error_rate", c.maxErrorRate)
	}
}

func (c *canaryRoute) status(now time.Time) *CanaryStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	total, failures := c.outcomes.window(now, c.window)
	return &CanaryStatus{Target: c.target, Percent: c.percent, MaxErrorRate: c.maxErrorRate,
		MinRequests: c.minRequests, Window: c.window, WindowRequests: total, WindowFailures: failures,
		RolledBack: c.rolledBack.Load(), RolledBackAt: c.rolledAt}
}
