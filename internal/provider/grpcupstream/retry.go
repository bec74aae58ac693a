package grpcupstream

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxRetryAfter caps how long an upstream's retry_after_seconds may hold a retry back.
const maxRetryAfter = 30 * time.Second

// retryPolicy is DESIGN.md's retry policy for gRPC upstreams, applied through go-grpc-middleware's
// retry interceptors with per-call options.
type retryPolicy struct {
	base       time.Duration // first backoff ceiling; doubled for each later retry
	maxRetries uint
}

// callOptions returns the retry options of one call. received, when not nil, is set once a stream
// has delivered its first message; from then on nothing is retried (the caller may already have
// forwarded that message).
func (p retryPolicy) callOptions(ctx context.Context, received *bool) []grpc.CallOption {
	if p.maxRetries == 0 {
		return []grpc.CallOption{retry.Disable()}
	}
	a := &attempts{policy: p, ctx: ctx, received: received}
	return []grpc.CallOption{
		retry.WithMax(p.maxRetries + 1), // the interceptor counts the first attempt too
		retry.WithRetriable(a.retriable),
		retry.WithBackoff(a.backoff),
	}
}

// attempts is the retry state of one call. The interceptor calls retriable after each failed
// attempt and then backoff before the next, from the caller's goroutine, so it needs no lock.
type attempts struct {
	policy   retryPolicy
	ctx      context.Context
	received *bool
	failures int
	wait     time.Duration // decided by retriable, returned by backoff
}

// retriable decides whether err is worth another attempt and how long to wait first: full
// jitter over base×2^(n−1), at least the upstream's retry_after_seconds (capped). A wait that
// would end after the call's deadline means no retry: the caller gets the upstream's error now
// rather than a timeout later.
func (a *attempts) retriable(err error) bool {
	if a.received != nil && *a.received {
		return false
	}
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable && st.Code() != codes.ResourceExhausted {
		return false
	}
	e := fromStatus(st, "", false)
	if !e.Kind.Info().Retryable {
		return false // a billing quota or a message-size limit does not clear by waiting
	}
	a.failures++
	ceiling := a.policy.base << (a.failures - 1)
	if ceiling <= 0 { // overflow
		ceiling = time.Duration(1<<63 - 1)
	}
	a.wait = rand.N(ceiling) // full jitter: [0, ceiling)
	if ra := min(e.RetryAfter, maxRetryAfter); ra > a.wait {
		a.wait = ra
	}
	if dl, ok := a.ctx.Deadline(); ok && time.Until(dl) <= a.wait {
		return false
	}
	return true
}

func (a *attempts) backoff(context.Context, uint) time.Duration { return a.wait }
