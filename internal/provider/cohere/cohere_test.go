package cohere_test

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
	"github.com/switchyard/switchyard/internal/provider/cohere"
	"github.com/switchyard/switchyard/internal/provider/cohere/coheretest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func validate(t testing.TB, r *http.Request, body []byte) {
	if err := coheretest.Validate(r, body); err != nil {
		t.Errorf("request violates the Cohere spec: %v\n%s", err, body)
	}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		New:    cohere.New,
		Config: provider.Config{Name: "co", Type: "cohere", APIKey: "co-test-key"},
		Model:  "command-a-03-2025",
		Wire:   coheretest.NewWire(),
		Check:  validate,
		Skip: []string{
			// Cohere has no content-filter finish reason: blocked content is a 498 error
			// (the "498 blocked" error case below).
			"finish_reason/content_filter",
		},
		ErrorCases: []providertest.ErrorCase{
			{Name: "400 too many tokens", Err: providertest.UpstreamError{Status: 400, Message: "too many tokens: size limit exceeded by 11326 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'."}, Want: llm.KindBusiness, WantCode: "context_length_exceeded"},
			{Name: "400 too many max tokens", Err: providertest.UpstreamError{Status: 400, Message: "too many tokens: max tokens must be less than or equal to 4096, the maximum output for this model - received 8192."}, Want: llm.KindInvalidArgument},
			{Name: "401 invalid api token", Err: providertest.UpstreamError{Status: 401, Message: "invalid api token"}, Want: llm.KindUnauthenticated},
			{Name: "402 billing", Err: providertest.UpstreamError{Status: 402, Message: "Please add or update your payment method at https://dashboard.cohere.com/billing?tab=payment to continue"}, Want: llm.KindQuotaExceeded, WantCode: "insufficient_quota"},
			{Name: "404 model", Err: providertest.UpstreamError{Status: 404, Message: "model 'xyz' not found, make sure the correct model ID was used and that you have access to the model."}, Want: llm.KindNotFound, WantCode: "model_not_found"},
			{Name: "422", Err: providertest.UpstreamError{Status: 422, Message: "invalid request: temperature must be between 0 and 1.0 inclusive."}, Want: llm.KindInvalidArgument},
			{Name: "429 per minute", Err: providertest.UpstreamError{Status: 429, Message: "You are past the per minute request limit, please wait and try again later.", Header: http.Header{"Retry-After": {"3"}}}, Want: llm.KindRateLimited, WantRetryAfter: 3 * time.Second},
			{Name: "429 trial monthly", Err: providertest.UpstreamError{Status: 429, Message: "You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key."}, Want: llm.KindQuotaExceeded},
			{Name: "498 blocked", Err: providertest.UpstreamError{Status: 498, Message: "blocked output: please adjust your prompt and try again"}, Want: llm.KindBusiness, WantCode: "content_filter"},
			{Name: "499 cancelled", Err: providertest.UpstreamError{Status: 499, Message: "request cancelled"}, Want: llm.KindUpstream},
			{Name: "501", Err: providertest.UpstreamError{Status: 501, Message: "not implemented"}, Want: llm.KindUpstream},
			{Name: "504", Err: providertest.UpstreamError{Status: 504, Message: "gateway timeout"}, Want: llm.KindTimeout},
			{Name: "402 stream", Stream: true, Err: providertest.UpstreamError{Status: 402, Message: "Maximum billing reached for this API key"}, Want: llm.KindQuotaExceeded},
		},
	})
}

// capture is a loopback upstream answering every request with status and body, keeping the
// requests it saw (each validated against the spec).
type capture struct {
	srv  *httptest.Server
	reqs chan *http.Request
	body chan []byte
}

