package mock_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/mock"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func newMock(t *testing.T, models ...string) llm.Provider {
	t.Helper()
	p, err := mock.New(provider.Config{Name: "mock", Models: models})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func user(text string) llm.Message { return llm.TextMessage(llm.RoleUser, text) }

var weather = llm.Tool{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"unit":{"type":"string","enum":["c","f"]},"note":{"type":"string"}},"required":["city","days","unit"]}`)}

func TestChat(t *testing.T) {
	cases := []struct {
		name       string
		req        llm.ChatRequest
		wantText   string
		wantFinish string
		wantCall   *llm.ToolCall // ID checked for prefix only
	}{
		{"echo", llm.ChatRequest{Model: "echo", Messages: []llm.Message{llm.TextMessage("system", "s"), user("hello there world")}}, "hello there world", "stop", nil},
		{"echo empty", llm.ChatRequest{Model: "echo", Messages: []llm.Message{user("  ")}}, "This is the mock provider's answer.", "stop", nil},
		{"max tokens", llm.ChatRequest{Model: "echo", Messages: []llm.Message{user("one two three four")}, MaxTokens: llm.Ptr[int32](2)}, "one two", "length", nil},
		{"stop", llm.ChatRequest{Model: "echo", Messages: []llm.Message{user("one two END three")}, Stop: []string{"three", " END"}}, "one two", "stop", nil},
		{"configured model echoes", llm.ChatRequest{Model: "my-model", Messages: []llm.Message{user("hi")}}, "hi", "stop", nil},
		{"tools without tools echoes", llm.ChatRequest{Model: "tools", Messages: []llm.Message{user("hi")}}, "hi", "stop", nil},
		{"tools", llm.ChatRequest{Model: "tools", Messages: []llm.Message{user("weather?")}, Tools: []llm.Tool{weather}}, "", "tool_calls",
			&llm.ToolCall{Name: "get_weather", Arguments: `{"city":"example","days":1,"unit":"c"}`}},
		{"tool choice none", llm.ChatRequest{Model: "tools", Messages: []llm.Message{user("hi")}, Tools: []llm.Tool{weather}, ToolChoice: &llm.ToolChoice{Mode: "none"}}, "hi", "stop", nil},
		{"tool result", llm.ChatRequest{Model: "tools", Tools: []llm.Tool{weather}, Messages: []llm.Message{user("weather?"),
			{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: "{}"}}},
			{Role: "tool", ToolCallID: "call_1", Content: []llm.Part{{Type: "text", Text: `{"temp":18}`}}}}},
			`The tool get_weather returned: {"temp":18}`, "stop", nil},
	}
	p := newMock(t, "my-model")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := p.Chat(context.Background(), &c.req)
			if err != nil {
				t.Fatal(err)
			}
			ch := resp.Choices[0]
			if ch.FinishReason != c.wantFinish {
				t.Errorf("finish = %q, want %q", ch.FinishReason, c.wantFinish)
			}
			if resp.Usage == nil || resp.Usage.PromptTokens == 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens {
				t.Errorf("usage = %+v", resp.Usage)
			}
			st, err := p.ChatStream(context.Background(), &c.req)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			a, err := providertest.Collect(st)
			if err != nil {
				t.Fatal(err)
			}
			if a.FinishReason != c.wantFinish || !reflect.DeepEqual(a.Usage, resp.Usage) {
				t.Errorf("stream finish %q usage %+v, want %q %+v", a.FinishReason, a.Usage, c.wantFinish, resp.Usage)
			}
			if c.wantCall == nil {
				if ch.Content == nil || *ch.Content != c.wantText || a.Content != c.wantText {
					t.Errorf("content = %v / streamed %q, want %q", ch.Content, a.Content, c.wantText)
				}
				if len(strings.Fields(c.wantText)) >= 2 && a.Chunks < 4 { // ≥2 text chunks + finish + usage
					t.Errorf("%d chunks, want text in at least two", a.Chunks)
				}
				return
			}
			if len(ch.ToolCalls) != 1 || len(a.ToolCalls) != 1 {
				t.Fatalf("tool calls = %+v / streamed %+v", ch.ToolCalls, a.ToolCalls)
			}
			got := ch.ToolCalls[0]
			if !strings.HasPrefix(got.ID, "call_") || got.Name != c.wantCall.Name || got.Arguments != c.wantCall.Arguments {
				t.Errorf("tool call = %+v, want %+v", got, *c.wantCall)
			}
			if !json.Valid([]byte(got.Arguments)) {
				t.Errorf("arguments %q are not JSON", got.Arguments)
			}
			if a.ToolCalls[0] != got || a.ArgDeltas < 2 {
				t.Errorf("streamed call %+v in %d argument deltas, want %+v in ≥2", a.ToolCalls[0], a.ArgDeltas, got)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	p := newMock(t)
	req := &llm.ChatRequest{Model: "tools", Messages: []llm.Message{user("x")}, Tools: []llm.Tool{weather}}
	a, _ := p.Chat(context.Background(), req)
	b, _ := p.Chat(context.Background(), req)
	if a.ID != b.ID || a.Choices[0].ToolCalls[0].ID != b.Choices[0].ToolCalls[0].ID {
		t.Error("same request, different ids")
	}
}

func TestErrors(t *testing.T) {
	p := newMock(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		req  llm.ChatRequest
		want llm.Kind
	}{
		{"unknown model", context.Background(), llm.ChatRequest{Model: "gpt-9", Messages: []llm.Message{user("x")}}, llm.KindNotFound},
		{"embed model", context.Background(), llm.ChatRequest{Model: "embed", Messages: []llm.Message{user("x")}}, llm.KindInvalidArgument},
		{"no messages", context.Background(), llm.ChatRequest{Model: "echo"}, llm.KindInvalidArgument},
		{"canceled", canceled, llm.ChatRequest{Model: "echo", Messages: []llm.Message{user("x")}}, llm.KindCanceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.Chat(c.ctx, &c.req)
			if llm.KindOf(err) != c.want {
				t.Errorf("Chat error = %v, want kind %v", err, c.want)
			}
			if _, err := p.ChatStream(c.ctx, &c.req); llm.KindOf(err) != c.want {
				t.Errorf("ChatStream error = %v, want kind %v", err, c.want)
			}
		})
	}
	e := providertest.WantError(t, func() error { _, err := p.Chat(context.Background(), &cases[0].req); return err }(), llm.KindNotFound, "mock")
	if e.Code != "model_not_found" {
		t.Errorf("code = %q", e.Code)
	}
}

func TestStreamCanceledMidway(t *testing.T) {
	p := newMock(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := p.ChatStream(ctx, &llm.ChatRequest{Model: "echo", Messages: []llm.Message{user("a b c d e f")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := st.Recv(); llm.KindOf(err) != llm.KindCanceled || errors.Is(err, io.EOF) {
		t.Errorf("Recv after cancel = %v, want KindCanceled", err)
	}
}

func TestEmbed(t *testing.T) {
	p := newMock(t).(llm.Embedder)
	resp, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "embed", Texts: []string{"alpha", "beta", "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 3 || len(resp.Vectors[0]) != mock.DefaultDimensions {
		t.Fatalf("got %d vectors of %d dims", len(resp.Vectors), len(resp.Vectors[0]))
	}
	if !reflect.DeepEqual(resp.Vectors[0], resp.Vectors[2]) || reflect.DeepEqual(resp.Vectors[0], resp.Vectors[1]) {
		t.Error("same text must give the same vector and different texts different ones")
	}
	for _, v := range resp.Vectors {
		var sum float64
		for _, x := range v {
			sum += float64(x) * float64(x)
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("norm² = %v, want 1", sum)
		}
	}
	if resp.PromptTokens != 3 {
		t.Errorf("prompt tokens = %d, want 3", resp.PromptTokens)
	}
	for _, c := range []struct {
		req  llm.EmbeddingRequest
		want int
		kind llm.Kind
	}{
		{llm.EmbeddingRequest{Model: "embed", Texts: []string{"x"}, Dimensions: llm.Ptr[int32](40)}, 40, 0},
		{llm.EmbeddingRequest{Model: "embed", Tokens: [][]int32{{1, 2, 3}}}, mock.DefaultDimensions, 0},
		{llm.EmbeddingRequest{Model: "embed", Texts: []string{"x"}, Dimensions: llm.Ptr[int32](0)}, 0, llm.KindInvalidArgument},
		{llm.EmbeddingRequest{Model: "embed"}, 0, llm.KindInvalidArgument},
		{llm.EmbeddingRequest{Model: "nope", Texts: []string{"x"}}, 0, llm.KindNotFound},
	} {
		resp, err := p.Embed(context.Background(), &c.req)
		if c.want == 0 {
			if llm.KindOf(err) != c.kind {
				t.Errorf("Embed(%+v) error = %v, want kind %v", c.req, err, c.kind)
			}
			continue
		}
		if err != nil || len(resp.Vectors[0]) != c.want {
			t.Errorf("Embed(%+v) = %v, %v; want %d dims", c.req, resp, err, c.want)
		}
	}
}

func TestModels(t *testing.T) {
	got := newMock(t, "echo", "custom").(llm.ModelLister).Models()
	if want := []string{"echo", "tools", "embed", "rerank", "custom"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Models = %v, want %v", got, want)
	}
}

func TestRerank(t *testing.T) {
	p := newMock(t).(llm.Reranker)
	req := &llm.RerankRequest{Model: "rerank", Query: "What is the capital of France?", ReturnDocuments: true, Documents: []llm.RerankDocument{
		{Text: "Bananas are yellow."},
		{Text: "Paris is the capital of France."},
		{Fields: map[string]string{"title": "France", "body": "Its capital: Paris."}, Keys: []string{"title", "body"}},
		{Text: "What is it?"},
	}}
	resp, err := p.Rerank(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Query words: what is the capital of france (6). Doc 1 has is the capital of france (5),
	// doc 2 france capital (2), doc 3 what is (2), doc 0 none.
	var got []int32
	var scores []float64
	for _, r := range resp.Results {
		got, scores = append(got, r.Index), append(scores, r.RelevanceScore)
		if r.Document == nil || r.Document.AsText() != req.Documents[r.Index].AsText() {
			t.Errorf("result %d: document %v, want the request's", r.Index, r.Document)
		}
	}
	if want := []int32{1, 2, 3, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v (scores %v), want %v", got, scores, want)
	}
	if scores[0] != 5.0/6 || scores[3] != 0 {
		t.Errorf("scores = %v, want 5/6 first and 0 last", scores)
	}
	if resp.Usage.TotalTokens == 0 || resp.Model != "rerank" {
		t.Errorf("usage %+v model %q", resp.Usage, resp.Model)
	}
	req.TopN, req.ReturnDocuments = 2, false
	resp, err = p.Rerank(t.Context(), req)
	if err != nil || len(resp.Results) != 2 || resp.Results[0].Index != 1 || resp.Results[0].Document != nil {
		t.Errorf("top_n 2 without documents: %+v, %v", resp, err)
	}
	if _, err := p.Rerank(t.Context(), &llm.RerankRequest{Model: "nope", Query: "q", Documents: req.Documents}); llm.KindOf(err) != llm.KindNotFound {
		t.Errorf("unknown model: %v, want not_found", err)
	}
	if got := p.(llm.RerankModelLister).RerankModels(); !reflect.DeepEqual(got, []string{"rerank"}) {
		t.Errorf("RerankModels = %v", got)
	}
	_, err = p.(llm.Provider).Chat(t.Context(), &llm.ChatRequest{Model: "rerank", Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}})
	if llm.KindOf(err) != llm.KindInvalidArgument {
		t.Errorf("chat with the rerank model: %v, want invalid_argument", err)
	}
}
