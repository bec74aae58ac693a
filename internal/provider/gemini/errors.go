package gemini

import (
	"bytes"
	"encoding/json"
	"net/http"
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

// classify maps a google.rpc.Status onto a kind. status is the HTTP status (200 for an error
// sent inside a stream, where the Status's own code and name decide). The upstream's message
// reaches clients only for parameter and business errors, where it helps them fix the request.
func classify(providerName string, status int, st *rpcStatus) *llm.Error {
	e := &llm.Error{
		Provider:        providerName,
		UpstreamStatus:  status,
		UpstreamMessage: wireutil.Truncate(st.Message, wireutil.MaxUpstreamMessage),
	}
	code := status
	if code < 400 && st.Code >= 400 {
		code = st.Code
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
	if e.UpstreamMessage == "" && st.Status != "" {
		e.UpstreamMessage = st.Status
	}
	clientMsg := func(fallback string) string {
		if e.UpstreamMessage != "" {
			return e.UpstreamMessage
		}
		return fallback
	}
	msg := strings.ToLower(st.Message)
	switch {
	case hasAny(reasons, "API_KEY_INVALID", "API_KEY_EXPIRED") || st.Status == "UNAUTHENTICATED" || code == http.StatusUnauthorized:
		e.Kind, e.Message = llm.KindUnauthenticated, "the upstream provider rejected the gateway's credentials"
	case st.Status == "PERMISSION_DENIED" || code == http.StatusForbidden:
		e.Kind, e.Message = llm.KindPermissionDenied, "the upstream provider denied the gateway access"
	case strings.Contains(msg, "input token count") && strings.Contains(msg, "exceeds"):
		e.Kind, e.Code = llm.KindBusiness, "context_length_exceeded"
		e.Message = clientMsg("the request exceeds the model's context length")
	case strings.Contains(msg, "thought_signature") || strings.Contains(msg, "thought signature"):
		e.Kind, e.Code = llm.KindBusiness, "thought_signature_required"
		e.Message = "the conversation lost the thought signatures of earlier tool calls; send the tool call ids back unchanged"
	case st.Status == "FAILED_PRECONDITION" && strings.Contains(msg, "billing"):
		e.Kind, e.Code = llm.KindQuotaExceeded, "insufficient_quota"
		e.Message = "the upstream provider's quota is exhausted"
	case st.Status == "FAILED_PRECONDITION":
		e.Kind, e.Message = llm.KindPermissionDenied, "the upstream provider denied the gateway access"
	case st.Status == "RESOURCE_EXHAUSTED" || code == http.StatusTooManyRequests:
		if perDay {
			e.Kind, e.Code, e.Message = llm.KindQuotaExceeded, "insufficient_quota", "the upstream provider's daily quota is exhausted"
		} else {
			e.Kind, e.Message = llm.KindRateLimited, "the upstream provider's rate limit was reached"
		}
	case st.Status == "NOT_FOUND" || code == http.StatusNotFound:
		e.Kind, e.Code, e.Message = llm.KindNotFound, "model_not_found", "the model was not found at the upstream provider"
	case code == http.StatusRequestEntityTooLarge:
		e.Kind, e.Message = llm.KindTooLarge, "the request is too large for the upstream provider"
	case st.Status == "INVALID_ARGUMENT" || st.Status == "OUT_OF_RANGE" || code == http.StatusBadRequest:
		e.Kind = llm.KindInvalidArgument
		e.Message = clientMsg("the upstream provider rejected the request")
	case st.Status == "DEADLINE_EXCEEDED" || code == http.StatusGatewayTimeout || code == http.StatusRequestTimeout:
		e.Kind, e.Message = llm.KindTimeout, "the upstream provider timed out"
	case st.Status == "UNAVAILABLE" || code == http.StatusServiceUnavailable:
		e.Kind, e.Message = llm.KindUnavailable, "the upstream provider is unavailable"
	case code == 529: // overloaded, as some proxies in front of Gemini answer
		e.Kind, e.Message = llm.KindRateLimited, "the upstream provider is overloaded"
	default: // INTERNAL (500), 502, and anything unexpected
		e.Kind, e.Message = llm.KindUpstream, "the upstream provider failed"
	}
	return e
}

func hasAny(list []string, want ...string) bool {
	for _, s := range list {
		for _, w := range want {
			if s == w {
				return true
			}
		}
	}
	return false
}