func newCapture(t *testing.T, status int, contentType string, answers ...string) *capture {
	t.Helper()
	c := &capture{reqs: make(chan *http.Request, 8), body: make(chan []byte, 8)}
	n := 0
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		validate(t, r, b)
		c.reqs <- r.Clone(context.Background())
		c.body <- b
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, answers[min(n, len(answers)-1)])
		n++
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capture) provider(t *testing.T, cfg provider.Config) *cohere.Provider {
	t.Helper()
	cfg.BaseURL = c.srv.URL
	if cfg.Name == "" {
		cfg.Name = "co"
	}
	if cfg.APIKey == "" {
		cfg.APIKey = "k"
	}
	p, err := cohere.NewWithClient(cfg, c.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *capture) sent(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(<-c.body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const okAnswer = `{"id":"r1","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"ok"}]},"usage":{"billed_units":{"input_tokens":2,"output_tokens":1},"tokens":{"input_tokens":3,"output_tokens":1}}}`

func TestRequestShape(t *testing.T) {
	up := newCapture(t, 200, "application/json", okAnswer)
	p := up.provider(t, provider.Config{APIKey: "secret", Headers: map[string]string{"X-Client-Name": "switchyard"}})
	call := llm.ToolCall{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}
	req := &llm.ChatRequest{Model: "command-a-03-2025", Messages: []llm.Message{
		llm.TextMessage(llm.RoleSystem, "Be brief."),
		llm.TextMessage(llm.RoleDeveloper, "Answer in French."),
		{Role: llm.RoleUser, ContentIsParts: true, Content: []llm.Part{{Type: llm.PartText, Text: "What is this?"}, {Type: llm.PartImageURL, ImageURL: "https://x/cat.png", ImageDetail: "low"}}},
		{Role: llm.RoleAssistant, ReasoningContent: "I will look it up.", ToolCalls: []llm.ToolCall{call}},
		{Role: llm.RoleTool, ToolCallID: "call_1", Content: []llm.Part{{Type: llm.PartText, Text: `{"temp_c":18}`}}},
		{Role: llm.RoleAssistant, ReasoningContent: "only thoughts: left out"},
		llm.TextMessage(llm.RoleUser, "Thanks"),
	}}
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := <-up.reqs
	if r.URL.Path != "/v2/chat" || r.Header.Get("Authorization") != "Bearer secret" || r.Header.Get("X-Client-Name") != "switchyard" {
		t.Errorf("URL %s headers %v", r.URL, r.Header)
	}
	got := up.sent(t)
	want := map[string]any{
		"model": "command-a-03-2025",
		"messages": []any{
			map[string]any{"role": "system", "content": "Be brief."},
			map[string]any{"role": "system", "content": "Answer in French."},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "What is this?"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://x/cat.png", "detail": "low"}},
			}},
			map[string]any{"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": []any{
				map[string]any{"id": "call_1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}},
			}},
			map[string]any{"role": "tool", "tool_call_id": "call_1", "content": `{"temp_c":18}`},
			map[string]any{"role": "user", "content": "Thanks"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("request =\n%s\nwant\n%s", gb, wb)
	}
	if u := resp.Usage; u == nil || u.PromptTokens != 3 || u.CompletionTokens != 1 || u.TotalTokens != 4 {
		t.Errorf("usage = %+v, want tokens (not billed_units)", u)
	}
	if resp.ID != "r1" || resp.Model != "command-a-03-2025" {
		t.Errorf("id/model = %q/%q", resp.ID, resp.Model)
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResponseToolPlanAndCitations(t *testing.T) {
	up := newCapture(t, 200, "application/json", fixture(t, "response_tool_call.json"))
	p := up.provider(t, provider.Config{})
	resp, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "command-r", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "Oslo?")}})
	if err != nil {
		t.Fatal(err)
	}
	ch := resp.Choices[0]
	want := []llm.ToolCall{{ID: "get_weather_x1", Name: "get_weather", Arguments: `{"city":"Oslo"}`}}
	if !reflect.DeepEqual(ch.ToolCalls, want) || ch.FinishReason != llm.FinishToolCalls || ch.Content != nil {
		t.Errorf("choice = %+v", ch)
	}
	if ch.ReasoningContent == nil || *ch.ReasoningContent != "I will check the weather." {
		t.Errorf("reasoning = %v, want the tool plan", ch.ReasoningContent)
	}
	if u := resp.Usage; u == nil || u.PromptTokens != 5 || u.CompletionTokens != 7 {
		t.Errorf("usage = %+v, want billed_units when tokens is absent", u)
	}
}

func TestChatFinishError(t *testing.T) {
	for reason, kind := range map[string]llm.Kind{"ERROR": llm.KindUpstream, "TIMEOUT": llm.KindUpstream} {
		up := newCapture(t, 200, "application/json", `{"id":"r","finish_reason":"`+reason+`","message":{"role":"assistant","content":[]}}`)
		_, err := up.provider(t, provider.Config{}).Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x")}})
		providertest.WantError(t, err, kind, "co")
	}
	up := newCapture(t, 200, "application/json", `{"id":"r"`)
	_, err := up.provider(t, provider.Config{}).Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x")}})
	providertest.WantError(t, err, llm.KindUpstream, "co")
}

// TestStreamFixture reads a Chat v2 stream as Cohere sends it: thinking, a tool plan, two tool
// calls whose arguments arrive in pieces (the indexes count content blocks too), a citation
// and a debug event to ignore, and message-end with usage.
func TestStreamFixture(t *testing.T) {
	up := newCapture(t, 200, "text/event-stream", fixture(t, "stream_tool_calls.sse"))
	p := up.provider(t, provider.Config{})
	st, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "command-a", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "Paris and Tokyo?")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ToolCall{{ID: "w_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}, {ID: "w_2", Name: "get_weather", Arguments: `{"city":"Tokyo"}`}}
	if !reflect.DeepEqual(a.ToolCalls, want) {
		t.Errorf("tool calls = %+v, want %+v (re-indexed 0, 1)", a.ToolCalls, want)
	}
	if a.Reasoning != "Two cities. I will check both." || a.Content != "" || a.Role != llm.RoleAssistant || a.FinishReason != llm.FinishToolCalls {
		t.Errorf("assembled = %+v", a)
	}
	if u := a.Usage; u == nil || u.PromptTokens != 12 || u.CompletionTokens != 20 || u.TotalTokens != 32 || u.CachedTokens != 4 {
		t.Errorf("usage = %+v", a.Usage)
	}
	if body := up.sent(t); body["stream"] != true {
		t.Errorf("stream flag = %v", body["stream"])
	}
	if r := <-up.reqs; r.Header.Get("Accept") != "text/event-stream" {
		t.Errorf("Accept = %q", r.Header.Get("Accept"))
	}
}

func TestStreamEnds(t *testing.T) {
	start := "data: {\"id\":\"s\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n" +
		"data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hi\"}}}}\n\n"
	cases := []struct {
		name    string
		body    string
		wantErr llm.Kind // 0 with ok: no error
		ok      bool
		content string
	}{
		{"[DONE] after message-end", start + "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}\n\ndata: [DONE]\n\n", 0, true, "Hi"},
		{"[DONE] without message-end", start + "data: [DONE]\n\n", llm.KindUpstream, false, "Hi"},
		{"truncated", start, llm.KindUpstream, false, "Hi"},
		{"finish TIMEOUT", start + "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TIMEOUT\"}}\n\n", llm.KindUpstream, false, "Hi"},
		{"bare error object", start + "data: {\"message\":\"internal server error\"}\n\n", llm.KindUpstream, false, "Hi"},
		{"invalid JSON", start + "data: {not json\n\n", llm.KindUpstream, false, "Hi"},
		{"delta before start", "data: {\"type\":\"tool-call-delta\",\"index\":3,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"x\"}}}}}\n\n", llm.KindUpstream, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "text/event-stream", c.body)
			st, err := up.provider(t, provider.Config{}).ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x")}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			a, err := providertest.Collect(st)
			if a.Content != c.content {
				t.Errorf("content = %q, want %q", a.Content, c.content)
			}
			if c.ok {
				if err != nil || a.FinishReason != llm.FinishStop {
					t.Errorf("err %v finish %q", err, a.FinishReason)
				}
				return
			}
			providertest.WantError(t, err, c.wantErr, "co")
		})
	}
}

func TestNewOptions(t *testing.T) {
	cases := []struct {
		opts    map[string]string
		wantErr string
	}{
		{nil, ""},
		{map[string]string{"input_type": "search_query", "rerank_max_tokens_per_doc": "512"}, ""},
		{map[string]string{"input_type": "image"}, "input_type"},
		{map[string]string{"rerank_max_tokens_per_doc": "0"}, "rerank_max_tokens_per_doc"},
		{map[string]string{"truncate": "END"}, "unknown option"},
	}
	for _, c := range cases {
		_, err := cohere.New(provider.Config{Name: "co", Options: c.opts})
		if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("options %v: err %v, want %q", c.opts, err, c.wantErr)
		}
	}
	if _, err := cohere.New(provider.Config{Name: "co", BaseURL: "api.cohere.com"}); err == nil {
		t.Error("a base_url without scheme was accepted")
	}
}

