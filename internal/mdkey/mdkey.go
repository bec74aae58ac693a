// Package mdkey names the gRPC metadata keys Switchyard reads and writes, which the REST edge
// carries as HTTP headers of the same name. Keys are lower case, as gRPC metadata requires; HTTP
// matches them case-insensitively.
package mdkey

// Sent both ways.
const (
	// RequestID identifies a request: the caller's when sane, else generated; always echoed.
	RequestID = "x-request-id"
	// SessionID names the session a chat request continues; the answer echoes it.
	SessionID = "x-switchyard-session-id"
)

// Response metadata of a routed request (chat, embeddings).
const (
	// Route names the target that answered, or the last one tried: "provider/model".
	Route = "x-switchyard-route"
	// RouteDecision explains the routing decision: strategy, chosen target, candidates and their
	// scores, e.g. "strategy=latency; chosen=b/m2; candidates=b/m2:12.3ms,a/m1:40.1ms".
	RouteDecision = "x-switchyard-route-decision"
	// Attempts is the number of upstream calls the request took, retries and fallbacks included.
	Attempts = "x-switchyard-attempts"
	// Warning carries non-fatal notes about a request, one value each, such as a parameter the
	// provider adapter dropped because the upstream does not support it.
	Warning = "x-switchyard-warning"
)

// Response metadata of quota answers. The rate limit keys are OpenAI's; their reset values are
// durations ("1s", "6m0s", see limits.FormatReset).
const (
	// RetryAfter is the seconds to wait after a quota error.
	RetryAfter = "retry-after"

	LimitRequests     = "x-ratelimit-limit-requests"
	RemainingRequests = "x-ratelimit-remaining-requests"
	ResetRequests     = "x-ratelimit-reset-requests"
	LimitTokens       = "x-ratelimit-limit-tokens"
	RemainingTokens   = "x-ratelimit-remaining-tokens"
	ResetTokens       = "x-ratelimit-reset-tokens"
)

// Request metadata the REST edge (grpc-gateway) adds to every call it forwards.
const (
	ForwardedHost = "x-forwarded-host"
	ForwardedFor  = "x-forwarded-for"
)

// Prefixes of the key families the REST edge passes through: every Switchyard key, both ways,
// and the rate limit keys in answers.
const (
	SwitchyardPrefix = "x-switchyard-"
	RateLimitPrefix  = "x-ratelimit-"
)
