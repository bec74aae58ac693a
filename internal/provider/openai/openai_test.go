package openai_test

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
	"github.com/switchyard/switchyard/internal/provider/openai"
	"github.com/switchyard/switchyard/internal/provider/openai/openaitest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		New:      openai.New,
		Config:   provider.Config{Name: "oai", Type: "openai", APIKey: "sk-test"},
		BasePath: "/v1",
		Model:    "gpt-4o-mini",
		Wire:     openaitest.Wire{},
		Check:    checkAgainstSpec,
		ErrorCases: []providertest.ErrorCase{
			{Name: "429 insufficient_quota", Err: providertest.UpstreamError{Status: 429, Type: "insufficient_quota", Code: "insufficient_quota", Message: "You exceeded your current quota"}, Want: llm.KindQuotaExceeded, WantCode: "insufficient_quota"},
			{Name: "400 context_length_exceeded", Err: providertest.UpstreamError{Status: 400, Type: "invalid_request_error", Code: "context_length_exceeded", Message: "This model's maximum context length is 128000 tokens."}, Want: llm.KindBusiness, WantCode: "context_length_exceeded"},
			{Name: "400 content_filter", Err: providertest.UpstreamError{Status: 400, Type: "invalid_request_error", Code: "content_filter", Message: "The response was filtered"}, Want: llm.KindBusiness, WantCode: "content_filter"},
			{Name: "422", Err: providertest.UpstreamError{Status: 422, Message: "Unprocessable"}, Want: llm.KindInvalidArgument},
			{Name: "408", Err: providertest.UpstreamError{Status: 408, Message: "Request timeout"}, Want: llm.KindTimeout},
			{Name: "504", Err: providertest.UpstreamError{Status: 504, Message: "Gateway timeout"}, Want: llm.KindTimeout},
			{Name: "429 retry-after-ms", Err: providertest.UpstreamError{Status: 429, Type: "requests", Message: "Rate limit reached", Header: http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"2"}}}, Want: llm.KindRateLimited, WantRetryAfter: 1500 * time.Millisecond},
		},
	})
}

