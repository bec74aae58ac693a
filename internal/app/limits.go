package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/redisx"
)

// Limit backends (LimitsConfig.Backend).
const (
	LimitBackendMemory = "memory" // per instance: each instance enforces the whole limit
	LimitBackendRedis  = "redis"  // shared by every instance with the same Redis and prefix
)

// LimitsConfig is the limits section (docs/limits.md): requests and tokens per minute and tokens
// per UTC day, per tenant and per API key. With no limits set the limiter is off.
//
//	limits:
//	  backend: redis
//	  redis: {addrs: ["redis:6379"]}
//	  default: {rpm: 600, tpm: 1000000}   # each tenant without its own entry
//	  tenants: {acme: {rpm: 60, tpm: 100000, tpd: 2000000}}
//	  keys: {dify: {rpm: 30}}             # by API key name, on top of the key's tenant
type LimitsConfig struct {
	// Backend is where the buckets live: "memory" (default) or "redis".
	Backend string `yaml:"backend"`
	// Redis is the shared store of backend redis.
	Redis redisx.Config `yaml:"redis"`
	// Prefix starts every Redis key (default "sy:rl:"); instances sharing a prefix share limits.
	Prefix string `yaml:"prefix"`
	// OnRedisError is what a request does when Redis fails: "local" (default: it is counted in
	// the instance's memory instead, so limits hold per instance), "open" (admitted unchecked)
	// or "closed" (refused as unavailable). Failures are counted in
	// switchyard.limits.store_errors and logged.
	OnRedisError string `yaml:"on_redis_error"`
	// The limits: default, tenants and keys.
	limits.Policy `yaml:",inline"`
}

func (c *LimitsConfig) applyDefaults() {
	setDefault(&c.Backend, LimitBackendMemory)
	setDefault(&c.Prefix, limits.DefaultPrefix)
	setDefault(&c.OnRedisError, limits.FailLocal)
}

// validate reports the section's errors through add.
func (c *LimitsConfig) validate(add func(format string, args ...any)) {
	switch c.Backend {
	case LimitBackendMemory:
	case LimitBackendRedis:
		if len(c.Redis.Addrs) == 0 {
			add("limits.redis.addrs: required by backend %q", c.Backend)
		}
	default:
		add("limits.backend: unknown backend %q (known: %s, %s)", c.Backend, LimitBackendMemory, LimitBackendRedis)
	}
	switch c.OnRedisError {
	case limits.FailLocal, limits.FailOpen, limits.FailClosed:
	default:
		add("limits.on_redis_error: unknown mode %q (known: %s, %s, %s)", c.OnRedisError, limits.FailLocal, limits.FailOpen, limits.FailClosed)
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		add("limits.prefix: must not contain braces")
	}
	if err := c.Policy.Validate(); err != nil {
		add("limits: %v", err)
	}
}

// buildLimits returns the limiter the section describes, nil when it sets no limits, and a
// function releasing its Redis connection (call it once the servers have stopped). A Redis that
// does not answer at start fails it; later failures follow on_redis_error.
func buildLimits(ctx context.Context, c LimitsConfig, mp metric.MeterProvider, log *slog.Logger) (*limits.Limiter, func(), error) {
	if c.Policy.IsZero() {
		return nil, func() {}, nil
	}
	opts := []limits.Option{limits.WithPrefix(c.Prefix), limits.WithOnStoreError(c.OnRedisError), limits.WithLogger(log), limits.WithMeterProvider(mp)}
	if c.Backend != LimitBackendRedis {
		l, err := limits.New(limits.NewMemory(), c.Policy, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("limits: %w", err)
		}
		return l, func() {}, nil
	}
	rdb, err := redisx.NewClient(c.Redis)
	if err != nil {
		return nil, nil, fmt.Errorf("limits: %w", err)
	}
	closeRedis := func() {
		if err := rdb.Close(); err != nil {
			log.Warn("closing the limits Redis client", "err", err)
		}
	}
	if err := redisx.Ping(ctx, rdb); err != nil {
		closeRedis()
		return nil, nil, fmt.Errorf("limits: redis %s: %w", strings.Join(c.Redis.Addrs, ","), err)
	}
	l, err := limits.New(limits.NewRedis(rdb), c.Policy, opts...)
	if err != nil {
		closeRedis()
		return nil, nil, fmt.Errorf("limits: %w", err)
	}
	return l, closeRedis, nil
}
