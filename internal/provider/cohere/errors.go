package cohere

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// classifyStatus turns an HTTP error answer into an *llm.Error. Cohere's body is
// {"id", "message"} for every status; anything else (an HTML page from a proxy, say) keeps its
// text as the upstream message. Retry-After sets RetryAfter.
func classifyStatus(providerName string, status int, header http.Header, body []byte) *llm.Error {
	msg := string(bytes.TrimSpace(body))
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Message != "" {
		msg = eb.Message
	}
	e := classify(providerName, status, msg)
	if d := wireutil.RetryAfter(header, time.Now()); d > 0 {
		e.RetryAfter = d
	}
	return e
}

// classify maps a Cohere status and message onto a kind (the statuses of cohere-openapi.yaml
// and fern/pages/cohere-api/errors.mdx). Cohere's own cases come first:
//   - 400 "too many tokens" about the prompt (not about max_tokens) is a business error,
//     context_length_exceeded;
//   - 402 (billing limit) and a 429 about a monthly limit (trial keys) are quota exceeded, not
//     retried: they will not clear with backoff;
//   - 498 (blocked input or output) is a business error, content_filter;
//   - 499 (request cancelled upstream; our own cancellation never gets an answer) is an
//     upstream error, retried as Cohere's documentation advises;
//   - 501 is an upstream error.
//
// The rest follows the HTTP status (wireutil.ClassifyStatus): 401, 403, 404, 422, 429, 500, 503,
// 504 ...
func classify(providerName string, status int, msg string) *llm.Error {
	e := &llm.Error{
		Provider:        providerName,
		UpstreamStatus:  status,
		UpstreamMessage: wireutil.Truncate(msg, wireutil.MaxUpstreamMessage),
	}
	if e.UpstreamMessage == "" {
		e.UpstreamMessage = http.StatusText(status)
	}
	lower := strings.ToLower(msg)
	switch {
	case status == http.StatusBadRequest && strings.Contains(lower, "too many tokens") && !strings.Contains(lower, "max tokens"):
		e.Kind, e.Code, e.Message = llm.KindBusiness, "context_length_exceeded", e.UpstreamMessage
	case status == http.StatusTooManyRequests && strings.Contains(lower, "month"):
		wireutil.ClassifyStatus(e, http.StatusPaymentRequired)
		e.Message = "the upstream provider's monthly limit is reached"
	case status == 498:
		e.Kind, e.Code = llm.KindBusiness, "content_filter"
		e.Message = "the provider blocked the input or output (" + e.UpstreamMessage + ")"
	case status == 499:
		e.Kind, e.Message = llm.KindUpstream, "the upstream provider cancelled the request"
	default:
		wireutil.ClassifyStatus(e, status)
	}
	return e
}

// streamError is the error of a stream that ended with finish_reason ERROR or TIMEOUT, or with
// an error message in message-end or a bare error object.
func streamError(providerName, reason, msg string) *llm.Error {
	if msg == "" {
		msg = "finish_reason " + reason
	}
	e := &llm.Error{Provider: providerName, UpstreamStatus: http.StatusOK, UpstreamMessage: wireutil.Truncate(msg, wireutil.MaxUpstreamMessage)}
	// Both are service errors of the upstream, retried. TIMEOUT is Cohere's own generation
	// timeout, not our deadline: KindTimeout is kept for the gateway's deadlines and 504s.
	e.Kind, e.Message = llm.KindUpstream, "the upstream provider failed while answering"
	if reason == "TIMEOUT" {
		e.Message = "the upstream provider timed out while answering"
	}
	return e
}
