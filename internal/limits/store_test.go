package limits_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
)

// t0 is the suites' clock start: midday, so a day's window has 12 h left.
var t0 = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

func TestMemoryStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) (limits.Store, string) { return limits.NewMemory(), "m:" })
}

func TestRedisStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) (limits.Store, string) {
		c := redistest.Client(t)
		return limits.NewRedis(c), redistest.Prefix(t, c)
	})
}

type step struct {
	at      time.Duration // since t0
	add     bool          // Add instead of Take
	buckets []limits.Bucket
	taken   bool
	states  []limits.BucketState // compared when set
}

// runStoreSuite checks a Store's contract: GCRA and window arithmetic, all-or-nothing takes,
// debts and refunds. newStore returns an empty store and a key prefix unique to the test.
func runStoreSuite(t *testing.T, newStore func(*testing.T) (limits.Store, string)) {
	gcra := func(key string, limit, cost int64) limits.Bucket {
		return limits.Bucket{Key: key, Limit: limit, Period: time.Minute, Cost: cost}
	}
	window := func(key string, limit, cost int64) limits.Bucket {
		return limits.Bucket{Key: key, Limit: limit, Period: 24 * time.Hour, Window: true, Cost: cost}
	}
	ok := func(rem int64, reset time.Duration) limits.BucketState {
		return limits.BucketState{Allowed: true, Remaining: rem, Reset: reset}
	}
	no := func(rem int64, reset, retry time.Duration) limits.BucketState {
		return limits.BucketState{Remaining: rem, Reset: reset, RetryAfter: retry}
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"gcra burst then spaced", []step{
			{at: 0, buckets: []limits.Bucket{gcra("r", 3, 1)}, taken: true, states: []limits.BucketState{ok(2, 20*time.Second)}},
			{at: 0, buckets: []limits.Bucket{gcra("r", 3, 1)}, taken: true, states: []limits.BucketState{ok(1, 40*time.Second)}},
			{at: 0, buckets: []limits.Bucket{gcra("r", 3, 1)}, taken: true, states: []limits.BucketState{ok(0, time.Minute)}},
			{at: 0, buckets: []limits.Bucket{gcra("r", 3, 1)}, states: []limits.BucketState{no(0, time.Minute, 20*time.Second)}},
			{at: 19 * time.Second, buckets: []limits.Bucket{gcra("r", 3, 1)}, states: []limits.BucketState{no(0, 41*time.Second, time.Second)}},
			{at: 20 * time.Second, buckets: []limits.Bucket{gcra("r", 3, 1)}, taken: true, states: []limits.BucketState{ok(0, time.Minute)}},
			{at: 140 * time.Second, buckets: []limits.Bucket{gcra("r", 3, 1)}, taken: true, states: []limits.BucketState{ok(2, 20*time.Second)}},
		}},
		{"gcra token costs", []step{
			{at: 0, buckets: []limits.Bucket{gcra("t", 1000, 600)}, taken: true, states: []limits.BucketState{ok(400, 36*time.Second)}},
			{at: 0, buckets: []limits.Bucket{gcra("t", 1000, 500)}, states: []limits.BucketState{no(400, 36*time.Second, 6*time.Second)}},
			{at: 6 * time.Second, buckets: []limits.Bucket{gcra("t", 1000, 500)}, taken: true, states: []limits.BucketState{ok(0, time.Minute)}},
		}},
		{"cost over the limit never passes", []step{
			{at: 0, buckets: []limits.Bucket{gcra("big", 100, 101)}, states: []limits.BucketState{no(100, 0, -1)}},
			{at: 0, buckets: []limits.Bucket{window("bigd", 100, 101)}, states: []limits.BucketState{no(100, 12*time.Hour, -1)}},
		}},
		{"all or nothing", []step{
			{at: 0, buckets: []limits.Bucket{gcra("a", 1, 1)}, taken: true},
			{at: 0, buckets: []limits.Bucket{gcra("b", 5, 1), gcra("a", 1, 1)}, states: []limits.BucketState{ok(5, 0), no(0, time.Minute, time.Minute)}},
			{at: 0, buckets: []limits.Bucket{gcra("b", 5, 5)}, taken: true, states: []limits.BucketState{ok(0, time.Minute)}},
		}},
		{"daily window", []step{
			{at: 0, buckets: []limits.Bucket{window("d", 100, 60)}, taken: true, states: []limits.BucketState{ok(40, 12*time.Hour)}},
			{at: time.Hour, buckets: []limits.Bucket{window("d", 100, 50)}, states: []limits.BucketState{no(40, 11*time.Hour, 11*time.Hour)}},
			{at: time.Hour, buckets: []limits.Bucket{window("d", 100, 40)}, taken: true, states: []limits.BucketState{ok(0, 11*time.Hour)}},
			{at: time.Hour, buckets: []limits.Bucket{window("d", 100, 0)}, states: []limits.BucketState{no(0, 11*time.Hour, 11*time.Hour)}},
			{at: time.Hour, add: true, buckets: []limits.Bucket{window("d", 100, -30)}},
			{at: time.Hour, buckets: []limits.Bucket{window("d", 100, 30)}, taken: true, states: []limits.BucketState{ok(0, 11*time.Hour)}},
		}},
		{"debt is waited out, refunds give back", []step{
			{at: 0, buckets: []limits.Bucket{gcra("debt", 100, 50)}, taken: true},
			{at: 0, add: true, buckets: []limits.Bucket{gcra("debt", 100, 100)}},
			{at: 0, buckets: []limits.Bucket{gcra("debt", 100, 0)}, states: []limits.BucketState{no(0, 90*time.Second, 30*time.Second)}},
			{at: 0, add: true, buckets: []limits.Bucket{gcra("debt", 100, -120)}},
			{at: 0, buckets: []limits.Bucket{gcra("debt", 100, 70)}, taken: true, states: []limits.BucketState{ok(0, time.Minute)}},
			{at: 0, add: true, buckets: []limits.Bucket{gcra("debt", 100, -1000)}},
			{at: 0, buckets: []limits.Bucket{gcra("debt", 100, 100)}, taken: true, states: []limits.BucketState{ok(0, time.Minute)}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, prefix := newStore(t)
			ctx := context.Background()
			for i, st := range c.steps {
				bs := make([]limits.Bucket, len(st.buckets))
				for j, b := range st.buckets {
					b.Key = prefix + b.Key
					bs[j] = b
				}
				now := t0.Add(st.at)
				if st.add {
					if err := s.Add(ctx, now, bs); err != nil {
						t.Fatalf("step %d: Add: %v", i, err)
					}
					continue
				}
				states, taken, err := s.Take(ctx, now, bs)
				if err != nil {
					t.Fatalf("step %d: Take: %v", i, err)
				}
				if taken != st.taken {
					t.Errorf("step %d: taken = %v, want %v (states %+v)", i, taken, st.taken, states)
				}
				if st.states != nil {
					for j := range st.states {
						if got, want := states[j], st.states[j]; got != want {
							t.Errorf("step %d bucket %d: state = %+v, want %+v", i, j, got, want)
						}
					}
				}
			}
		})
	}
}
