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

// KindOfCode maps a gRPC status code to a kind, for statuses that carry no Switchyard ErrorInfo:
// gRPC's own errors (message limits, transport failures, deadlines) and errors from other gRPC
// servers. msg is the status message (grpc-go's message-size limit is RESOURCE_EXHAUSTED too, and
// is KindTooLarge: a 429 would make clients retry a request that can never succeed). ok is false
// for codes that name no cause (Unknown, Internal, DataLoss, Aborted): the caller chooses, e.g.
// KindInternal for our own server and KindUpstream for an upstream's.
func KindOfCode(c codes.Code, msg string) (k llm.Kind, ok bool) {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.AlreadyExists:
		return llm.KindInvalidArgument, true
	case codes.NotFound, codes.Unimplemented:
		return llm.KindNotFound, true
	case codes.Unauthenticated:
		return llm.KindUnauthenticated, true
	case codes.PermissionDenied:
		return llm.KindPermissionDenied, true
	case codes.ResourceExhausted:
		if strings.Contains(msg, "larger than max") {
			return llm.KindTooLarge, true
		}
		return llm.KindRateLimited, true
	case codes.FailedPrecondition:
		return llm.KindBusiness, true
	case codes.DeadlineExceeded:
		return llm.KindTimeout, true
	case codes.Canceled:
		return llm.KindCanceled, true
	case codes.Unavailable:
		return llm.KindUnavailable, true
	}
	return llm.KindInternal, false
}

// kindFromCode maps a status without ErrorInfo to a kind and the message clients see: the
// status's own for client-side mistakes, a generic one for transport and server failures.
func kindFromCode(st *status.Status) (llm.Kind, string) {
	k, ok := KindOfCode(st.Code(), st.Message())
	switch {
	case !ok:
		return llm.KindInternal, "internal error"
	case st.Code() == codes.Unimplemented:
		return k, "not implemented"
	case k == llm.KindTooLarge:
		return k, "request too large"
	case k == llm.KindTimeout:
		return k, "request timed out"
	case k == llm.KindCanceled:
		return k, "request canceled"
	case k == llm.KindUnavailable:
		return k, "service unavailable"
	}
	return k, st.Message()
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
