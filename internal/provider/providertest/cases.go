package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

type suite struct{ h Harness }

// handler answers one scripted upstream call.
type handler func(w http.ResponseWriter, r *http.Request, c *Call)

// upstream starts a loopback server running handle for every request and returns the adapter
// pointed at it, plus a channel receiving each decoded call.
func (s *suite) upstream(t *testing.T, handle handler) (llm.Provider, <-chan *Call) {
	t.Helper()
	calls := make(chan *Call, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream: read request: %v", err)
			return
		}
		if s.h.Check != nil {
			s.h.Check(t, r, body)
		}
		c, err := s.h.Wire.Decode(r, body)
		if err != nil {
			t.Errorf("upstream: decode request: %v\n%s", err, body)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.Header = r.Header.Clone()
		calls <- c
		handle(w, r, c)
	}))
	t.Cleanup(srv.Close)
	return s.provider(t, srv.URL), calls
}

func (s *suite) provider(t *testing.T, baseURL string) llm.Provider {
	t.Helper()
	cfg := s.h.Config
	cfg.BaseURL = baseURL + s.h.BasePath
	p, err := s.h.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func (s *suite) writeStream(w http.ResponseWriter, chunks []*llm.Chunk) {
	s.h.Wire.StartStream(w)
	f := w.(http.Flusher)
	f.Flush()
	for _, c := range chunks {
		s.h.Wire.WriteChunk(w, c)
		f.Flush()
	}
	s.h.Wire.EndStream(w)
}

func (s *suite) chatRequest(msgs ...llm.Message) *llm.ChatRequest {
	if len(msgs) == 0 {
		msgs = []llm.Message{llm.TextMessage(llm.RoleSystem, "You are terse."), llm.TextMessage(llm.RoleUser, "Say hello.")}
	}
	return &llm.ChatRequest{Model: s.h.Model, Messages: msgs}
}

func (s *suite) name() string { return s.h.Config.Name }

func textResponse(model, text, finish string, u *llm.Usage) *llm.ChatResponse {
	return &llm.ChatResponse{ID: "chatcmpl-test", Model: model, Created: 1767225600, Usage: u,
		Choices: []llm.Choice{{Content: llm.Ptr(text), FinishReason: finish}}}
}

func textChunk(model, role, text string) *llm.Chunk {
	return &llm.Chunk{ID: "chatcmpl-test", Model: model, Created: 1767225600,
		Choices: []llm.ChunkChoice{{Role: role, Content: llm.Ptr(text)}}}
}

func finishChunk(model, reason string) *llm.Chunk {
	return &llm.Chunk{ID: "chatcmpl-test", Model: model, Created: 1767225600,
		Choices: []llm.ChunkChoice{{FinishReason: reason}}}
}

func usageChunk(model string, u *llm.Usage) *llm.Chunk {
	return &llm.Chunk{ID: "chatcmpl-test", Model: model, Created: 1767225600, Usage: u}
}

func toolChunk(model string, d ...llm.ToolCallDelta) *llm.Chunk {
	return &llm.Chunk{ID: "chatcmpl-test", Model: model, Created: 1767225600,
		Choices: []llm.ChunkChoice{{ToolCalls: d}}}
}

var testUsage = &llm.Usage{PromptTokens: 21, CompletionTokens: 4, TotalTokens: 25, CachedTokens: 8, ReasoningTokens: 2}

func wantUsage(t *testing.T, got *llm.Usage) {
	t.Helper()
	if got == nil {
		t.Fatal("no usage")
	}
	if got.PromptTokens != testUsage.PromptTokens || got.CompletionTokens != testUsage.CompletionTokens || got.TotalTokens != testUsage.TotalTokens {
		t.Errorf("usage = %+v, want %+v", *got, *testUsage)
	}
}

func recvCall(t *testing.T, calls <-chan *Call) *Call {
	t.Helper()
	select {
	case c := <-calls:
		return c
	default:
		t.Fatal("the upstream received no request")
		return nil
	}
}

func (s *suite) chat(t *testing.T) {
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.WriteChat(w, textResponse(s.h.Model, "Hello.", llm.FinishStop, testUsage))
	})
	req := s.chatRequest()
	req.Temperature = llm.Ptr(0.2)
	resp, err := p.Chat(testContext(t), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Content == nil || *resp.Choices[0].Content != "Hello." {
		t.Fatalf("choices = %+v, want one with content Hello.", resp.Choices)
	}
	if resp.Choices[0].FinishReason != llm.FinishStop {
		t.Errorf("finish = %q, want stop", resp.Choices[0].FinishReason)
	}
	wantUsage(t, resp.Usage)
	c := recvCall(t, calls)
	if c.Op != "chat" || c.Stream {
		t.Errorf("upstream call = %s stream=%v, want blocking chat", c.Op, c.Stream)
	}
	if c.Chat.Model != s.h.Model || len(c.Chat.Messages) != 2 || c.Chat.Messages[1].Text() != "Say hello." {
		t.Errorf("upstream request = %+v", c.Chat)
	}
	if c.Chat.Temperature == nil || *c.Chat.Temperature != 0.2 {
		t.Errorf("temperature = %v, want 0.2", c.Chat.Temperature)
	}
}

