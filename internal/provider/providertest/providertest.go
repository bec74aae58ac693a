// Package providertest is the conformance suite every HTTP provider adapter runs. The suite
// scripts a loopback upstream with canonical expectations (an llm.ChatResponse to answer with,
// chunks to stream, an error to fail with); the adapter's test supplies a Wire that renders them
// in the provider's native protocol and reads the adapter's native requests back into canonical
// form, so one suite checks every protocol.
package providertest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// Harness adapts one provider type to the suite.
type Harness struct {
	// New builds the adapter under test (usually the package's New).
	New provider.Factory
	// Config is the base configuration. The suite sets BaseURL to the loopback upstream's URL
	// followed by BasePath, and Name to "test" when empty.
	Config   provider.Config
	BasePath string // e.g. "/v1"
	// Model is the model name sent in requests.
	Model string
	// Wire speaks the provider's native protocol.
	Wire Wire
	// Check, if set, validates every request the adapter sends, e.g. against the provider's own
	// OpenAPI document. It runs in the upstream's handler goroutine: report with t.Errorf.
	Check func(t testing.TB, r *http.Request, body []byte)
	// ErrorCases are provider-specific cases run after the common ones (CommonErrorCases).
	ErrorCases []ErrorCase
	// Skip names cases that do not apply to this provider (see the t.Run names).
	Skip []string
}

// Call is an upstream request read back into canonical form. Op is "chat" or "embed".
type Call struct {
	Op     string
	Stream bool
	Chat   *llm.ChatRequest
	Embed  *llm.EmbeddingRequest
	Header http.Header
}

// UpstreamError is a scripted upstream failure: an HTTP status (ignored for errors sent inside
// a stream), the provider's error type and code, a message and extra headers.
type UpstreamError struct {
	Status  int
	Type    string
	Code    string
	Message string
	Header  http.Header
}

// Wire renders scripted answers in a provider's native protocol and decodes its requests.
// Methods that write to an http.ResponseWriter set the status and headers themselves.
type Wire interface {
	// Decode reads one request the adapter sent.
	Decode(r *http.Request, body []byte) (*Call, error)
	// WriteChat answers a blocking chat request.
	WriteChat(w http.ResponseWriter, resp *llm.ChatResponse)
	// StartStream writes the status and headers of a streamed answer.
	StartStream(w http.ResponseWriter)
	// WriteChunk writes one streamed chunk (a usage-only chunk included).
	WriteChunk(w io.Writer, c *llm.Chunk)
	// WriteStreamError writes an error event inside a streamed answer.
	WriteStreamError(w io.Writer, e *UpstreamError)
	// EndStream writes the protocol's end-of-stream marker, if any.
	EndStream(w io.Writer)
	// WriteEmbeddings answers an embeddings request, emitting the vectors in the given order
	// of input indexes (the suite shuffles it).
	WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, order []int)
	// WriteError answers with an error status and the provider's error body.
	WriteError(w http.ResponseWriter, e *UpstreamError)
}

// ErrorCase is one error classification check: the upstream fails with Err, the adapter must
// return an *llm.Error of kind Want (and Code and RetryAfter when set).
type ErrorCase struct {
	Name           string
	Err            UpstreamError
	Stream         bool // call ChatStream instead of Chat
	Want           llm.Kind
	WantCode       string
	WantRetryAfter time.Duration
}

// CommonErrorCases are the status classifications every HTTP adapter must get right.
func CommonErrorCases() []ErrorCase {
	return []ErrorCase{
		{Name: "400", Err: UpstreamError{Status: 400, Type: "invalid_request_error", Message: "temperature must be at most 2"}, Want: llm.KindInvalidArgument},
		{Name: "401", Err: UpstreamError{Status: 401, Type: "authentication_error", Message: "Incorrect API key provided"}, Want: llm.KindUnauthenticated},
		{Name: "403", Err: UpstreamError{Status: 403, Type: "permission_error", Message: "Country, region, or territory not supported"}, Want: llm.KindPermissionDenied},
		{Name: "404", Err: UpstreamError{Status: 404, Type: "invalid_request_error", Message: "The model does not exist"}, Want: llm.KindNotFound, WantCode: "model_not_found"},
		{Name: "413", Err: UpstreamError{Status: 413, Type: "invalid_request_error", Message: "Request too large"}, Want: llm.KindTooLarge},
		{Name: "429 retry-after", Err: UpstreamError{Status: 429, Type: "rate_limit_error", Message: "Rate limit reached", Header: http.Header{"Retry-After": {"7"}}}, Want: llm.KindRateLimited, WantRetryAfter: 7 * time.Second},
		{Name: "429 stream", Stream: true, Err: UpstreamError{Status: 429, Type: "rate_limit_error", Message: "Rate limit reached"}, Want: llm.KindRateLimited},
		{Name: "500", Err: UpstreamError{Status: 500, Type: "server_error", Message: "The server had an error"}, Want: llm.KindUpstream},
		{Name: "502", Err: UpstreamError{Status: 502, Message: "Bad gateway"}, Want: llm.KindUpstream},
		{Name: "503", Err: UpstreamError{Status: 503, Type: "server_error", Message: "The engine is currently overloaded"}, Want: llm.KindUnavailable},
		{Name: "503 stream", Stream: true, Err: UpstreamError{Status: 503, Message: "Slow Down"}, Want: llm.KindUnavailable},
		{Name: "529", Err: UpstreamError{Status: 529, Type: "overloaded_error", Message: "Overloaded"}, Want: llm.KindRateLimited},
	}
}

