package llm

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind says what went wrong. Each kind belongs to one of the five error classes and maps to one
// gRPC code, one HTTP status and one OpenAI error type (see Kind.Info). The edge does that mapping
// once; everything below it only picks a kind.
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
)

// Classes: the five error classes of DESIGN.md.
const (
	ClassAuthentication = "authentication"
	ClassQuota          = "quota"
	ClassParameter      = "parameter"
	ClassService        = "service"
	ClassBusiness       = "business"
)

// KindInfo is how a kind appears to clients.
type KindInfo struct {
	Name       string // stable name, used in logs and ErrorInfo metadata
	Class      string
	HTTPStatus int
	OpenAIType string // error.type in OpenAI's JSON
	Retryable  bool
	SafeMsg    string // message shown when the error carries none that is safe
}

var kindInfo = [...]KindInfo{
	KindInternal:         {"internal", ClassService, http.StatusInternalServerError, "api_error", false, "internal error"},
	KindUnauthenticated:  {"unauthenticated", ClassAuthentication, http.StatusUnauthorized, "authentication_error", false, "invalid or missing credentials"},
	KindPermissionDenied: {"permission_denied", ClassAuthentication, http.StatusForbidden, "permission_error", false, "permission denied"},
	KindRateLimited:      {"rate_limited", ClassQuota, http.StatusTooManyRequests, "rate_limit_error", true, "rate limit exceeded"},
	KindQuotaExceeded:    {"quota_exceeded", ClassQuota, http.StatusTooManyRequests, "insufficient_quota", false, "quota exceeded"},
	KindInvalidArgument:  {"invalid_argument", ClassParameter, http.StatusBadRequest, "invalid_request_error", false, "invalid request"},
	KindNotFound:         {"not_found", ClassParameter, http.StatusNotFound, "invalid_request_error", false, "not found"},
	KindTooLarge:         {"too_large", ClassParameter, http.StatusRequestEntityTooLarge, "invalid_request_error", false, "request too large"},
	KindUpstream:         {"upstream_error", ClassService, http.StatusBadGateway, "api_error", true, "upstream error"},
	KindUnavailable:      {"unavailable", ClassService, http.StatusServiceUnavailable, "api_error", true, "upstream unavailable"},
	KindTimeout:          {"timeout", ClassService, http.StatusGatewayTimeout, "api_error", true, "upstream timed out"},
	KindCanceled:         {"canceled", ClassService, 499, "api_error", false, "request canceled"},
	KindBusiness:         {"business", ClassBusiness, http.StatusBadRequest, "invalid_request_error", false, "request refused by the provider"},
}

// Info describes k. Unknown kinds describe as KindInternal.
func (k Kind) Info() KindInfo {
	if int(k) < len(kindInfo) {
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

// Error is Switchyard's error. Message is safe to show to clients; the upstream's own status and
// message are kept for operators (logs, ErrorInfo details) and never shown raw.
type Error struct {
	Kind    Kind
	Message string // client-safe
	Code    string // OpenAI error.code, e.g. "model_not_found", "context_length_exceeded"
	Param   string // OpenAI error.param, the offending request field

	Provider        string        // provider name, when the error came from upstream
	UpstreamStatus  int           // upstream HTTP status, 0 if none
	UpstreamMessage string        // upstream's message, for operators only
	RetryAfter      time.Duration // upstream's Retry-After, 0 if none
	HTTPStatus      int           // overrides Kind's HTTP status when non-zero (business 422, say)

	Err error // cause, for errors.Is/As and logs
}

// Errorf returns an *Error of kind k with a client-safe message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with a client-safe message and err as its cause.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Message: msg, Err: err}
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.Info().SafeMsg
	}
	s := e.Kind.String() + ": " + msg
	if e.Provider != "" {
		s = e.Provider + ": " + s
	}
	if e.UpstreamStatus != 0 {
		s += fmt.Sprintf(" (upstream %d: %s)", e.UpstreamStatus, e.UpstreamMessage)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status to answer with.
func (e *Error) Status() int {
	if e.HTTPStatus != 0 {
		return e.HTTPStatus
	}
	return e.Kind.Info().HTTPStatus
}

// SafeMessage returns the message clients may see.
func (e *Error) SafeMessage() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Kind.Info().SafeMsg
}

// KindOf returns the kind of the first *Error in err's chain, KindCanceled for context.Canceled,
// KindTimeout for context.DeadlineExceeded, and KindInternal otherwise.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return fromContextErr(err)
}

// AsError returns err as an *Error, converting context errors and wrapping anything else as
// KindInternal with a generic message (the cause stays in Err for logs).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	k := fromContextErr(err)
	return &Error{Kind: k, Err: err}
}
