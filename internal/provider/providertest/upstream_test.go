package providertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
	"github.com/switchyard/switchyard/internal/provider/openai/openaitest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

var weather = llm.Tool{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}`)}

// TestNewUpstream drives NewUpstream's model through the OpenAI adapter and its wire.
func TestNewUpstream(t *testing.T) {
	user := llm.TextMessage(llm.RoleUser, "Paris in spring")
	call := llm.ToolCall{ID: "call_get_weather_1", Name: "get_weather", Arguments: `{"city":"Paris in spring"}`}
	cases := []struct {
		name      string
		opts      []providertest.UpstreamOption
		req       llm.ChatRequest
		want      providertest.Assembled // Chunks and ArgDeltas are checked for streams only
		minChunks int
	}{
		{name: "text",
			req:  llm.ChatRequest{Messages: []llm.Message{llm.TextMessage(llm.RoleSystem, "Be brief."), user}},
			want: providertest.Assembled{Role: "assistant", Content: "pong: Paris in spring", FinishReason: "stop", Usage: &llm.Usage{PromptTokens: 5, CompletionTokens: 4, TotalTokens: 9}}},
		{name: "reasoning", opts: []providertest.UpstreamOption{providertest.WithReasoning()},
			req: llm.ChatRequest{Messages: []llm.Message{user}},
			want: providertest.Assembled{Role: "assistant", Content: "pong: Paris in spring", Reasoning: "Thinking about: Paris in spring", FinishReason: "stop",
				Usage: &llm.Usage{PromptTokens: 3, CompletionTokens: 9, TotalTokens: 12, ReasoningTokens: 5}}},
		{name: "tool call: required string properties set to the user text",
			req:  llm.ChatRequest{Messages: []llm.Message{user}, Tools: []llm.Tool{weather, {Name: "other"}}},
			want: providertest.Assembled{Role: "assistant", ToolCalls: []llm.ToolCall{call}, FinishReason: "tool_calls", Usage: &llm.Usage{PromptTokens: 3, CompletionTokens: 3, TotalTokens: 6}}},
		{name: "tool result",
			req: llm.ChatRequest{Tools: []llm.Tool{weather}, Messages: []llm.Message{user,
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call}},
				{Role: llm.RoleTool, ToolCallID: call.ID, Content: []llm.Part{{Type: llm.PartText, Text: `{"c":18}`}}}}},
			want: providertest.Assembled{Role: "assistant", Content: `tool said: {"c":18}`, FinishReason: "stop", Usage: &llm.Usage{PromptTokens: 4, CompletionTokens: 3, TotalTokens: 7}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := openaiAt(t, providertest.NewUpstream(t, openaitest.Wire{}, c.opts...).URL)
			req := c.req
			req.Model = "gpt-4o"
			resp, err := p.Chat(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			ch := resp.Choices[0]
			got := providertest.Assembled{Role: "assistant", Content: deref(ch.Content), Reasoning: deref(ch.ReasoningContent),
				ToolCalls: ch.ToolCalls, FinishReason: ch.FinishReason, Usage: resp.Usage}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("blocking answer mismatch (-want +got):\n%s", diff)
			}

			s, err := p.ChatStream(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			streamed, err := providertest.Collect(s)
			if err != nil {
				t.Fatal(err)
			}
			if streamed.Chunks < 3 || len(c.want.ToolCalls) > 0 && streamed.ArgDeltas < 2 {
				t.Errorf("%d chunks with %d argument deltas, want the answer in pieces", streamed.Chunks, streamed.ArgDeltas)
			}
			streamed.Chunks, streamed.ArgDeltas = 0, 0
			if diff := cmp.Diff(&c.want, streamed); diff != "" {
				t.Errorf("streamed answer mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewUpstreamEmbeddings(t *testing.T) {
	srv := providertest.NewUpstream(t, openaitest.Wire{})
	texts := []string{"a", "bb c", ""}

	// On the wire, the vectors come in reverse index order.
	resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json",
		strings.NewReader(`{"model":"emb","input":["a","bb c",""],"encoding_format":"float"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct{ Data []struct{ Index int } }
	if b, _ := io.ReadAll(resp.Body); json.Unmarshal(b, &raw) != nil || len(raw.Data) != 3 || raw.Data[0].Index != 2 || raw.Data[2].Index != 0 {
		t.Errorf("wire order %+v, want indexes 2, 1, 0", raw.Data)
	}

	got, err := openaiAt(t, srv.URL).(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "emb", Texts: texts})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float32{{1, 'a', 0.5, -0.25}, {4, 'b', 0.5, -0.25}, {0, 0, 0.5, -0.25}}
	if !slices.EqualFunc(got.Vectors, want, slices.Equal) || got.PromptTokens != 3 {
		t.Errorf("vectors %v, %d prompt tokens; want %v and 3", got.Vectors, got.PromptTokens, want)
	}
	for i, text := range texts {
		if !slices.Equal(providertest.EmbeddingVector(text), want[i]) {
			t.Errorf("EmbeddingVector(%q) = %v, want %v", text, providertest.EmbeddingVector(text), want[i])
		}
	}
}

func openaiAt(t *testing.T, url string) llm.Provider {
	t.Helper()
	p, err := openai.New(provider.Config{Name: "up", Type: "openai", BaseURL: url + "/v1", APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
