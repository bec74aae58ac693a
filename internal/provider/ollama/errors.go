package ollama

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// classifyStatus turns an error answer ({"error":"message"} with 400, 401, 404, 429, 5xx) into
// an *llm.Error. A body that is not Ollama's JSON (a proxy's HTML page) is kept as the message.
func classifyStatus(provider string, status int, header http.Header, body []byte) *llm.Error {
	msg := strings.TrimSpace(string(body))
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	e := &llm.Error{Provider: provider, UpstreamStatus: status, UpstreamMessage: wireutil.Truncate(msg, wireutil.MaxUpstreamMessage)}
	wireutil.ClassifyStatus(e, status)
	e.RetryAfter = wireutil.RetryAfter(header, time.Now())
	return e
}

// streamError classifies an {"error":"..."} object sent after a 200 (an NDJSON line or a 200
// body): the model failed while generating, a service-class error.
func streamError(provider, msg string) *llm.Error {
	return &llm.Error{
		Kind: llm.KindUpstream, Message: "the upstream provider failed while answering",
		Provider: provider, UpstreamStatus: http.StatusOK, UpstreamMessage: wireutil.Truncate(msg, wireutil.MaxUpstreamMessage),
	}
}

func badAnswer(provider string, err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("ollama: %w", err), "the upstream provider sent an invalid answer")
	e.Provider = provider
	return e
}
