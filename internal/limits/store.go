package limits

import (
	"context"
	"time"
)

// Bucket is one limit a request is counted against, as a Store sees it.
type Bucket struct {
	// Key names the bucket in the store. The Limiter builds it from the prefix, the tenant, the
	// scope and the dimension, and for windows the window's index, so buckets of different
	// tenants never share a key.
	Key string
	// Limit is how much fits in Period.
	Limit int64
	// Period is the span Limit is measured over.
	Period time.Duration
	// Window selects a fixed window (a counter that empties at each multiple of Period since the
	// Unix epoch: UTC days for 24h) instead of GCRA (a bucket that refills continuously at
	// Limit/Period and holds at most Limit).
	Window bool
	// Cost is what the request takes. Add may pass a negative cost to give some back.
	Cost int64
}

// BucketState is a bucket's state after Take: with the cost taken when Take took the costs,
// unchanged otherwise.
type BucketState struct {
	Allowed bool // the bucket had room for its cost
	// Remaining is what the bucket could still take now (0 when it is in debt).
	Remaining int64
	// Reset is the time until the bucket is full again (GCRA) or its window ends.
	Reset time.Duration
	// RetryAfter, when the bucket did not allow the cost, is the time until it would; -1 when
	// it never will (the cost exceeds the limit).
	RetryAfter time.Duration
}

// Store keeps buckets. Implementations are safe for concurrent use, and each call is atomic with
// respect to the others on the same keys (across instances, for a shared store).
type Store interface {
	// Take takes each bucket's cost if every bucket has room for it, and nothing otherwise. It
	// returns the buckets' states after the call (in the order of bs) and whether the costs were
	// taken.
	Take(ctx context.Context, now time.Time, bs []Bucket) ([]BucketState, bool, error)
	// Add adds each bucket's cost without checking the limits: a GCRA bucket may go into debt
	// (later requests wait it out) and a negative cost gives back, down to an empty bucket.
	Add(ctx context.Context, now time.Time, bs []Bucket) error
}
