// Package errmap is the one place where Switchyard's error kinds meet transport codes: llm.Error →
// gRPC status (with a google.rpc.ErrorInfo detail) on the server side, and gRPC status → HTTP
// status + OpenAI error JSON on the REST side.
package errmap

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/llm"
)

// Domain is the ErrorInfo domain of Switchyard's errors.
const Domain = "switchyard.dev"

// ErrorInfo metadata keys.
const (
	MetaClass          = "class"
	MetaHTTPStatus     = "http_status"
	MetaType           = "type"
	MetaCode           = "code"
	MetaParam          = "param"
	MetaProvider       = "provider"
	MetaUpstreamStatus = "upstream_status"
	MetaUpstreamMsg    = "upstream_message"
	MetaRetryAfter     = "retry_after_seconds"
)

var kindCodes = map[llm.Kind]codes.Code{
	llm.KindInternal:         codes.Internal,
	llm.KindUnauthenticated:  codes.Unauthenticated,
	llm.KindPermissionDenied: codes.PermissionDenied,
	llm.KindRateLimited:      codes.ResourceExhausted,
	llm.KindQuotaExceeded:    codes.ResourceExhausted,
	llm.KindInvalidArgument:  codes.InvalidArgument,
	llm.KindNotFound:         codes.NotFound,
	llm.KindTooLarge:         codes.InvalidArgument,
	llm.KindUpstream:         codes.Unavailable,
	llm.KindUnavailable:      codes.Unavailable,
	llm.KindTimeout:          codes.DeadlineExceeded,
	llm.KindCanceled:         codes.Canceled,
	llm.KindBusiness:         codes.FailedPrecondition,
}

// Code returns the gRPC code of kind k.
func Code(k llm.Kind) codes.Code {
	if c, ok := kindCodes[k]; ok {
		return c
	}
	return codes.Internal
}

// maxUpstreamMsg bounds the upstream message kept in details.
const maxUpstreamMsg = 512

// ToStatus converts err to a gRPC status. A status error passes through unchanged; an *llm.Error
// gets its kind's code, its client-safe message and an ErrorInfo detail; anything else becomes
// INTERNAL "internal error" (the cause belongs in logs, not in the answer).
func ToStatus(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if st, ok := status.FromError(err); ok && !isLLMError(err) {
		return st
	}
	e := llm.AsError(err)
	info := e.Kind.Info()
	md := map[string]string{
		MetaClass:      info.Class,
		MetaHTTPStatus: strconv.Itoa(e.Status()),
		MetaType:       info.OpenAIType,
	}
	if e.Code != "" {
		md[MetaCode] = e.Code
	}
	if e.Param != "" {
		md[MetaParam] = e.Param
	}
	if e.Provider != "" {
		md[MetaProvider] = e.Provider
	}
	if e.UpstreamStatus != 0 {
		md[MetaUpstreamStatus] = strconv.Itoa(e.UpstreamStatus)
		msg := e.UpstreamMessage
		if len(msg) > maxUpstreamMsg {
			msg = msg[:maxUpstreamMsg]
		}
		md[MetaUpstreamMsg] = msg
	}
	if e.RetryAfter > 0 {
		md[MetaRetryAfter] = strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
	}
	st := status.New(Code(e.Kind), e.SafeMessage())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: strings.ToUpper(info.Name), Domain: Domain, Metadata: md}); derr == nil {
		st = withInfo
	}
	return st
}

func isLLMError(err error) bool {
	_, ok := errors.AsType[*llm.Error](err)
	return ok
}

// OpenAIError is the body of an OpenAI error response: {"error": {...}}.
type OpenAIError struct {
	Error OpenAIErrorDetail `json:"error"`
}

// OpenAIErrorDetail is OpenAI's error object; param and code are null when unknown.
type OpenAIErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// HTTPError is what the REST edge answers for a status.
type HTTPError struct {
	Status     int
	Class      string
	RetryAfter string // Retry-After header value, "" if none
	Body       OpenAIError
}

// FromStatus converts a gRPC status to the REST answer. Statuses carrying Switchyard's ErrorInfo
// keep their exact HTTP status, type, code and param; others are mapped by code.
func FromStatus(st *status.Status) HTTPError {
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != Domain {
			continue
		}
		md := info.GetMetadata()
		he := HTTPError{Status: http.StatusInternalServerError, Class: md[MetaClass], RetryAfter: md[MetaRetryAfter]}
		if n, err := strconv.Atoi(md[MetaHTTPStatus]); err == nil {
			he.Status = n
		}
		he.Body.Error = OpenAIErrorDetail{Message: st.Message(), Type: md[MetaType], Param: strPtr(md[MetaParam]), Code: strPtr(md[MetaCode])}
		return he
	}
	k, msg := kindFromCode(st)
	info := k.Info()
	return HTTPError{
		Status: info.HTTPStatus,
		Class:  info.Class,
		Body:   OpenAIError{Error: OpenAIErrorDetail{Message: msg, Type: info.OpenAIType}},
	}
}

// kindFromCode maps statuses that did not come from an llm.Error: gRPC's own errors (message
// limits, transport failures, deadlines) and errors from other gRPC servers.
func kindFromCode(st *status.Status) (llm.Kind, string) {
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return llm.KindInvalidArgument, msg
	case codes.NotFound:
		return llm.KindNotFound, msg
	case codes.Unauthenticated:
		return llm.KindUnauthenticated, msg
	case codes.PermissionDenied:
		return llm.KindPermissionDenied, msg
	case codes.ResourceExhausted:
		// grpc-go reports its message-size limit as RESOURCE_EXHAUSTED; that is a 413, not a 429
		// (a 429 would make OpenAI SDKs retry a request that can never succeed).
		if strings.Contains(msg, "larger than max") {
			return llm.KindTooLarge, "request too large"
		}
		return llm.KindRateLimited, msg
	case codes.FailedPrecondition:
		return llm.KindBusiness, msg
	case codes.DeadlineExceeded:
		return llm.KindTimeout, "request timed out"
	case codes.Canceled:
		return llm.KindCanceled, "request canceled"
	case codes.Unavailable:
		return llm.KindUnavailable, "service unavailable"
	case codes.Unimplemented:
		return llm.KindNotFound, "not implemented"
	}
	return llm.KindInternal, "internal error"
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
