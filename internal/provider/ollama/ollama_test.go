package ollama_test

import (
	"context"
	"encoding/json"
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
	"github.com/switchyard/switchyard/internal/provider/ollama"
	"github.com/switchyard/switchyard/internal/provider/ollama/ollamatest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		New:    ollama.New,
		Config: provider.Config{Name: "local", Type: "ollama", Options: map[string]string{"num_ctx": "8192", "keep_alive": "10m"}},
		Model:  "llama3.2",
		Wire:   &ollamatest.Wire{},
		Check:  checkAgainstSpec,
		Skip: []string{
			// Ollama sends each tool call whole in one line: arguments split over deltas cannot
			// be expressed (TestStreamFixtures covers streamed tool calls).
			"stream_tool_call_split",
			// Ollama has no content filter and no such done_reason.
			"finish_reason/content_filter",
		},
		ErrorCases: []providertest.ErrorCase{
			{Name: "404 model not pulled", Err: providertest.UpstreamError{Status: 404, Message: `model "llama9" not found, try pulling it first`}, Want: llm.KindNotFound, WantCode: "model_not_found"},
			{Name: "502 cloud model unreachable", Stream: true, Err: providertest.UpstreamError{Status: 502, Message: "upstream model unreachable"}, Want: llm.KindUpstream},
		},
	})
}

// capture is a loopback Ollama answering every request with status and body, keeping the
// requests it saw.
type capture struct {
	srv    *httptest.Server
	body   chan []byte
	header chan http.Header
}

func newCapture(t *testing.T, status int, contentType, answer string) *capture {
	t.Helper()
	c := &capture{body: make(chan []byte, 8), header: make(chan http.Header, 8)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		checkAgainstSpec(t, r, b)
		c.body <- b
		c.header <- r.Header.Clone()
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func newProvider(t *testing.T, cfg provider.Config) llm.Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "local"
	}
	p, err := ollama.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func userRequest(text string) *llm.ChatRequest {
	return &llm.ChatRequest{Model: "qwen3", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, text)}}
}

const okAnswer = `{"model":"qwen3","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"ok"},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1}`