func TestEmbed(t *testing.T) {
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		validate(t, r, b)
		var m map[string]any
		json.Unmarshal(b, &m)
		bodies = append(bodies, m)
		var vecs []any
		for _, x := range m["texts"].([]any) {
			vecs = append(vecs, providertest.EmbeddingVector(x.(string)))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "e", "embeddings": map[string]any{"float": vecs},
			"meta": map[string]any{"billed_units": map[string]any{"input_tokens": len(vecs)}}})
	}))
	defer srv.Close()
	p, err := cohere.New(provider.Config{Name: "co", APIKey: "k", BaseURL: srv.URL, Options: map[string]string{"input_type": "search_query"}})
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, 100) // more than one call's 96
	for i := range texts {
		texts[i] = strings.Repeat("x", i+1)
	}
	resp, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "embed-v4.0", Texts: texts, Dimensions: llm.Ptr[int32](256)})
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 || len(bodies[0]["texts"].([]any)) != 96 || len(bodies[1]["texts"].([]any)) != 4 {
		t.Fatalf("upstream calls = %d", len(bodies))
	}
	b := bodies[0]
	if b["input_type"] != "search_query" || !reflect.DeepEqual(b["embedding_types"], []any{"float"}) || b["output_dimension"] != 256.0 || b["model"] != "embed-v4.0" {
		t.Errorf("embed request = %v", b)
	}
	for i, v := range resp.Vectors {
		if !reflect.DeepEqual(v, providertest.EmbeddingVector(texts[i])) {
			t.Fatalf("vector %d = %v", i, v)
		}
	}
	if resp.PromptTokens != 100 {
		t.Errorf("prompt tokens = %d, want the sum of billed input tokens", resp.PromptTokens)
	}
	_, err = p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "m", Tokens: [][]int32{{1}}})
	providertest.WantError(t, err, llm.KindInvalidArgument, "")
}

