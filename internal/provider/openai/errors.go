package openai

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// upstreamError is an upstream error object, normalised across OpenAI-compatible servers.
type upstreamError struct {
	Message string
	Type    string
	Code    string // OpenAI's string code; a numeric code (vLLM) is kept in Status
	Status  int    // numeric code, if the server sent one
	Param   string
}

// parseErrorBody reads an error body. It accepts OpenAI's {"error":{...}}, a top-level error
// object (vLLM) and {"error":"text"}; anything else becomes the (trimmed) body text as message.
func parseErrorBody(body []byte) upstreamError {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		return upstreamError{Message: string(bytes.TrimSpace(body))}
	}
	if len(eb.Error) > 0 && !bytes.Equal(eb.Error, []byte("null")) {
		return parseErrorValue(eb.Error)
	}
	ue := upstreamError{Message: eb.Message, Type: eb.Type}
	ue.Code, ue.Status = parseCode(eb.Code)
	if eb.Param != nil {
		ue.Param = *eb.Param
	}
	return ue
}

// parseErrorValue reads the value of an "error" member: an object or a string.
func parseErrorValue(raw json.RawMessage) upstreamError {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return upstreamError{Message: s}
	}
	var eo errorObject
	if err := json.Unmarshal(raw, &eo); err != nil {
		return upstreamError{Message: string(raw)}
	}
	ue := upstreamError{Message: eo.Message, Type: eo.Type}
	ue.Code, ue.Status = parseCode(eo.Code)
	if eo.Param != nil {
		ue.Param = *eo.Param
	}
	return ue
}

func parseCode(raw json.RawMessage) (code string, status int) {
	if len(raw) == 0 {
		return "", 0
	}
	if json.Unmarshal(raw, &code) == nil {
		return code, 0
	}
	if json.Unmarshal(raw, &status) == nil {
		return "", status
	}
	return "", 0
}

// classifyStatus turns an upstream HTTP error answer into an *llm.Error. Message is what a client
// may see: the upstream's own message only for parameter and business errors, where it helps the
// client fix its request; a fixed sentence otherwise (the upstream's stays in UpstreamMessage).
func classifyStatus(provider string, status int, header http.Header, body []byte) *llm.Error {
	ue := parseErrorBody(body)
	e := newUpstreamError(provider, status, ue)
	e.RetryAfter = wireutil.RetryAfter(header, time.Now())
	return e
}

// classifyStreamError turns an error object sent inside a 200 stream (or a 200 body) into an
// *llm.Error. Without a status, the error's type and code decide.
func classifyStreamError(provider string, status int, raw json.RawMessage) *llm.Error {
	ue := parseErrorValue(raw)
	e := newUpstreamError(provider, status, ue)
	return e
}

func newUpstreamError(provider string, status int, ue upstreamError) *llm.Error {
	e := &llm.Error{
		Provider:        provider,
		UpstreamStatus:  status,
		UpstreamMessage: wireutil.Truncate(ue.Message, wireutil.MaxUpstreamMessage),
	}
	effective := status
	if (effective < 400) && ue.Status >= 400 {
		effective = ue.Status // an error object in a 200 answer carrying its own status
	}
	if effective < 400 {
		effective = statusFromType(ue.Type, ue.Code)
	}
	clientMsg := func(fallback string) string {
		if e.UpstreamMessage != "" {
			return e.UpstreamMessage
		}
		return fallback
	}
	switch {
	case isContextLength(ue):
		e.Kind, e.Code, e.Param = llm.KindBusiness, "context_length_exceeded", ue.Param
		e.Message = clientMsg("the request exceeds the model's context length")
		return e
	case isContentFilter(ue):
		e.Kind, e.Code = llm.KindBusiness, "content_filter"
		e.Message = clientMsg("the request was rejected by the provider's content policy")
		return e
	case ue.Code == "model_not_found":
		effective = http.StatusNotFound
	case ue.Code == "insufficient_quota":
		effective = http.StatusPaymentRequired
	}
	wireutil.ClassifyStatus(e, effective)
	if e.Kind == llm.KindInvalidArgument {
		e.Code, e.Param = ue.Code, ue.Param
	}
	return e
}

// statusFromType guesses an HTTP status for an error object that came without one.
func statusFromType(typ, code string) int {
	switch {
	case typ == "invalid_request_error" || code == "invalid_request_error" || typ == "BadRequestError":
		return http.StatusBadRequest
	case typ == "authentication_error":
		return http.StatusUnauthorized
	case typ == "permission_error":
		return http.StatusForbidden
	case typ == "rate_limit_error" || code == "rate_limit_exceeded":
		return http.StatusTooManyRequests
	case typ == "overloaded_error":
		return 529
	case typ == "insufficient_quota" || code == "insufficient_quota":
		return http.StatusPaymentRequired
	}
	return http.StatusInternalServerError
}

func isContextLength(ue upstreamError) bool {
	if ue.Code == "context_length_exceeded" || ue.Type == "context_length_exceeded" {
		return true
	}
	m := strings.ToLower(ue.Message)
	return strings.Contains(m, "maximum context length") || strings.Contains(m, "context length exceeded")
}

func isContentFilter(ue upstreamError) bool {
	switch ue.Code {
	case "content_filter", "content_policy_violation", "content_filtered":
		return true
	}
	return ue.Type == "content_filter" || strings.Contains(ue.Message, "content management policy")
}
