package gemini

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// Detail types of google.rpc.Status the classification reads.
const (
	typeErrorInfo    = "type.googleapis.com/google.rpc.ErrorInfo"
	typeRetryInfo    = "type.googleapis.com/google.rpc.RetryInfo"
	typeQuotaFailure = "type.googleapis.com/google.rpc.QuotaFailure"
)

// classifyStatus turns an HTTP error answer into an *llm.Error. The body is normally a
// google.rpc.Status ({"error": {"code", "message", "status", "details"}}); anything else (an
// HTML page from a proxy, say) keeps its text as the upstream message and is classified by the
// HTTP status alone. The delay comes from a Retry-After header, else from a RetryInfo detail.
func classifyStatus(providerName string, status int, header http.Header, body []byte) *llm.Error {
	st := parseStatus(body)
	e := classify(providerName, status, st)
	if d := wireutil.RetryAfter(header, time.Now()); d > 0 {
		e.RetryAfter = d
	}
	return e
}

func parseStatus(body []byte) *rpcStatus {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil {
		return &rpcStatus{Message: string(bytes.TrimSpace(body))}
	}
	return eb.Error
}

// rpcCodes gives the HTTP status the Gemini API pairs with each google.rpc code, for errors
// sent inside a 200 stream that carry a code name but no usable number.
var rpcCodes = map[string]int{
	"INVALID_ARGUMENT": http.StatusBadRequest, "FAILED_PRECONDITION": http.StatusBadRequest,
	"OUT_OF_RANGE": http.StatusBadRequest, "UNAUTHENTICATED": http.StatusUnauthorized,
	"PERMISSION_DENIED": http.StatusForbidden, "NOT_FOUND": http.StatusNotFound,
	"RESOURCE_EXHAUSTED": http.StatusTooManyRequests, "INTERNAL": http.StatusInternalServerError,
	"UNAVAILABLE": http.StatusServiceUnavailable, "DEADLINE_EXCEEDED": http.StatusGatewayTimeout,
}

// classify maps a google.rpc.Status onto a kind. status is the HTTP status (200 for an error
// sent inside a stream, where the Status's own code, or its name, decides). Gemini's own cases
// come first: an invalid or expired API key (a 400 with ErrorInfo reason API_KEY_INVALID or
// API_KEY_EXPIRED) is authentication; a prompt over the context window ("input token count ...
// exceeds") and a history that lost its thought signatures are business errors;
// FAILED_PRECONDITION is quota exceeded when it is about billing and permission denied
// otherwise (region not supported); RESOURCE_EXHAUSTED with a per-day QuotaFailure is quota
// exceeded (not retried: it will not clear with backoff). The rest follows the HTTP status
// (wireutil.ClassifyStatus). A RetryInfo detail sets RetryAfter.
func classify(providerName string, status int, st *rpcStatus) *llm.Error {
	e := &llm.Error{
		Provider:        providerName,
		UpstreamStatus:  status,
		UpstreamMessage: wireutil.Truncate(st.Message, wireutil.MaxUpstreamMessage),
	}
	if e.UpstreamMessage == "" {
		e.UpstreamMessage = st.Status
	}
	code := status
	if code < 400 {
		code = st.Code
	}
	if c, ok := rpcCodes[st.Status]; ok && code < 400 {
		code = c
	}
	if code < 400 {
		code = http.StatusInternalServerError
	}
	var reasons []string
	perDay := false
	for _, d := range st.Details {
		switch d.Type {
		case typeErrorInfo:
			reasons = append(reasons, d.Reason)
		case typeRetryInfo:
			if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
				e.RetryAfter = v
			}
		case typeQuotaFailure:
			for _, v := range d.Violations {
				perDay = perDay || strings.Contains(v.QuotaID, "PerDay")
			}
		}
	}
	msg := strings.ToLower(st.Message)
	switch {
	case slices.Contains(reasons, "API_KEY_INVALID") || slices.Contains(reasons, "API_KEY_EXPIRED"):
		wireutil.ClassifyStatus(e, http.StatusUnauthorized)
	case strings.Contains(msg, "input token count") && strings.Contains(msg, "exceeds"):
		e.Kind, e.Code, e.Message = llm.KindBusiness, "context_length_exceeded", e.UpstreamMessage
	case strings.Contains(msg, "thought_signature") || strings.Contains(msg, "thought signature"):
		e.Kind, e.Code = llm.KindBusiness, "thought_signature_required"
		e.Message = "the conversation lost the thought signatures of earlier tool calls; send the tool call ids back unchanged"
	case st.Status == "FAILED_PRECONDITION" && strings.Contains(msg, "billing"):
		wireutil.ClassifyStatus(e, http.StatusPaymentRequired)
	case st.Status == "FAILED_PRECONDITION":
		wireutil.ClassifyStatus(e, http.StatusForbidden)
	case code == http.StatusTooManyRequests && perDay:
		wireutil.ClassifyStatus(e, http.StatusPaymentRequired)
		e.Message = "the upstream provider's daily quota is exhausted"
	default:
		wireutil.ClassifyStatus(e, code)
	}
	return e
}
