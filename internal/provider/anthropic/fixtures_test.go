package anthropic_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func chatReq() *llm.ChatRequest {
	return &llm.ChatRequest{Model: "claude-sonnet-4-5", Messages: []llm.Message{llm.TextMessage("user", "Weather in Paris?")}}
}

// TestStreamFixture replays a transcript shaped like Anthropic's: pings, a signed thinking
// block, text, a tool call whose arguments arrive in pieces (the first one empty), a tool call
// without arguments, usage split between message_start and message_delta.
func TestStreamFixture(t *testing.T) {
	up := newCapture(t, 200, "text/event-stream", readFixture(t, "stream_thinking_tool.sse"))
	p := newProvider(t, provider.Config{BaseURL: up.srv.URL, APIKey: "k"})
	st, err := p.ChatStream(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sig string
	var chunks []*llm.Chunk
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
		for _, ch := range c.Choices {
			if ch.ReasoningSignature != "" {
				if ch.FinishReason == "" {
					t.Error("signature on a chunk without the finish reason")
				}
				sig = ch.ReasoningSignature
			}
		}
	}
	a, err := providertest.Collect(&replay{chunks: chunks})
	if err != nil {
		t.Fatal(err)
	}
	if a.Role != "assistant" || a.Content != "Let me check the weather." || a.Reasoning != "The user wants the weather in Paris. I should call get_weather." {
		t.Errorf("assembled role %q content %q reasoning %q", a.Role, a.Content, a.Reasoning)
	}
	want := []llm.ToolCall{
		{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "get_weather", Arguments: `{"location": "Paris, France", "unit": "celsius"}`},
		{ID: "toolu_01VkGhVuZUJ5Y7F5ZDG7wGdR", Name: "get_time", Arguments: `{}`},
	}
	if !reflect.DeepEqual(a.ToolCalls, want) || a.ArgDeltas != 4 || a.FinishReason != llm.FinishToolCalls {
		t.Errorf("tool calls %+v (%d argument deltas), finish %q", a.ToolCalls, a.ArgDeltas, a.FinishReason)
	}
	if sig != "EqQBCkgIARABGAIiQL2Zq7Wb2tJCpR1xWYNn9xvNuK6oTy3Pw0U4yB6GdJ0vC0Q==" {
		t.Errorf("signature = %q", sig)
	}
	wantUsage := &llm.Usage{PromptTokens: 1496, CompletionTokens: 89, TotalTokens: 1585, CachedTokens: 1024}
	if !reflect.DeepEqual(a.Usage, wantUsage) {
		t.Errorf("usage = %+v, want %+v", a.Usage, wantUsage)
	}
	if last := chunks[len(chunks)-1]; last.Usage == nil || len(last.Choices) != 0 || last.ID != "msg_01Aq9w938a90dw8q" || last.Model != "claude-sonnet-4-5-20250929" {
		t.Errorf("last chunk = %+v, want the usage chunk with the message's id and model", last)
	}
}

// replay is an llm.Stream over recorded chunks.
type replay struct{ chunks []*llm.Chunk }

func (r *replay) Recv() (*llm.Chunk, error) {
	if len(r.chunks) == 0 {
		return nil, io.EOF
	}
	c := r.chunks[0]
	r.chunks = r.chunks[1:]
	return c, nil
}

func (r *replay) Close() error { return nil }

// TestStreamErrors: an error event after 200 (overloaded: the rate-limit class, retried), a
// body that ends without message_stop, a malformed event.
func TestStreamErrors(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		content string
		want    llm.Kind
	}{
		{"overloaded event", readFixture(t, "stream_overloaded.sse"), "Once upon", llm.KindRateLimited},
		{"truncated", strings.Split(readFixture(t, "stream_overloaded.sse"), "event: error")[0], "Once upon", llm.KindUpstream},
		{"malformed", "event: message_start\ndata: {\"type\":\"message_start\",\n\n", "", llm.KindUpstream},
		{"delta for a block never started", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n", "", llm.KindUpstream},
		{"api_error event", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}}\n\n", "", llm.KindUpstream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "text/event-stream", c.body)
			p := newProvider(t, provider.Config{BaseURL: up.srv.URL, APIKey: "k"})
			st, err := p.ChatStream(context.Background(), chatReq())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			a, err := providertest.Collect(st)
			if a.Content != c.content {
				t.Errorf("content = %q, want %q", a.Content, c.content)
			}
			providertest.WantError(t, err, c.want, "claude")
			if _, again := st.Recv(); again == nil {
				t.Error("Recv after the error returned a chunk")
			}
		})
	}
}

// TestEndWithoutMessageStop: a body that ends after the finish reason still delivers usage.
func TestEndWithoutMessageStop(t *testing.T) {
	body := strings.Split(readFixture(t, "stream_thinking_tool.sse"), "event: message_stop")[0]
	up := newCapture(t, 200, "text/event-stream", body)
	p := newProvider(t, provider.Config{BaseURL: up.srv.URL, APIKey: "k"})
	st, err := p.ChatStream(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if err != nil || a.Usage == nil || a.FinishReason != llm.FinishToolCalls {
		t.Errorf("assembled %+v, %v", a, err)
	}
}

// TestErrorFixtures classifies Anthropic's error bodies.
func TestErrorFixtures(t *testing.T) {
	cases := []struct {
		file      string
		status    int
		header    http.Header
		want      llm.Kind
		wantCode  string
		wantRetry time.Duration
	}{
		{"error_overloaded.json", 529, nil, llm.KindRateLimited, "", 0},
		{"error_invalid_key.json", 401, nil, llm.KindUnauthenticated, "", 0},
		{"error_permission.json", 403, nil, llm.KindPermissionDenied, "", 0},
		{"error_not_found.json", 404, nil, llm.KindNotFound, "model_not_found", 0},
		{"error_too_large.json", 413, nil, llm.KindTooLarge, "", 0},
		{"error_prompt_too_long.json", 400, nil, llm.KindBusiness, "context_length_exceeded", 0},
		{"error_billing.json", 400, nil, llm.KindQuotaExceeded, "insufficient_quota", 0},
		{"error_rate_limit.json", 429, http.Header{"Retry-After": {"12"}, "Anthropic-Ratelimit-Input-Tokens-Reset": {"2026-01-01T12:00:12Z"}}, llm.KindRateLimited, "", 12 * time.Second},
		{"error_api.json", 500, nil, llm.KindUpstream, "", 0},
		{"error_cloudflare_502.html", 502, nil, llm.KindUpstream, "", 0},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body := readFixture(t, c.file)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header()[k] = v
				}
				w.WriteHeader(c.status)
				io.WriteString(w, body)
			}))
			defer srv.Close()
			p := newProvider(t, provider.Config{BaseURL: srv.URL, APIKey: "sk-ant-secret"})
			_, err := p.Chat(context.Background(), chatReq())
			e := providertest.WantError(t, err, c.want, "claude")
			if e.Code != c.wantCode || e.RetryAfter != c.wantRetry {
				t.Errorf("Code %q RetryAfter %v, want %q %v", e.Code, e.RetryAfter, c.wantCode, c.wantRetry)
			}
			if e.UpstreamStatus != c.status || e.UpstreamMessage == "" {
				t.Errorf("upstream status %d message %q", e.UpstreamStatus, e.UpstreamMessage)
			}
			if strings.Contains(e.SafeMessage(), "sk-ant") {
				t.Errorf("client message leaks the key: %q", e.SafeMessage())
			}
		})
	}
}
