package llm

import "google.golang.org/grpc/codes"

// Kind says what went wrong. Each kind belongs to one of the five error classes and maps to one
// gRPC code, one HTTP status and one OpenAI error type: the row of kindInfo below, the one table
// the gRPC edge (internal/errmap, server/interceptor), the REST edge (gateway), the router's
// retry and fallback rules and the audit log all read. Everything below the edge only picks a
// kind.
type Kind uint8

// The kinds, grouped by class.
const (
	KindInternal Kind = iota // service: a bug or an unexpected state; never retried

	KindUnauthenticated  // authentication: missing, bad or expired credentials
	KindPermissionDenied // authentication: valid credentials, missing scope or access

	KindRateLimited   // quota: too many requests or tokens for now; retried
	KindQuotaExceeded // quota: billing quota used up; not retried

	KindInvalidArgument // parameter: malformed or out-of-range input
	KindNotFound        // parameter: unknown model or resource
	KindTooLarge        // parameter: body or message over the limit

	KindUpstream    // service: the upstream answered 5xx or garbage; retried
	KindUnavailable // service: the upstream could not be reached or is overloaded; retried
	KindTimeout     // service: the deadline passed; retried while time remains
	KindCanceled    // the client went away; nothing to answer

	KindBusiness // business: the upstream refused for a domain reason (context too long, content filtered)

	numKinds // not a kind: the number of kinds
)

// Classes: the five error classes of DESIGN.md.
const (
	ClassAuthentication = "authentication"
	ClassQuota          = "quota"
	ClassParameter      = "parameter"
	ClassService        = "service"
	ClassBusiness       = "business"
)

// KindInfo is how a kind appears to clients and operators.
type KindInfo struct {
	Name       string // stable name, used in logs and as the ErrorInfo reason (upper-cased)
	Class      string // one of the Class* constants
	Retryable  bool   // another attempt at the same target may succeed
	SafeMsg    string // message shown when the error carries none that is safe
	HTTPStatus int    // the REST answer's status; *Error.HTTPStatus may override it
	OpenAIType string // error.type in OpenAI's JSON
	GRPCCode   codes.Code
}

// kindInfo is the table. HTTP statuses are written as numbers so that this package need not
// import net/http; 499 is nginx's "client closed request".
var kindInfo = [numKinds]KindInfo{
	KindInternal:         {"internal", ClassService, false, "internal error", 500 /* Internal Server Error */, "api_error", codes.Internal},
	KindUnauthenticated:  {"unauthenticated", ClassAuthentication, false, "invalid or missing credentials", 401 /* Unauthorized */, "authentication_error", codes.Unauthenticated},
	KindPermissionDenied: {"permission_denied", ClassAuthentication, false, "permission denied", 403 /* Forbidden */, "permission_error", codes.PermissionDenied},
	KindRateLimited:      {"rate_limited", ClassQuota, true, "rate limit exceeded", 429 /* Too Many Requests */, "rate_limit_error", codes.ResourceExhausted},
	KindQuotaExceeded:    {"quota_exceeded", ClassQuota, false, "quota exceeded", 429 /* Too Many Requests */, "insufficient_quota", codes.ResourceExhausted},
	KindInvalidArgument:  {"invalid_argument", ClassParameter, false, "invalid request", 400 /* Bad Request */, "invalid_request_error", codes.InvalidArgument},
	KindNotFound:         {"not_found", ClassParameter, false, "not found", 404 /* Not Found */, "invalid_request_error", codes.NotFound},
	KindTooLarge:         {"too_large", ClassParameter, false, "request too large", 413 /* Request Entity Too Large */, "invalid_request_error", codes.InvalidArgument},
	KindUpstream:         {"upstream_error", ClassService, true, "upstream error", 502 /* Bad Gateway */, "api_error", codes.Unavailable},
	KindUnavailable:      {"unavailable", ClassService, true, "upstream unavailable", 503 /* Service Unavailable */, "api_error", codes.Unavailable},
	KindTimeout:          {"timeout", ClassService, true, "upstream timed out", 504 /* Gateway Timeout */, "api_error", codes.DeadlineExceeded},
	KindCanceled:         {"canceled", ClassService, false, "request canceled", 499 /* Client Closed Request */, "api_error", codes.Canceled},
	KindBusiness:         {"business", ClassBusiness, false, "request refused by the provider", 400 /* Bad Request */, "invalid_request_error", codes.FailedPrecondition},
}

// Kinds returns every kind, in declaration order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// Info describes k. Unknown kinds describe as KindInternal.
func (k Kind) Info() KindInfo {
	if k < numKinds {
		return kindInfo[k]
	}
	return kindInfo[KindInternal]
}

func (k Kind) String() string { return k.Info().Name }

// KindByName returns the kind with the given Name, or KindInternal and false.
func KindByName(name string) (Kind, bool) {
	for k, info := range kindInfo {
		if info.Name == name {
			return Kind(k), true
		}
	}
	return KindInternal, false
}