// Run runs the suite. Each case gets its own upstream.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Config.Name == "" {
		h.Config.Name = "test"
	}
	s := &suite{h: h}
	cases := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"chat", s.chat},
		{"stream", s.stream},
		{"stream_tool_call_split", s.streamToolCallSplit},
		{"two_tool_calls", s.twoToolCalls},
		{"tool_result_followup", s.toolResultFollowup},
		{"image_input", s.imageInput},
		{"stop", s.stop},
		{"max_tokens_length", s.maxTokensLength},
		{"reasoning", s.reasoning},
		{"finish_reasons", s.finishReasons},
		{"embeddings_order", s.embeddingsOrder},
		{"errors", s.errors},
		{"connection_refused", s.connectionRefused},
		{"reset_mid_stream", s.resetMidStream},
		{"error_event_in_stream", s.errorEventInStream},
		{"cancel_reaches_upstream", s.cancelReachesUpstream},
		{"cancel_stream_reaches_upstream", s.cancelStreamReachesUpstream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if s.skipped(c.name) {
				t.Skip("skipped by the harness")
			}
			c.fn(t)
		})
	}
}

// Assembled is a streamed answer put back together (choice 0 only).
type Assembled struct {
	Role         string
	Content      string
	Reasoning    string
	ToolCalls    []llm.ToolCall // in index order
	FinishReason string
	Usage        *llm.Usage
	Chunks       int // chunks received, the usage chunk included
	ArgDeltas    int // tool call deltas that carried argument text
}

// Collect reads s to the end and assembles choice 0. It returns the error that ended the stream
// (nil for io.EOF) together with what was assembled until then. It does not close s.
func Collect(s llm.Stream) (*Assembled, error) {
	a := &Assembled{}
	calls := map[int32]*llm.ToolCall{}
	var order []int32
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			a.finishCalls(calls, order)
			return a, err
		}
		a.Chunks++
		if c.Usage != nil {
			a.Usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Index != 0 {
				continue
			}
			if ch.Role != "" {
				a.Role = ch.Role
			}
			if ch.Content != nil {
				a.Content += *ch.Content
			}
			if ch.ReasoningContent != nil {
				a.Reasoning += *ch.ReasoningContent
			}
			if ch.FinishReason != "" {
				a.FinishReason = ch.FinishReason
			}
			for _, d := range ch.ToolCalls {
				tc, ok := calls[d.Index]
				if !ok {
					tc = &llm.ToolCall{}
					calls[d.Index] = tc
					order = append(order, d.Index)
				}
				if d.ID != "" {
					tc.ID = d.ID
				}
				if d.Name != "" {
					tc.Name = d.Name
				}
				if d.Arguments != "" {
					a.ArgDeltas++
				}
				tc.Arguments += d.Arguments
			}
		}
	}
	a.finishCalls(calls, order)
	return a, nil
}

func (a *Assembled) finishCalls(calls map[int32]*llm.ToolCall, order []int32) {
	slices.Sort(order)
	for _, i := range order {
		a.ToolCalls = append(a.ToolCalls, *calls[i])
	}
}

// WantError fails t unless err is an *llm.Error of kind want carrying the provider name.
func WantError(t testing.TB, err error, want llm.Kind, provider string) *llm.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want kind %v", want)
	}
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	if e.Kind != want {
		t.Errorf("kind = %v, want %v (error: %v)", e.Kind, want, err)
	}
	if provider != "" && e.Provider != provider {
		t.Errorf("Provider = %q, want %q", e.Provider, provider)
	}
	if strings.TrimSpace(e.SafeMessage()) == "" {
		t.Error("empty client message")
	}
	return e
}

// testContext returns a test context bounded so that a hung adapter fails instead of blocking the run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) skipped(name string) bool { return slices.Contains(s.h.Skip, name) }
