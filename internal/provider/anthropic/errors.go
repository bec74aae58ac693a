package anthropic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// typeStatus is the HTTP status Anthropic documents for each error type; it classifies errors
// that arrive without a status of their own (error events inside a 200 stream).
var typeStatus = map[string]int{
	"invalid_request_error": http.StatusBadRequest,
	"authentication_error":  http.StatusUnauthorized,
	"billing_error":         http.StatusPaymentRequired,
	"permission_error":      http.StatusForbidden,
	"not_found_error":       http.StatusNotFound,
	"request_too_large":     http.StatusRequestEntityTooLarge,
	"rate_limit_error":      http.StatusTooManyRequests,
	"api_error":             http.StatusInternalServerError,
	"timeout_error":         http.StatusGatewayTimeout,
	"overloaded_error":      529,
}

// classifyStatus turns an HTTP error answer into an *llm.Error: by status (wireutil.ClassifyStatus:
// 529 overloaded is KindRateLimited, retried like a 429), except that a context-length 400 is a
// business error. A body that is not Anthropic's JSON (a proxy's HTML page) is kept as the
// upstream message.
func classifyStatus(provider string, status int, header http.Header, body []byte) *llm.Error {
	var eb errorBody
	eo := errorObject{}
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		eo = *eb.Error
	} else {
		eo.Message = string(bytes.TrimSpace(body))
	}
	e := newError(provider, status, status, eo)
	e.RetryAfter = wireutil.RetryAfter(header, time.Now())
	return e
}

// classifyEvent turns an error event of a 200 stream into an *llm.Error, by its type.
func classifyEvent(provider string, status int, eo *errorObject) *llm.Error {
	if eo == nil {
		eo = &errorObject{Type: "api_error", Message: "error event without an error"}
	}
	effective, ok := typeStatus[eo.Type]
	if !ok {
		effective = http.StatusInternalServerError
	}
	return newError(provider, status, effective, *eo)
}

func newError(provider string, status, effective int, eo errorObject) *llm.Error {
	e := &llm.Error{
		Provider:        provider,
		UpstreamStatus:  status,
		UpstreamMessage: wireutil.Truncate(eo.Message, wireutil.MaxUpstreamMessage),
	}
	if e.UpstreamMessage == "" {
		e.UpstreamMessage = eo.Type
	}
	if eo.Type == "billing_error" || strings.Contains(eo.Message, "credit balance is too low") {
		effective = http.StatusPaymentRequired // Anthropic sends the empty-wallet case as a 400
	}
	if effective == http.StatusBadRequest && isContextLength(eo.Message) {
		e.Kind, e.Code, e.Message = llm.KindBusiness, "context_length_exceeded", e.UpstreamMessage
		return e
	}
	wireutil.ClassifyStatus(e, effective)
	return e
}

// isContextLength recognises Anthropic's context-window 400s: "prompt is too long: N tokens > M
// maximum" and "input length and `max_tokens` exceed context limit: …".
func isContextLength(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") || strings.Contains(m, "exceed context limit")
}
