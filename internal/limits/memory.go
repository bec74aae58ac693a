package limits

import (
	"context"
	"math"
	"sync"
	"time"
)

// sweepEvery is how often Memory drops buckets that are back to empty.
const sweepEvery = time.Minute

// Memory is a Store in the process's memory: limits then hold per instance. Buckets that are
// back to their initial state are dropped, so memory grows with the active buckets only.
type Memory struct {
	mu        sync.Mutex
	buckets   map[string]*memBucket
	nextSweep time.Time
}

// memBucket is a GCRA bucket's theoretical arrival time (Unix ns), or a window's count.
type memBucket struct {
	v       int64
	expires time.Time // the bucket is empty from then on
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{buckets: make(map[string]*memBucket)} }

// Len reports how many buckets the store holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, now time.Time, bs []Bucket) ([]BucketState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	states := make([]BucketState, len(bs))
	next := make([]int64, len(bs))
	ok := true
	for i, b := range bs {
		var v int64
		if e := m.buckets[b.Key]; e != nil && now.Before(e.expires) {
			v = e.v
		}
		states[i], next[i] = evaluate(b, v, now)
		ok = ok && states[i].Allowed
	}
	if !ok {
		// Nothing is taken: the buckets that had room report their state as it stays.
		for i, b := range bs {
			if states[i].Allowed {
				var v int64
				if e := m.buckets[b.Key]; e != nil && now.Before(e.expires) {
					v = e.v
				}
				b.Cost = 0
				states[i], _ = evaluate(b, v, now)
				states[i].Allowed, states[i].RetryAfter = true, 0
			}
		}
		return states, false, nil
	}
	for i, b := range bs {
		m.store(b, next[i], now)
	}
	return states, true, nil
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, now time.Time, bs []Bucket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range bs {
		var v int64
		if e := m.buckets[b.Key]; e != nil && now.Before(e.expires) {
			v = e.v
		}
		_, next := evaluate(b, v, now)
		m.store(b, next, now)
	}
	return nil
}

func (m *Memory) store(b Bucket, v int64, now time.Time) {
	exp := expiry(b, v, now)
	if !exp.After(now) {
		delete(m.buckets, b.Key)
		return
	}
	if e := m.buckets[b.Key]; e != nil {
		e.v, e.expires = v, exp
		return
	}
	m.buckets[b.Key] = &memBucket{v: v, expires: exp}
}

func (m *Memory) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepEvery)
	for k, e := range m.buckets {
		if !now.Before(e.expires) {
			delete(m.buckets, k)
		}
	}
}

// evaluate returns b's state if its cost were taken from stored value v at now, and the value to
// store then. It is the Go twin of the Lua in redis.go: keep them in step.
func evaluate(b Bucket, v int64, now time.Time) (BucketState, int64) {
	if b.Window {
		end := windowEnd(b.Period, now)
		next := max(v+b.Cost, 0)
		st := BucketState{Reset: end.Sub(now), Allowed: v+b.Cost <= b.Limit && (b.Cost > 0 || v < b.Limit)}
		switch {
		case st.Allowed:
			st.Remaining = max(b.Limit-next, 0)
		case b.Cost > b.Limit:
			st.Remaining, st.RetryAfter = max(b.Limit-v, 0), -1
		default:
			st.Remaining, st.RetryAfter = max(b.Limit-v, 0), st.Reset
		}
		return st, next
	}
	// GCRA: the bucket is full when its theoretical arrival time (tat) is now or earlier; each
	// unit of cost moves tat by the emission interval Period/Limit; the request is admitted when
	// the resulting tat is at most Period ahead.
	n := now.UnixNano()
	interval := float64(b.Period) / float64(b.Limit)
	tat := max(v, n)
	next := tat + int64(math.Round(float64(b.Cost)*interval))
	if b.Cost < 0 {
		next = max(next, n)
	}
	ahead := next - n // ns of refill the bucket lacks after taking the cost
	st := BucketState{Allowed: ahead <= int64(b.Period)}
	if st.Allowed {
		st.Reset = time.Duration(ahead)
		st.Remaining = remaining(int64(b.Period)-ahead, interval, b.Limit)
		return st, next
	}
	lack := tat - n
	st.Reset = time.Duration(lack)
	st.Remaining = remaining(int64(b.Period)-lack, interval, b.Limit)
	if b.Cost > b.Limit {
		st.RetryAfter = -1
	} else {
		st.RetryAfter = time.Duration(ahead - int64(b.Period))
	}
	return st, next
}

func remaining(room int64, interval float64, limit int64) int64 {
	if room <= 0 {
		return 0
	}
	return min(int64(float64(room)/interval), limit)
}

// expiry is when a bucket holding v becomes empty.
func expiry(b Bucket, v int64, now time.Time) time.Time {
	if b.Window {
		if v == 0 {
			return now
		}
		return windowEnd(b.Period, now)
	}
	return time.Unix(0, v)
}

// windowStart is the start of the fixed window of length p holding t, counted from the Unix epoch.
func windowStart(p time.Duration, t time.Time) time.Time {
	n := t.UnixNano()
	return time.Unix(0, n-n%int64(p))
}

func windowEnd(p time.Duration, t time.Time) time.Time { return windowStart(p, t).Add(p) }