func (s *suite) stream(t *testing.T) {
	m := s.h.Model
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.writeStream(w, []*llm.Chunk{
			textChunk(m, llm.RoleAssistant, "Hel"), textChunk(m, "", "lo"), textChunk(m, "", " there."),
			finishChunk(m, llm.FinishStop), usageChunk(m, testUsage),
		})
	})
	st, err := p.ChatStream(testContext(t), s.chatRequest())
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if a.Content != "Hello there." || a.FinishReason != llm.FinishStop || a.Role != llm.RoleAssistant {
		t.Errorf("assembled = %+v", a)
	}
	if a.Chunks < 3 {
		t.Errorf("%d chunks, want the upstream's pieces one by one", a.Chunks)
	}
	wantUsage(t, a.Usage)
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after the end = %v, want io.EOF", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c := recvCall(t, calls); !c.Stream {
		t.Error("upstream call is not a stream")
	}
}

var weatherTool = llm.Tool{Name: "get_weather", Description: "Current weather for a city.",
	Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}`)}

func (s *suite) streamToolCallSplit(t *testing.T) {
	m := s.h.Model
	args := `{"city":"Paris","unit":"c"}`
	chunks := []*llm.Chunk{toolChunk(m, llm.ToolCallDelta{Index: 0, ID: "call_abc123", Name: "get_weather"})}
	for i := 0; i < len(args); i += 4 {
		chunks = append(chunks, toolChunk(m, llm.ToolCallDelta{Index: 0, Arguments: args[i:min(i+4, len(args))]}))
	}
	chunks = append(chunks, finishChunk(m, llm.FinishToolCalls), usageChunk(m, testUsage))
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) { s.writeStream(w, chunks) })

	req := s.chatRequest(llm.TextMessage(llm.RoleUser, "Weather in Paris?"))
	req.Tools = []llm.Tool{weatherTool}
	req.ToolChoice = &llm.ToolChoice{Mode: "auto"}
	st, err := p.ChatStream(testContext(t), req)
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	want := []llm.ToolCall{{ID: "call_abc123", Name: "get_weather", Arguments: args}}
	if !reflect.DeepEqual(a.ToolCalls, want) {
		t.Errorf("tool calls = %+v, want %+v", a.ToolCalls, want)
	}
	if a.ArgDeltas < 2 || a.FinishReason != llm.FinishToolCalls {
		t.Errorf("argument deltas = %d, finish = %q; want ≥2 and tool_calls", a.ArgDeltas, a.FinishReason)
	}
	c := recvCall(t, calls)
	if len(c.Chat.Tools) != 1 || c.Chat.Tools[0].Name != "get_weather" || !jsonEqual(c.Chat.Tools[0].Parameters, weatherTool.Parameters) {
		t.Errorf("upstream tools = %+v", c.Chat.Tools)
	}
}

func (s *suite) twoToolCalls(t *testing.T) {
	m := s.h.Model
	want := []llm.ToolCall{
		{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		{ID: "call_2", Name: "get_weather", Arguments: `{"city":"Tokyo"}`},
	}
	p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		if !c.Stream {
			s.h.Wire.WriteChat(w, &llm.ChatResponse{ID: "chatcmpl-test", Model: m, Usage: testUsage,
				Choices: []llm.Choice{{ToolCalls: want, FinishReason: llm.FinishToolCalls}}})
			return
		}
		s.writeStream(w, []*llm.Chunk{
			toolChunk(m, llm.ToolCallDelta{Index: 0, ID: "call_1", Name: "get_weather"}),
			toolChunk(m, llm.ToolCallDelta{Index: 0, Arguments: `{"city":`}),
			toolChunk(m, llm.ToolCallDelta{Index: 1, ID: "call_2", Name: "get_weather"}),
			toolChunk(m, llm.ToolCallDelta{Index: 1, Arguments: `{"city":"Tokyo"}`}),
			toolChunk(m, llm.ToolCallDelta{Index: 0, Arguments: `"Paris"}`}),
			finishChunk(m, llm.FinishToolCalls), usageChunk(m, testUsage),
		})
	})
	req := s.chatRequest(llm.TextMessage(llm.RoleUser, "Weather in Paris and Tokyo?"))
	req.Tools = []llm.Tool{weatherTool}
	req.ParallelToolCalls = llm.Ptr(true)

	resp, err := p.Chat(testContext(t), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if len(resp.Choices) != 1 || !reflect.DeepEqual(resp.Choices[0].ToolCalls, want) {
		t.Errorf("blocking tool calls = %+v, want %+v", resp.Choices, want)
	} else if c := resp.Choices[0].Content; c != nil && *c != "" {
		t.Errorf("content = %q, want none", *c)
	}

	st, err := p.ChatStream(testContext(t), req)
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if !reflect.DeepEqual(a.ToolCalls, want) || a.FinishReason != llm.FinishToolCalls {
		t.Errorf("streamed tool calls = %+v finish %q, want %+v", a.ToolCalls, a.FinishReason, want)
	}
}

func (s *suite) toolResultFollowup(t *testing.T) {
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.WriteChat(w, textResponse(s.h.Model, "It is 18°C in Paris.", llm.FinishStop, testUsage))
	})
	call := llm.ToolCall{ID: "call_abc123", Name: "get_weather", Arguments: `{"city":"Paris"}`}
	req := s.chatRequest(
		llm.TextMessage(llm.RoleUser, "Weather in Paris?"),
		llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call}},
		llm.Message{Role: llm.RoleTool, ToolCallID: call.ID, Content: []llm.Part{{Type: llm.PartText, Text: `{"temp_c":18}`}}},
	)
	req.Tools = []llm.Tool{weatherTool}
	resp, err := p.Chat(testContext(t), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if c := resp.Choices[0].Content; c == nil || *c != "It is 18°C in Paris." {
		t.Errorf("content = %v", c)
	}
	c := recvCall(t, calls)
	msgs := c.Chat.Messages
	if len(msgs) != 3 {
		t.Fatalf("upstream got %d messages, want 3", len(msgs))
	}
	if msgs[1].Role != llm.RoleAssistant || !reflect.DeepEqual(msgs[1].ToolCalls, []llm.ToolCall{call}) {
		t.Errorf("assistant message = %+v", msgs[1])
	}
	if msgs[2].Role != llm.RoleTool || msgs[2].ToolCallID != call.ID || msgs[2].Text() != `{"temp_c":18}` {
		t.Errorf("tool message = %+v", msgs[2])
	}
}

func (s *suite) imageInput(t *testing.T) {
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.WriteChat(w, textResponse(s.h.Model, "A cat.", llm.FinishStop, testUsage))
	})
	img := llm.Part{Type: llm.PartImageURL, ImageURL: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", ImageDetail: "low"}
	req := s.chatRequest(llm.Message{Role: llm.RoleUser, ContentIsParts: true,
		Content: []llm.Part{{Type: llm.PartText, Text: "What is this?"}, img}})
	if _, err := p.Chat(testContext(t), req); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	c := recvCall(t, calls)
	parts := c.Chat.Messages[0].Content
	if len(parts) != 2 || parts[0].Text != "What is this?" || parts[1].Type != llm.PartImageURL || parts[1].ImageURL != img.ImageURL {
		t.Errorf("upstream parts = %+v", parts)
	}
	if parts[1].ImageDetail != "" && parts[1].ImageDetail != img.ImageDetail {
		t.Errorf("image detail = %q, want %q", parts[1].ImageDetail, img.ImageDetail)
	}
}

func (s *suite) stop(t *testing.T) {
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.WriteChat(w, textResponse(s.h.Model, "one, two,", llm.FinishStop, testUsage))
	})
	req := s.chatRequest(llm.TextMessage(llm.RoleUser, "Count to five."))
	req.Stop = []string{"three", "END"}
	resp, err := p.Chat(testContext(t), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if resp.Choices[0].FinishReason != llm.FinishStop {
		t.Errorf("finish = %q, want stop", resp.Choices[0].FinishReason)
	}
	if c := recvCall(t, calls); !reflect.DeepEqual(c.Chat.Stop, req.Stop) {
		t.Errorf("upstream stop = %q, want %q", c.Chat.Stop, req.Stop)
	}
}

func (s *suite) maxTokensLength(t *testing.T) {
	m := s.h.Model
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		if !c.Stream {
			s.h.Wire.WriteChat(w, textResponse(m, "Once upon a", llm.FinishLength, testUsage))
			return
		}
		s.writeStream(w, []*llm.Chunk{textChunk(m, llm.RoleAssistant, "Once upon"), textChunk(m, "", " a"),
			finishChunk(m, llm.FinishLength), usageChunk(m, testUsage)})
	})
	req := s.chatRequest(llm.TextMessage(llm.RoleUser, "Tell a story."))
	req.MaxTokens = llm.Ptr[int32](3)
	resp, err := p.Chat(testContext(t), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if resp.Choices[0].FinishReason != llm.FinishLength {
		t.Errorf("finish = %q, want length", resp.Choices[0].FinishReason)
	}
	if c := recvCall(t, calls); c.Chat.MaxTokens == nil || *c.Chat.MaxTokens != 3 {
		t.Errorf("upstream max tokens = %v, want 3", c.Chat.MaxTokens)
	}
	st, err := p.ChatStream(testContext(t), req)
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if err != nil || a.FinishReason != llm.FinishLength || a.Content != "Once upon a" {
		t.Errorf("stream = %+v, %v; want length", a, err)
	}
}

func (s *suite) embeddingsOrder(t *testing.T) {
	vecs := [][]float32{{0.1, 0.2, 0.3}, {0.4, 0.5, 0.6}, {-0.7, 0.8, 0.9}}
	p, calls := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.WriteEmbeddings(w, &llm.EmbeddingResponse{Model: s.h.Model, Vectors: vecs, PromptTokens: 9}, []int{2, 0, 1})
	})
	e, ok := p.(llm.Embedder)
	if !ok {
		t.Skip("not an llm.Embedder")
	}
	req := &llm.EmbeddingRequest{Model: s.h.Model, Texts: []string{"alpha", "beta", "gamma"}, Dimensions: llm.Ptr[int32](3)}
	resp, err := e.Embed(testContext(t), req)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if !reflect.DeepEqual(resp.Vectors, vecs) {
		t.Errorf("vectors = %v, want input order %v", resp.Vectors, vecs)
	}
	if resp.PromptTokens != 9 {
		t.Errorf("prompt tokens = %d, want 9", resp.PromptTokens)
	}
	c := recvCall(t, calls)
	if c.Op != "embed" || !reflect.DeepEqual(c.Embed.Texts, req.Texts) || c.Embed.Dimensions == nil || *c.Embed.Dimensions != 3 {
		t.Errorf("upstream embed request = %+v", c.Embed)
	}
}

func (s *suite) errors(t *testing.T) {
	for _, ec := range append(CommonErrorCases(), s.h.ErrorCases...) {
		t.Run(ec.Name, func(t *testing.T) {
			p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
				s.h.Wire.WriteError(w, &ec.Err)
			})
			var err error
			if ec.Stream {
				var st llm.Stream
				st, err = p.ChatStream(testContext(t), s.chatRequest())
				if st != nil {
					st.Close()
					t.Fatal("ChatStream returned a stream for an error answer")
				}
			} else {
				_, err = p.Chat(testContext(t), s.chatRequest())
			}
			e := WantError(t, err, ec.Want, s.name())
			if e.UpstreamStatus != ec.Err.Status {
				t.Errorf("UpstreamStatus = %d, want %d", e.UpstreamStatus, ec.Err.Status)
			}
			if ec.WantCode != "" && e.Code != ec.WantCode {
				t.Errorf("Code = %q, want %q", e.Code, ec.WantCode)
			}
			if ec.WantRetryAfter != 0 && e.RetryAfter != ec.WantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, ec.WantRetryAfter)
			}
			if e.UpstreamMessage == "" {
				t.Error("UpstreamMessage is empty")
			}
		})
	}
}

func (s *suite) connectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := s.provider(t, "http://"+addr)
	_, err = p.Chat(testContext(t), s.chatRequest())
	WantError(t, err, llm.KindUnavailable, s.name())
	_, err = p.ChatStream(testContext(t), s.chatRequest())
	WantError(t, err, llm.KindUnavailable, s.name())
}

func (s *suite) resetMidStream(t *testing.T) {
	m := s.h.Model
	p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.StartStream(w)
		s.h.Wire.WriteChunk(w, textChunk(m, llm.RoleAssistant, "Hel"))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST
		}
		conn.Close()
	})
	st, err := p.ChatStream(testContext(t), s.chatRequest())
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if a.Content != "Hel" {
		t.Errorf("content before the reset = %q, want Hel", a.Content)
	}
	// Either service kind is right for a connection that broke after the upstream answered.
	if k := llm.KindOf(err); k == llm.KindUnavailable {
		WantError(t, err, llm.KindUnavailable, s.name())
	} else {
		WantError(t, err, llm.KindUpstream, s.name())
	}
}

func (s *suite) errorEventInStream(t *testing.T) {
	m := s.h.Model
	p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.StartStream(w)
		s.h.Wire.WriteChunk(w, textChunk(m, llm.RoleAssistant, "Partial"))
		s.h.Wire.WriteStreamError(w, &UpstreamError{Type: "server_error", Message: "The server had an error while processing your request."})
	})
	st, err := p.ChatStream(testContext(t), s.chatRequest())
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if a.Content != "Partial" {
		t.Errorf("content before the error = %q", a.Content)
	}
	e := WantError(t, err, llm.KindUpstream, s.name())
	if e.UpstreamMessage == "" {
		t.Error("UpstreamMessage is empty")
	}
	if _, again := st.Recv(); again == nil {
		t.Error("Recv after the error returned a chunk")
	}
}

func (s *suite) cancelReachesUpstream(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		close(started)
		<-r.Context().Done()
		close(ended)
	})
	ctx, cancel := context.WithCancel(testContext(t))
	errc := make(chan error, 1)
	go func() { _, err := p.Chat(ctx, s.chatRequest()); errc <- err }()
	select {
	case <-started:
	case err := <-errc: // the call ended before reaching the upstream: fail instead of hanging
		cancel()
		t.Fatalf("Chat returned before the upstream saw the request: %v", err)
	}
	cancel()
	WantError(t, <-errc, llm.KindCanceled, s.name())
	waitClosed(t, ended, "the upstream handler never saw its request end")
}

func (s *suite) cancelStreamReachesUpstream(t *testing.T) {
	m := s.h.Model
	ended := make(chan struct{})
	p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		s.h.Wire.StartStream(w)
		s.h.Wire.WriteChunk(w, textChunk(m, llm.RoleAssistant, "Hel"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	})
	ctx, cancel := context.WithCancel(testContext(t))
	st, err := p.ChatStream(ctx, s.chatRequest())
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	if _, err := st.Recv(); err != nil {
		t.Fatalf("first Recv: %v", err)
	}
	cancel()
	_, err = st.Recv()
	WantError(t, err, llm.KindCanceled, s.name())
	waitClosed(t, ended, "the upstream handler never saw its streamed request end")
}

func waitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second): // a guard against a hang, not synchronisation
		t.Fatal(msg)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