func TestEmbedDefaultInputTypeAndBadAnswer(t *testing.T) {
	up := newCapture(t, 200, "application/json", `{"id":"e","embeddings":{"float":[[1,2]]}}`)
	_, err := up.provider(t, provider.Config{}).Embed(context.Background(), &llm.EmbeddingRequest{Model: "embed-english-v3.0", Texts: []string{"a", "b"}})
	providertest.WantError(t, err, llm.KindUpstream, "co")
	if b := up.sent(t); b["input_type"] != "search_document" {
		t.Errorf("input_type = %v, want the default search_document", b["input_type"])
	}
}

func TestRerank(t *testing.T) {
	var gotMaxTokens int
	var got *llm.RerankRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		validate(t, r, b)
		if r.URL.Path != "/v2/rerank" {
			t.Errorf("path %s", r.URL.Path)
		}
		var err error
		got, gotMaxTokens, err = coheretest.DecodeRerank(b)
		if err != nil {
			t.Error(err)
		}
		coheretest.WriteRerank(w, []coheretest.RerankResult{{Index: 2, Score: 0.9}, {Index: 0, Score: 0.4}}, 1)
	}))
	defer srv.Close()
	p, err := cohere.New(provider.Config{Name: "co", APIKey: "k", BaseURL: srv.URL, Options: map[string]string{"rerank_max_tokens_per_doc": "512"}})
	if err != nil {
		t.Fatal(err)
	}
	docs := []llm.RerankDocument{
		{Text: "Paris is in France."},
		{Fields: map[string]string{"title": "Tokyo", "body": "Capital of Japan."}, Keys: []string{"title", "body"}},
		{Text: "Berlin is in Germany."},
	}
	ctx, warnings := llm.WithWarnings(context.Background())
	resp, err := p.(llm.Reranker).Rerank(ctx, &llm.RerankRequest{Model: "rerank-v3.5", Query: "capital of Germany", Documents: docs, TopN: 2, ReturnDocuments: true, MaxChunksPerDoc: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantDocs := []string{"Paris is in France.", "title: Tokyo\nbody: Capital of Japan.", "Berlin is in Germany."}
	var sentDocs []string
	for _, d := range got.Documents {
		sentDocs = append(sentDocs, d.Text)
	}
	if got.Model != "rerank-v3.5" || got.Query != "capital of Germany" || got.TopN != 2 || gotMaxTokens != 512 || !reflect.DeepEqual(sentDocs, wantDocs) {
		t.Errorf("upstream request = %+v docs %q max tokens %d", got, sentDocs, gotMaxTokens)
	}
	if len(resp.Results) != 2 || resp.Results[0].Index != 2 || resp.Results[0].RelevanceScore != 0.9 || resp.Results[1].Index != 0 {
		t.Errorf("results = %+v", resp.Results)
	}
	if resp.Results[0].Document == nil || resp.Results[0].Document.Text != "Berlin is in Germany." || resp.SearchUnits != 1 {
		t.Errorf("document %v search units %d", resp.Results[0].Document, resp.SearchUnits)
	}
	if w := warnings.List(); len(w) != 1 || !strings.Contains(w[0], "max_chunks_per_doc") {
		t.Errorf("warnings = %q", w)
	}
}

func TestRerankErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   llm.Kind
	}{
		{"429", 429, `{"message":"Please wait and try again later"}`, llm.KindRateLimited},
		{"index out of range", 200, `{"results":[{"index":7,"relevance_score":0.5}]}`, llm.KindUpstream},
		{"missing score", 200, `{"results":[{"index":0}]}`, llm.KindUpstream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, c.status, "application/json", c.body)
			_, err := up.provider(t, provider.Config{}).Rerank(context.Background(), &llm.RerankRequest{Model: "rerank-v3.5", Query: "q", Documents: []llm.RerankDocument{{Text: "a"}}})
			e := providertest.WantError(t, err, c.want, "co")
			if c.status != 200 && e.UpstreamStatus != c.status {
				t.Errorf("UpstreamStatus = %d", e.UpstreamStatus)
			}
		})
	}
	_, err := cohere.New(provider.Config{Name: "co"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cohere.NewWithClient(provider.Config{Name: "co"}, http.DefaultClient)
	_, err = p.Rerank(context.Background(), &llm.RerankRequest{Model: "m", Query: "q"})
	if e, ok := errors.AsType[*llm.Error](err); !ok || e.Kind != llm.KindInvalidArgument {
		t.Errorf("no documents: %v", err)
	}
}