// capture is a loopback upstream answering every request with status and body, keeping the
// last request it saw.
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
	p, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const okAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`

// TestRequestEncoding checks the JSON sent upstream for each canonical feature.
func TestRequestEncoding(t *testing.T) {
	schema := []byte(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`)
	cases := []struct {
		name string
		req  llm.ChatRequest
		want string // JSON object whose members must appear in the request, compared as values
	}{
		{"plain text is a string",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "hi")}},
			`{"messages":[{"role":"user","content":"hi"}]}`},
		{"text sent as parts stays parts",
			llm.ChatRequest{Messages: []llm.Message{{Role: "user", ContentIsParts: true, Content: []llm.Part{{Type: "text", Text: "hi"}}}}},
			`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`},
		{"assistant tool call has null content",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x"), {Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: "{}"}}}, {Role: "tool", ToolCallID: "c1", Content: []llm.Part{{Type: "text", Text: "r"}}}}},
			`{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"r","tool_call_id":"c1"}]}`},
		{"audio and file parts",
			llm.ChatRequest{Messages: []llm.Message{{Role: "user", ContentIsParts: true, Content: []llm.Part{{Type: "input_audio", AudioData: "UklGRg==", AudioFormat: "wav"}, {Type: "file", FileData: "data:application/pdf;base64,JVBERi0=", FileName: "a.pdf"}}}}},
			`{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}}]}]}`},
		{"max_completion_tokens by default",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x")}, MaxTokens: llm.Ptr[int32](9)},
			`{"max_completion_tokens":9}`},
		{"max_tokens when the client used it",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x")}, MaxTokens: llm.Ptr[int32](9), LegacyMaxTokensName: true},
			`{"max_tokens":9}`},
		{"named tool choice",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x")}, Tools: []llm.Tool{{Name: "f", Parameters: schema, Strict: llm.Ptr(true)}}, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "f"}, ParallelToolCalls: llm.Ptr(false)},
			`{"tools":[{"type":"function","function":{"name":"f","parameters":` + string(schema) + `,"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`},
		{"tool choice mode",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x")}, Tools: []llm.Tool{{Name: "f"}}, ToolChoice: &llm.ToolChoice{Mode: "required"}},
			`{"tool_choice":"required"}`},
		{"json schema response format",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x")}, ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "thing", SchemaDescription: "d", Schema: schema, Strict: llm.Ptr(true)}},
			`{"response_format":{"type":"json_schema","json_schema":{"name":"thing","description":"d","schema":` + string(schema) + `,"strict":true}}}`},
		{"sampling and the rest",
			llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("developer", "be brief"), {Role: "user", Name: "ann", Content: []llm.Part{{Type: "text", Text: "x"}}}}, Temperature: llm.Ptr(0.5), TopP: llm.Ptr(0.9), Stop: []string{"\n\n"}, PresencePenalty: llm.Ptr(0.1), FrequencyPenalty: llm.Ptr(-0.1), Seed: llm.Ptr[int64](42), N: llm.Ptr[int32](2), User: "u-1", ReasoningEffort: "low"},
			`{"messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"x","name":"ann"}],"temperature":0.5,"top_p":0.9,"stop":["\n\n"],"presence_penalty":0.1,"frequency_penalty":-0.1,"seed":42,"n":2,"user":"u-1","reasoning_effort":"low"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "application/json", okAnswer)
			p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1", APIKey: "k"})
			c.req.Model = "gpt-4o"
			if _, err := p.Chat(context.Background(), &c.req); err != nil {
				t.Fatal(err)
			}
			var got, want map[string]any
			if err := json.Unmarshal(<-up.body, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(c.want), &want); err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			if _, ok := got["stream"]; ok {
				t.Error("blocking request carries stream")
			}
			if _, ok := want["max_tokens"]; !ok && got["max_tokens"] != nil {
				t.Error("max_tokens sent although the client used max_completion_tokens")
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	cases := []struct {
		name     string
		key      string
		headers  map[string]string
		wantAuth string
		wantHdr  map[string]string
	}{
		{"bearer key", "sk-1", nil, "Bearer sk-1", nil},
		{"no key, no header", "", nil, "", nil},
		{"extra headers", "", map[string]string{"api-key": "azure-1", "OpenAI-Project": "proj_1"}, "", map[string]string{"Api-Key": "azure-1", "Openai-Project": "proj_1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "application/json", okAnswer)
			p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1/", APIKey: c.key, Headers: c.headers})
			if _, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}}); err != nil {
				t.Fatal(err)
			}
			<-up.body
			h := <-up.header
			if got := h.Get("Authorization"); got != c.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, c.wantAuth)
			}
			if _, ok := h["Authorization"]; c.wantAuth == "" && ok {
				t.Error("Authorization header present without a key")
			}
			for k, v := range c.wantHdr {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
		})
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"ftp://x/v1", "localhost:8000", "http://"} {
		if _, err := openai.New(provider.Config{Name: "x", BaseURL: u}); err == nil {
			t.Errorf("New(%q) = nil error", u)
		}
	}
	p, err := openai.New(provider.Config{Name: "x", Models: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(llm.ModelLister).Models(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Models = %v", got)
	}
}

// TestStreamFixture replays a recorded-style OpenAI transcript: role chunk, two parallel tool
// calls with arguments over many deltas, keep-alive comments, the usage chunk, [DONE].
func TestStreamFixture(t *testing.T) {
	transcript, err := os.ReadFile("testdata/stream_tool_calls.sse")
	if err != nil {
		t.Fatal(err)
	}
	up := newCapture(t, 200, "text/event-stream", string(transcript))
	p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1"})
	st, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "gpt-4o", Messages: []llm.Message{llm.TextMessage("user", "Weather in Paris and Tokyo?")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ToolCall{
		{ID: "call_6Yq3WnZ2pG0pQm8sJ4rT1kLx", Name: "get_weather", Arguments: `{"location": "Paris, France", "unit": "celsius"}`},
		{ID: "call_Hc9Vb0uFq1Ze7Xy2Lm3Np4Qr", Name: "get_weather", Arguments: `{"location": "Tokyo, Japan", "unit": "celsius"}`},
	}
	if !reflect.DeepEqual(a.ToolCalls, want) {
		t.Errorf("tool calls =\n%+v\nwant\n%+v", a.ToolCalls, want)
	}
	if a.FinishReason != llm.FinishToolCalls || a.Role != "assistant" {
		t.Errorf("finish %q role %q", a.FinishReason, a.Role)
	}
	if a.Usage == nil || a.Usage.PromptTokens != 88 || a.Usage.CompletionTokens != 57 || a.Usage.CachedTokens != 0 {
		t.Errorf("usage = %+v", a.Usage)
	}
	var sent map[string]any
	json.Unmarshal(<-up.body, &sent)
	if so, _ := sent["stream_options"].(map[string]any); sent["stream"] != true || so["include_usage"] != true {
		t.Errorf("stream flags sent: stream=%v stream_options=%v", sent["stream"], sent["stream_options"])
	}
}

// TestReasoningAliases: reasoning_content (DeepSeek) and reasoning (vLLM, OpenRouter) both
// reach ReasoningContent, blocking and streamed; null content stays nil, "" stays "".
func TestReasoningAliases(t *testing.T) {
	cases := []struct {
		name, answer string
		wantContent  *string
	}{
		{"reasoning_content", `{"id":"1","choices":[{"index":0,"message":{"role":"assistant","content":"","reasoning_content":"think"},"finish_reason":"stop"}]}`, llm.Ptr("")},
		{"reasoning", `{"id":"1","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning":"think","refusal":null},"finish_reason":"stop"}]}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "application/json", c.answer)
			p := newProvider(t, provider.Config{Name: "v", BaseURL: up.srv.URL + "/v1"})
			resp, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}})
			if err != nil {
				t.Fatal(err)
			}
			ch := resp.Choices[0]
			if ch.ReasoningContent == nil || *ch.ReasoningContent != "think" {
				t.Errorf("reasoning = %v", ch.ReasoningContent)
			}
			if !reflect.DeepEqual(ch.Content, c.wantContent) {
				t.Errorf("content = %v, want %v", ch.Content, c.wantContent)
			}
		})
	}
	sse := "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning\":\"hm\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"m\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"yes\"},\"finish_reason\":\"stop\"}]}\n\n"
	up := newCapture(t, 200, "text/event-stream", sse) // no [DONE]: accepted after a finish_reason
	p := newProvider(t, provider.Config{Name: "v", BaseURL: up.srv.URL + "/v1"})
	st, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if err != nil || a.Reasoning != "hmm" || a.Content != "yes" {
		t.Errorf("assembled %+v, %v", a, err)
	}
}

