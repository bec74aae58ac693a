package llm

import "context"

type usageHookKey struct{}

// WithUsageHook returns a copy of ctx in which RecordUsage calls f. Hooks nest: RecordUsage calls
// the innermost hook first, then those of ctx's parents, so several layers (limits, audit) can
// each learn a request's usage. f must be safe to call from the request's goroutine and must not
// block.
func WithUsageHook(ctx context.Context, f func(Usage)) context.Context {
	if outer, ok := ctx.Value(usageHookKey{}).(func(Usage)); ok {
		inner := f
		f = func(u Usage) { inner(u); outer(u) }
	}
	return context.WithValue(ctx, usageHookKey{}, f)
}

// RecordUsage reports the token usage of the answer served for ctx's request to the hooks set with
// WithUsageHook; without hooks it does nothing. The server calls it once per request, when the
// upstream has answered: for a stream, when the stream ends, with the last usage the upstream
// reported (also when the stream ends in an error). Requests whose upstream reports no usage
// record none.
func RecordUsage(ctx context.Context, u Usage) {
	if f, ok := ctx.Value(usageHookKey{}).(func(Usage)); ok {
		f(u)
	}
}
