package limits_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/llm"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(t *testing.T, store limits.Store, p limits.Policy, opts ...limits.Option) (*limits.Limiter, *clock) {
	t.Helper()
	c := &clock{t: t0}
	l, err := limits.New(store, p, append([]limits.Option{limits.WithClock(c.now), limits.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestReserveKinds(t *testing.T) {
	p := limits.Policy{
		Default: limits.Limits{RPM: 2},
		Tenants: map[string]limits.Limits{"acme": {RPM: 100, TPM: 1000, TPD: 1500}},
		Keys:    map[string]limits.Limits{"dify": {RPM: 3}},
	}
	cases := []struct {
		name     string
		reqs     []limits.Request // all admitted
		last     limits.Request
		kind     llm.Kind
		code     string
		retry    time.Duration // wanted RetryAfter of the error
		inMsg    string
		requests limits.Quota
		tokens   limits.Quota
	}{
		{name: "default tenant rpm", reqs: []limits.Request{{Tenant: "t1"}, {Tenant: "t1"}}, last: limits.Request{Tenant: "t1"},
			kind: llm.KindRateLimited, code: "rate_limit_exceeded", retry: 30 * time.Second, inMsg: `requests per minute (RPM) of tenant "t1"`,
			requests: limits.Quota{Limit: 2, Remaining: 0, Reset: time.Minute}},
		{name: "key rpm under tenant", reqs: []limits.Request{{Tenant: "acme", Key: "dify"}, {Tenant: "acme", Key: "dify"}, {Tenant: "acme", Key: "dify"}},
			last: limits.Request{Tenant: "acme", Key: "dify"}, kind: llm.KindRateLimited, code: "rate_limit_exceeded", retry: 20 * time.Second,
			inMsg: `of key "dify"`, requests: limits.Quota{Limit: 3, Remaining: 0, Reset: time.Minute}, tokens: limits.Quota{Limit: 1000, Remaining: 1000}},
		{name: "other keys of the tenant are not held back", reqs: []limits.Request{{Tenant: "acme", Key: "dify"}, {Tenant: "acme", Key: "dify"}, {Tenant: "acme", Key: "dify"}},
			last: limits.Request{Tenant: "acme", Key: "script"}, requests: limits.Quota{Limit: 100, Remaining: 96, Reset: 2400 * time.Millisecond}, tokens: limits.Quota{Limit: 1000, Remaining: 1000}},
		{name: "tpm", reqs: []limits.Request{{Tenant: "acme", Tokens: 900}}, last: limits.Request{Tenant: "acme", Tokens: 200},
			kind: llm.KindRateLimited, code: "rate_limit_exceeded", retry: 6 * time.Second, inMsg: "tokens per minute (TPM)",
			requests: limits.Quota{Limit: 100, Remaining: 99, Reset: 600 * time.Millisecond}, tokens: limits.Quota{Limit: 1000, Remaining: 100, Reset: 54 * time.Second}},
		{name: "request larger than tpm", last: limits.Request{Tenant: "acme", Tokens: 1001}, kind: llm.KindRateLimited, code: "rate_limit_exceeded",
			inMsg: "Request too large", requests: limits.Quota{Limit: 100, Remaining: 100}, tokens: limits.Quota{Limit: 1000, Remaining: 1000}},
		{name: "daily quota", reqs: []limits.Request{{Tenant: "acme", Tokens: 1000}}, last: limits.Request{Tenant: "acme", Tokens: 600},
			kind: llm.KindQuotaExceeded, code: "insufficient_quota", retry: 12 * time.Hour, inMsg: "tokens per day (TPD)",
			requests: limits.Quota{Limit: 100, Remaining: 99, Reset: 600 * time.Millisecond}, tokens: limits.Quota{Limit: 1000, Remaining: 0, Reset: time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, _ := newLimiter(t, limits.NewMemory(), p)
			ctx := context.Background()
			for i, r := range c.reqs {
				if _, err := l.Reserve(ctx, r); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			res, err := l.Reserve(ctx, c.last)
			if res == nil {
				t.Fatal("nil reservation")
			}
			if res.Requests != c.requests || res.Tokens != c.tokens {
				t.Errorf("quotas = %+v %+v, want %+v %+v", res.Requests, res.Tokens, c.requests, c.tokens)
			}
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := errors.AsType[*llm.Error](err)
			if !ok {
				t.Fatalf("err = %v, want *llm.Error", err)
			}
			if e.Kind != c.kind || e.Code != c.code || e.RetryAfter != c.retry || !strings.Contains(e.Message, c.inMsg) {
				t.Errorf("err = %v %q %v %q; want %v %q %v containing %q", e.Kind, e.Code, e.RetryAfter, e.Message, c.kind, c.code, c.retry, c.inMsg)
			}
		})
	}
}

func TestTenantsDoNotShareBuckets(t *testing.T) {
	for _, tenants := range [][2]string{{"a", "b"}, {"a}:t:x", "a"}, {"x:k:y", "x"}} {
		l, _ := newLimiter(t, limits.NewMemory(), limits.Policy{Default: limits.Limits{RPM: 1}, Keys: map[string]limits.Limits{"y": {RPM: 1}}})
		ctx := context.Background()
		if _, err := l.Reserve(ctx, limits.Request{Tenant: tenants[0], Key: "y"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Reserve(ctx, limits.Request{Tenant: tenants[1], Key: "y"}); err != nil {
			t.Errorf("tenant %q held back by tenant %q: %v", tenants[1], tenants[0], err)
		}
	}
}

func TestSettle(t *testing.T) {
	p := limits.Policy{Default: limits.Limits{TPM: 1000, TPD: 10_000}}
	cases := []struct {
		name      string
		used      int64
		failed    bool
		remaining int64 // tokens remaining per minute afterwards
	}{
		{"real usage lower", 100, false, 900},
		{"real usage higher", 700, false, 300},
		{"usage beyond the limit is a debt", 1500, false, 0},
		{"unknown usage keeps the estimate", -1, false, 600},
		{"failed without usage gives all back", -1, true, 1000},
		{"failed with usage counts it", 50, true, 950},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, _ := newLimiter(t, limits.NewMemory(), p)
			ctx := context.Background()
			res, err := l.Reserve(ctx, limits.Request{Tenant: "t", Tokens: 400})
			if err != nil {
				t.Fatal(err)
			}
			res.Settle(ctx, c.used, c.failed)
			res.Settle(ctx, 0, true) // a second Settle changes nothing
			probe, _ := l.Reserve(ctx, limits.Request{Tenant: "t"})
			if probe.Tokens.Remaining != c.remaining {
				t.Errorf("remaining tokens = %d, want %d", probe.Tokens.Remaining, c.remaining)
			}
		})
	}
}

func TestDebtIsWaitedOut(t *testing.T) {
	l, clk := newLimiter(t, limits.NewMemory(), limits.Policy{Default: limits.Limits{TPM: 600}})
	ctx := context.Background()
	res, err := l.Reserve(ctx, limits.Request{Tenant: "t", Tokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	res.Settle(ctx, 900, false) // 300 over the limit: 30 s of debt, then 10 s per 100 tokens
	_, err = l.Reserve(ctx, limits.Request{Tenant: "t", Tokens: 100})
	if e, _ := errors.AsType[*llm.Error](err); e == nil || e.RetryAfter != 40*time.Second {
		t.Fatalf("err = %v, want a wait of 40s", err)
	}
	clk.advance(40 * time.Second)
	if _, err := l.Reserve(ctx, limits.Request{Tenant: "t", Tokens: 100}); err != nil {
		t.Fatalf("after the debt: %v", err)
	}
}

func TestNoLimits(t *testing.T) {
	store := &failingStore{}
	l, _ := newLimiter(t, store, limits.Policy{Tenants: map[string]limits.Limits{"x": {RPM: 1}}})
	res, err := l.Reserve(context.Background(), limits.Request{Tenant: "other", Key: "k", Tokens: 5})
	if err != nil || res.Requests != (limits.Quota{}) || res.Tokens != (limits.Quota{}) {
		t.Errorf("Reserve = %+v, %v; want no quotas", res, err)
	}
	if store.calls != 0 {
		t.Errorf("store called %d times for a tenant without limits", store.calls)
	}
}

// failingStore fails every call.
type failingStore struct{ calls int }

func (s *failingStore) Take(context.Context, time.Time, []limits.Bucket) ([]limits.BucketState, bool, error) {
	s.calls++
	return nil, false, errors.New("connection refused")
}

func (s *failingStore) Add(context.Context, time.Time, []limits.Bucket) error {
	s.calls++
	return errors.New("connection refused")
}

func TestStoreErrorModes(t *testing.T) {
	p := limits.Policy{Default: limits.Limits{RPM: 1}}
	cases := []struct {
		mode     string
		admitted int // of 2 requests
		kind     llm.Kind
	}{
		{limits.FailLocal, 1, llm.KindRateLimited},
		{limits.FailOpen, 2, 0},
		{limits.FailClosed, 0, llm.KindUnavailable},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			l, _ := newLimiter(t, &failingStore{}, p, limits.WithOnStoreError(c.mode))
			admitted := 0
			var last error
			for range 2 {
				res, err := l.Reserve(context.Background(), limits.Request{Tenant: "t", Tokens: 10})
				if err == nil {
					admitted++
					res.Settle(context.Background(), 3, false)
				} else {
					last = err
				}
			}
			if admitted != c.admitted {
				t.Errorf("admitted %d, want %d", admitted, c.admitted)
			}
			if c.admitted < 2 && llm.KindOf(last) != c.kind {
				t.Errorf("error %v, want kind %v", last, c.kind)
			}
			if l.StoreErrors() < 2 {
				t.Errorf("StoreErrors = %d, want at least 2", l.StoreErrors())
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	cases := []struct {
		name string
		p    limits.Policy
		opts []limits.Option
	}{
		{"negative", limits.Policy{Keys: map[string]limits.Limits{"k": {TPM: -1}}}, nil},
		{"mode", limits.Policy{}, []limits.Option{limits.WithOnStoreError("maybe")}},
		{"prefix", limits.Policy{}, []limits.Option{limits.WithPrefix("a{b}")}},
	}
	for _, c := range cases {
		if _, err := limits.New(limits.NewMemory(), c.p, c.opts...); err == nil {
			t.Errorf("%s: New succeeded", c.name)
		}
	}
}

func TestFormatReset(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 1500 * time.Microsecond: "2ms", 999 * time.Millisecond: "999ms",
		time.Second: "1s", 1001 * time.Millisecond: "2s", 6 * time.Minute: "6m0s", 12 * time.Hour: "12h0m0s",
	} {
		if got := limits.FormatReset(d); got != want {
			t.Errorf("FormatReset(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestMemoryDropsFullBuckets(t *testing.T) {
	m := limits.NewMemory()
	ctx := context.Background()
	b := []limits.Bucket{{Key: "k", Limit: 60, Period: time.Minute, Cost: 1}}
	if _, _, err := m.Take(ctx, t0, b); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 1 {
		t.Fatalf("Len = %d after a take", m.Len())
	}
	b[0].Key = "other"
	if _, _, err := m.Take(ctx, t0.Add(2*time.Minute), b); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 1 {
		t.Errorf("Len = %d, want 1: the refilled bucket should be swept", m.Len())
	}
}

// recoveringStore is a memory store that fails while down is set, counting Take calls.
type recoveringStore struct {
	*limits.Memory
	down  atomic.Bool
	takes atomic.Int32
}

func (s *recoveringStore) Take(ctx context.Context, now time.Time, bs []limits.Bucket) ([]limits.BucketState, bool, error) {
	s.takes.Add(1)
	if s.down.Load() {
		return nil, false, errors.New("connection refused")
	}
	return s.Memory.Take(ctx, now, bs)
}

// TestStoreDownSkipped: after a failed Take the store is not asked for a second (the requests go
// to the error mode at once, each counted as a store error); then one request asks it again, and
// once it answers every request uses it again.
func TestStoreDownSkipped(t *testing.T) {
	store := &recoveringStore{Memory: limits.NewMemory()}
	store.down.Store(true)
	l, _ := newLimiter(t, store, limits.Policy{Default: limits.Limits{RPM: 1000}})
	reserve := func() {
		if _, err := l.Reserve(context.Background(), limits.Request{Tenant: "t"}); err != nil {
			t.Fatalf("Reserve: %v (local fallback admits)", err)
		}
	}
	for range 5 {
		reserve()
	}
	if n := store.takes.Load(); n != 1 || l.StoreErrors() != 5 {
		t.Errorf("store asked %d times, %d store errors; want 1 and 5", n, l.StoreErrors())
	}
	store.down.Store(false)
	time.Sleep(1100 * time.Millisecond)
	for range 3 {
		reserve()
	}
	if n := store.takes.Load(); n != 4 || l.StoreErrors() != 5 {
		t.Errorf("after recovery: store asked %d times, %d store errors; want 4 and 5", n, l.StoreErrors())
	}
}