// TestErrorFixtures classifies real-looking error bodies from OpenAI-compatible servers.
func TestErrorFixtures(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		header   http.Header
		want     llm.Kind
		wantCode string
		wantMsg  string // substring of the client message
	}{
		{"error_context_length.json", 400, nil, llm.KindBusiness, "context_length_exceeded", "maximum context length"},
		{"error_invalid_key.json", 401, nil, llm.KindUnauthenticated, "", "gateway's credentials"},
		{"error_insufficient_quota.json", 429, nil, llm.KindQuotaExceeded, "insufficient_quota", "quota"},
		{"error_rate_limit.json", 429, http.Header{"Retry-After": {"20"}}, llm.KindRateLimited, "", "rate limit"},
		{"error_model_not_found.json", 404, nil, llm.KindNotFound, "model_not_found", "not found"},
		{"error_vllm_bad_request.json", 400, nil, llm.KindBusiness, "context_length_exceeded", "maximum context length"},
		{"error_html_502.html", 502, nil, llm.KindUpstream, "", "failed"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header()[k] = v
				}
				w.WriteHeader(c.status)
				w.Write(body)
			}))
			defer srv.Close()
			p := newProvider(t, provider.Config{Name: "oai", BaseURL: srv.URL + "/v1", APIKey: "sk-bad"})
			_, err = p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}})
			e := providertest.WantError(t, err, c.want, "oai")
			if e.Code != c.wantCode {
				t.Errorf("Code = %q, want %q", e.Code, c.wantCode)
			}
			if !strings.Contains(e.SafeMessage(), c.wantMsg) {
				t.Errorf("client message %q lacks %q", e.SafeMessage(), c.wantMsg)
			}
			if strings.Contains(e.SafeMessage(), "sk-") {
				t.Errorf("client message leaks the key: %q", e.SafeMessage())
			}
			if e.UpstreamStatus != c.status || e.UpstreamMessage == "" {
				t.Errorf("upstream status %d message %q", e.UpstreamStatus, e.UpstreamMessage)
			}
		})
	}
}