// TestStreamFixtures replays NDJSON transcripts shaped like Ollama's: thinking then tool calls
// without ids, text with a length stop, and an error line after a 200.
func TestStreamFixtures(t *testing.T) {
	cases := []struct {
		file                      string
		wantReasoning, wantText   string
		wantCalls                 []llm.ToolCall // ids checked for shape only when empty here
		wantFinish                string
		wantPrompt, wantCompleted int32
		wantErr                   llm.Kind // KindInternal: no error
		wantMsg                   string
	}{
		{file: "stream_tool_calls.ndjson", wantReasoning: "The user wants the weather in two cities.",
			wantCalls: []llm.ToolCall{
				{Name: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`},
				{ID: "call_x7", Name: "get_weather", Arguments: `{"city":"Tokyo","unit":"celsius"}`},
			}, wantFinish: llm.FinishToolCalls, wantPrompt: 186, wantCompleted: 61},
		{file: "stream_length.ndjson", wantText: "Once upon a time, in a", wantFinish: llm.FinishLength, wantPrompt: 14, wantCompleted: 8},
		{file: "stream_error.ndjson", wantText: "The sky", wantErr: llm.KindUpstream, wantMsg: "unexpected EOF"},
		{file: "stream_truncated.ndjson", wantText: "Hel", wantErr: llm.KindUpstream},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			up := newCapture(t, 200, "application/x-ndjson", fixture(t, c.file))
			p := newProvider(t, provider.Config{BaseURL: up.srv.URL})
			st, err := p.ChatStream(context.Background(), userRequest("x"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			a, err := providertest.Collect(st)
			if c.wantErr != llm.KindInternal {
				e := providertest.WantError(t, err, c.wantErr, "local")
				if !strings.Contains(e.UpstreamMessage, c.wantMsg) {
					t.Errorf("UpstreamMessage = %q, want …%s…", e.UpstreamMessage, c.wantMsg)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if a.Reasoning != c.wantReasoning || a.Content != c.wantText {
				t.Errorf("reasoning %q content %q, want %q and %q", a.Reasoning, a.Content, c.wantReasoning, c.wantText)
			}
			for i := range a.ToolCalls {
				if c.wantCalls[i].ID == "" && strings.HasPrefix(a.ToolCalls[i].ID, "call_") {
					c.wantCalls[i].ID = a.ToolCalls[i].ID // generated
				}
			}
			if !reflect.DeepEqual(a.ToolCalls, c.wantCalls) {
				t.Errorf("tool calls = %+v, want %+v", a.ToolCalls, c.wantCalls)
			}
			if a.FinishReason != c.wantFinish {
				t.Errorf("finish = %q, want %q", a.FinishReason, c.wantFinish)
			}
			if c.wantErr == llm.KindInternal {
				if u := a.Usage; u == nil || u.PromptTokens != c.wantPrompt || u.CompletionTokens != c.wantCompleted || u.TotalTokens != c.wantPrompt+c.wantCompleted {
					t.Errorf("usage = %+v, want %d + %d", u, c.wantPrompt, c.wantCompleted)
				}
			}
			var sent map[string]any
			json.Unmarshal(<-up.body, &sent)
			if sent["stream"] != true {
				t.Errorf("stream = %v, want true", sent["stream"])
			}
		})
	}
}

// TestErrorFixtures classifies Ollama's error bodies as its servers send them.
func TestErrorFixtures(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		header   http.Header
		want     llm.Kind
		wantCode string
		wantMsg  string // substring of the client message
	}{
		{"error_model_not_found.json", 404, nil, llm.KindNotFound, "model_not_found", "not found"},
		{"error_bad_request.json", 400, nil, llm.KindInvalidArgument, "", "invalid"},
		{"error_unauthorized.json", 401, nil, llm.KindUnauthenticated, "", "credentials"},
		{"error_rate_limit.json", 429, http.Header{"Retry-After": {"30"}}, llm.KindRateLimited, "", "rate limit"},
		{"error_internal.json", 500, nil, llm.KindUpstream, "", "failed"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body := fixture(t, c.file)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(c.status)
				io.WriteString(w, body)
			}))
			defer srv.Close()
			p := newProvider(t, provider.Config{BaseURL: srv.URL})
			_, err := p.Chat(context.Background(), userRequest("x"))
			e := providertest.WantError(t, err, c.want, "local")
			if e.Code != c.wantCode || !strings.Contains(e.SafeMessage(), c.wantMsg) {
				t.Errorf("code %q message %q, want %q and …%s…", e.Code, e.SafeMessage(), c.wantCode, c.wantMsg)
			}
			var eb struct{ Error string }
			json.Unmarshal([]byte(body), &eb)
			if e.UpstreamStatus != c.status || e.UpstreamMessage != eb.Error {
				t.Errorf("upstream %d %q, want %d %q", e.UpstreamStatus, e.UpstreamMessage, c.status, eb.Error)
			}
			if c.header != nil && e.RetryAfter != 30*time.Second {
				t.Errorf("RetryAfter = %v, want 30s", e.RetryAfter)
			}
		})
	}
}

// TestBlockingAnswer decodes a stream:false answer with thinking and an id-less tool call.
func TestBlockingAnswer(t *testing.T) {
	up := newCapture(t, 200, "application/json", fixture(t, "chat_tool_call.json"))
	p := newProvider(t, provider.Config{BaseURL: up.srv.URL})
	resp, err := p.Chat(context.Background(), userRequest("Weather in Paris?"))
	if err != nil {
		t.Fatal(err)
	}
	ch := resp.Choices[0]
	if ch.FinishReason != llm.FinishToolCalls || ch.Content != nil || ch.ReasoningContent == nil || *ch.ReasoningContent != "I should call the tool." {
		t.Errorf("choice = %+v", ch)
	}
	if len(ch.ToolCalls) != 1 || ch.ToolCalls[0].Arguments != `{"city":"Paris"}` || !strings.HasPrefix(ch.ToolCalls[0].ID, "call_") {
		t.Errorf("tool calls = %+v", ch.ToolCalls)
	}
	if resp.Created != time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC).Unix() || !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Model != "qwen3" {
		t.Errorf("id %q created %d model %q", resp.ID, resp.Created, resp.Model)
	}
	if u := resp.Usage; u == nil || *u != (llm.Usage{PromptTokens: 140, CompletionTokens: 22, TotalTokens: 162}) {
		t.Errorf("usage = %+v", u)
	}
	var sent map[string]any
	json.Unmarshal(<-up.body, &sent)
	if sent["stream"] != false {
		t.Errorf("stream = %v, want false (Ollama streams by default)", sent["stream"])
	}
}

// TestOptionsAndHeaders: configured num_ctx, keep_alive and truncate reach the requests, the key
// is a bearer token, and bad options fail New.
func TestOptionsAndHeaders(t *testing.T) {
	up := newCapture(t, 200, "application/json", okAnswer)
	p := newProvider(t, provider.Config{BaseURL: up.srv.URL + "/", APIKey: "ok-key",
		Options: map[string]string{"num_ctx": "32768", "keep_alive": "-1", "truncate": "false"}})
	if _, err := p.Chat(context.Background(), userRequest("x")); err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	json.Unmarshal(<-up.body, &sent)
	if opts, _ := sent["options"].(map[string]any); opts["num_ctx"] != 32768.0 || sent["keep_alive"] != -1.0 {
		t.Errorf("options %v keep_alive %v", sent["options"], sent["keep_alive"])
	}
	if h := <-up.header; h.Get("Authorization") != "Bearer ok-key" {
		t.Errorf("Authorization = %q", h.Get("Authorization"))
	}

	emb := newCapture(t, 200, "application/json", `{"model":"e","embeddings":[[1,2]],"prompt_eval_count":2}`)
	p = newProvider(t, provider.Config{BaseURL: emb.srv.URL, Options: map[string]string{"keep_alive": "5m", "truncate": "false"}})
	if _, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(<-emb.body, &sent)
	if sent["truncate"] != false || sent["keep_alive"] != "5m" {
		t.Errorf("embed truncate %v keep_alive %v", sent["truncate"], sent["keep_alive"])
	}

	for _, opts := range []map[string]string{{"num_ctx": "0"}, {"num_ctx": "big"}, {"keep_alive": "soon"}, {"truncate": "maybe"}, {"nm_ctx": "1"}} {
		if _, err := ollama.New(provider.Config{Name: "x", Options: opts}); err == nil {
			t.Errorf("New with options %v succeeded", opts)
		}
	}
	if _, err := ollama.New(provider.Config{Name: "x", BaseURL: "localhost:11434"}); err == nil {
		t.Error("New with a base URL without scheme succeeded")
	}
}

// TestEmbedRefusals: token inputs and empty input are parameter errors, and nothing is sent.
func TestEmbedRefusals(t *testing.T) {
	p := newProvider(t, provider.Config{BaseURL: "http://127.0.0.1:1"})
	for _, req := range []*llm.EmbeddingRequest{{Model: "e", Tokens: [][]int32{{1}}}, {Model: "e"}} {
		_, err := p.(llm.Embedder).Embed(context.Background(), req)
		providertest.WantError(t, err, llm.KindInvalidArgument, "")
	}
	up := newCapture(t, 200, "application/json", `{"model":"e","embeddings":[[1]]}`)
	p = newProvider(t, provider.Config{BaseURL: up.srv.URL})
	_, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a", "b"}})
	providertest.WantError(t, err, llm.KindUpstream, "local")
	if errors.Is(err, io.EOF) {
		t.Error("error wraps io.EOF")
	}
}
