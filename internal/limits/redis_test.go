package limits_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
)

// redisLimiter returns a limiter on store c under a per-run prefix, with a frozen clock.
func redisLimiter(t *testing.T, c redis.UniversalClient, p limits.Policy) *limits.Limiter {
	t.Helper()
	l, err := limits.New(limits.NewRedis(c), p, limits.WithPrefix(redistest.Prefix(t, c)),
		limits.WithClock(func() time.Time { return t0 }), limits.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// exercise runs key and tenant limits through l: six buckets in one script call, which a
// cluster accepts only when they share a hash slot.
func exercise(t *testing.T, l *limits.Limiter) {
	t.Helper()
	ctx := context.Background()
	for _, tenant := range []string{"acme", "globex", "a}{b"} {
		for i := range 2 {
			res, err := l.Reserve(ctx, limits.Request{Tenant: tenant, Key: "dify", Tokens: 100})
			if err != nil {
				t.Fatalf("tenant %q request %d: %v", tenant, i, err)
			}
			res.Settle(ctx, 40, false)
		}
		res, err := l.Reserve(ctx, limits.Request{Tenant: tenant, Key: "dify", Tokens: 100})
		if llm.KindOf(err) != llm.KindRateLimited {
			t.Fatalf("tenant %q third request: %v, want rate limited by the key's rpm", tenant, err)
		}
		if res.Tokens.Remaining != 10_000-80 {
			t.Errorf("tenant %q: remaining tokens %d, want %d", tenant, res.Tokens.Remaining, 10_000-80)
		}
	}
}

var clusterPolicy = limits.Policy{
	Default: limits.Limits{RPM: 100, TPM: 10_000, TPD: 100_000},
	Keys:    map[string]limits.Limits{"dify": {RPM: 2, TPM: 20_000, TPD: 200_000}},
}

func TestRedisLimiter(t *testing.T) {
	exercise(t, redisLimiter(t, redistest.Client(t), clusterPolicy))
}

func TestRedisClusterLimiter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three redis-server processes")
	}
	exercise(t, redisLimiter(t, redistest.Cluster(t), clusterPolicy))
}

// TestRedisUnreachable runs a limiter on a Redis that refuses connections: with FailLocal the
// limits hold in memory and every failure is counted.
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	l, err := limits.New(limits.NewRedis(c), limits.Policy{Default: limits.Limits{RPM: 1}},
		limits.WithClock(func() time.Time { return t0 }), limits.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Reserve(ctx, limits.Request{Tenant: "t"}); err != nil {
		t.Fatalf("first request: %v", err)
	}
	_, err = l.Reserve(ctx, limits.Request{Tenant: "t"})
	if e, ok := errors.AsType[*llm.Error](err); !ok || e.Kind != llm.KindRateLimited {
		t.Fatalf("second request: %v, want rate limited by the local fallback", err)
	}
	if n := l.StoreErrors(); n != 2 {
		t.Errorf("StoreErrors = %d, want 2", n)
	}
}

// BenchmarkReserveSettle measures one admitted request (key and tenant limits: six buckets)
// reserved and settled, in memory and in the test Redis.
func BenchmarkReserveSettle(b *testing.B) {
	stores := map[string]func(*testing.B) (limits.Store, string){
		"memory": func(*testing.B) (limits.Store, string) { return limits.NewMemory(), limits.DefaultPrefix },
		"redis": func(b *testing.B) (limits.Store, string) {
			c := redistest.Client(b)
			return limits.NewRedis(c), redistest.Prefix(b, c)
		},
	}
	big := int64(1) << 40
	p := limits.Policy{Default: limits.Limits{RPM: big, TPM: big, TPD: big}, Keys: map[string]limits.Limits{"dify": {RPM: big, TPM: big, TPD: big}}}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			store, prefix := stores[name](b)
			l, err := limits.New(store, p, limits.WithPrefix(prefix))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := l.Reserve(ctx, limits.Request{Tenant: "acme", Key: "dify", Tokens: 500})
				if err != nil {
					b.Fatal(err)
				}
				res.Settle(ctx, 300, false)
			}
		})
	}
}