func TestTimeoutFromConfig(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	p := newProvider(t, provider.Config{Name: "oai", BaseURL: srv.URL + "/v1", Timeout: 50 * time.Millisecond})
	_, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}})
	providertest.WantError(t, err, llm.KindTimeout, "oai")
}

func TestEmbedTokensAndBadAnswers(t *testing.T) {
	cases := []struct {
		name, answer string
		wantErr      bool
	}{
		{"ok", `{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]}],"usage":{"prompt_tokens":4}}`, false},
		{"missing vector", `{"data":[{"index":0,"embedding":[1]}]}`, true},
		{"index out of range", `{"data":[{"index":0,"embedding":[1]},{"index":5,"embedding":[2]}]}`, true},
		{"repeated index", `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "application/json", c.answer)
			p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1"})
			resp, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Tokens: [][]int32{{1, 2}, {3, 4}}})
			var sent map[string]any
			json.Unmarshal(<-up.body, &sent)
			if !reflect.DeepEqual(sent["input"], []any{[]any{1.0, 2.0}, []any{3.0, 4.0}}) {
				t.Errorf("input sent = %v", sent["input"])
			}
			if c.wantErr {
				providertest.WantError(t, err, llm.KindUpstream, "oai")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(resp.Vectors, [][]float32{{1}, {2}}) || resp.PromptTokens != 4 {
				t.Errorf("resp = %+v", resp)
			}
		})
	}
}

func TestErrorInside200Body(t *testing.T) {
	up := newCapture(t, 200, "application/json", `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`)
	p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1"})
	_, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}})
	providertest.WantError(t, err, llm.KindRateLimited, "oai")
	if errors.Is(err, io.EOF) {
		t.Error("error wraps io.EOF")
	}
}

// TestStreamUsageOption: options.stream_usage false sends streams without stream_options (for
// servers that reject it); unknown options and non-boolean values are refused.
func TestStreamUsageOption(t *testing.T) {
	const sse = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
	for _, c := range []struct {
		options map[string]string
		want    bool
	}{{nil, true}, {map[string]string{"stream_usage": "true"}, true}, {map[string]string{"stream_usage": "false"}, false}} {
		up := newCapture(t, 200, "text/event-stream", sse)
		p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1", Options: c.options})
		st, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "x")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := providertest.Collect(st); err != nil {
			t.Fatal(err)
		}
		st.Close()
		var sent map[string]any
		json.Unmarshal(<-up.body, &sent)
		_, has := sent["stream_options"]
		so, _ := sent["stream_options"].(map[string]any)
		if c.want && so["include_usage"] != true || !c.want && has {
			t.Errorf("options %v: stream_options sent = %v, want include_usage %v", c.options, sent["stream_options"], c.want)
		}
	}
	for _, opts := range []map[string]string{{"stream_usage": "maybe"}, {"num_ctx": "8192"}} {
		if _, err := openai.New(provider.Config{Name: "oai", Options: opts}); err == nil {
			t.Errorf("New with options %v succeeded", opts)
		}
	}
}
