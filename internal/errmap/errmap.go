// Package errmap converts between Switchyard's errors and gRPC statuses, by the error table of
// internal/llm (kinds.go), which it does not repeat: llm.Error → gRPC status with a
// google.rpc.ErrorInfo detail on the server side, gRPC status → HTTP status + OpenAI error JSON
// on the REST side, and gRPC status → kind for anyone who needs a status's class (the audit log,
// the gRPC upstream adapter).
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

// maxUpstreamMsg bounds the upstream message kept in details.
const maxUpstreamMsg = 512

// ToStatus converts err to a gRPC status. A status error passes through unchanged; an *llm.Error
// gets its kind's code, its client-safe message and an ErrorInfo detail; anything else becomes
// INTERNAL "internal error" (the cause belongs in logs, not in the answer).
func ToStatus(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if st, ok := StatusOf(err); ok {
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
		md[MetaRetryAfter] = RetryAfterSeconds(e.RetryAfter)
	}
	st := status.New(info.GRPCCode, e.SafeMessage())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: strings.ToUpper(info.Name), Domain: Domain, Metadata: md}); derr == nil {
		st = withInfo
	}
	return st
}

// StatusOf returns err's gRPC status when err is a status error, and not an *llm.Error (one
// may carry an upstream's status as its cause, but its own kind decides): ToStatus passes such
// errors through unchanged.
func StatusOf(err error) (*status.Status, bool) {
	if err == nil {
		return nil, false
	}
	if _, ok := errors.AsType[*llm.Error](err); ok {
		return nil, false
	}
	return status.FromError(err)
}

// Info returns st's ErrorInfo detail of Domain (Switchyard's), nil if it carries none.
func Info(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info
		}
	}
	return nil
}

// KindOf returns the kind of err: an *llm.Error's own; for a status, the kind its ErrorInfo
// names, else the kind of its code (KindOfCode; codes that name no cause are KindInternal);
// otherwise llm.KindOf (context errors, KindInternal).
func KindOf(err error) llm.Kind {
	st, ok := StatusOf(err)
	if !ok {
		return llm.KindOf(err)
	}
	if k, ok := KindOfInfo(Info(st)); ok {
		return k
	}
	k, _ := KindOfCode(st.Code(), st.Message())
	return k
}

// KindOfInfo returns the kind info's reason names; ok is false for a nil info or a reason this
// version does not know.
func KindOfInfo(info *errdetails.ErrorInfo) (llm.Kind, bool) {
	if info == nil {
		return llm.KindInternal, false
	}
	return llm.KindByName(strings.ToLower(info.GetReason()))
}

// RetryAfterSeconds formats d as a Retry-After value: whole seconds, rounded up.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
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
	if info := Info(st); info != nil {
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
	if c == codes.ResourceExhausted && strings.Contains(msg, "larger than max") {
		return llm.KindTooLarge, true
	}
	if int(c) < len(kindOfCode) && kindOfCode[c].ok {
		return kindOfCode[c].kind, true
	}
	return llm.KindInternal, false
}

// kindOfCode is the kind of each code KindOfCode names a cause for: llm's error table read
// backwards where one kind has the code; where several kinds share a code, the one a bare status
// most likely means, chosen here; and the nearest kind for codes no kind has.
var kindOfCode = func() (t [codes.Unauthenticated + 1]codeKind) {
	kinds := map[codes.Code]int{}
	for _, k := range llm.Kinds() {
		c := k.Info().GRPCCode
		kinds[c]++
		t[c] = codeKind{k, kinds[c] == 1} // a shared code names no kind unless chosen below
	}
	for c, k := range map[codes.Code]llm.Kind{
		codes.ResourceExhausted: llm.KindRateLimited, // not KindQuotaExceeded: a bare 429 clears by waiting
		codes.InvalidArgument:   llm.KindInvalidArgument,
		codes.Unavailable:       llm.KindUnavailable,
		codes.OutOfRange:        llm.KindInvalidArgument,
		codes.AlreadyExists:     llm.KindInvalidArgument,
		codes.Unimplemented:     llm.KindNotFound,
	} {
		t[c] = codeKind{k, true}
	}
	t[codes.Internal].ok = false // KindInternal's code, but from elsewhere it names no cause
	return t
}()

type codeKind struct {
	kind llm.Kind
	ok   bool
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
