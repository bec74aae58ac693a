package azure_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/azure"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// TestParamRules sends each canonical parameter through the Azure adapter and checks that the
// member its rule names reaches the deployment (top level, or in the first content part).
func TestParamRules(t *testing.T) {
	bodies := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		bodies <- body
		if _, ok := body["input"]; ok {
			io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
			return
		}
		io.WriteString(w, fixture(t, "chat.json"))
	}))
	defer srv.Close()
	p, err := azure.New(provider.Config{Name: "az", BaseURL: srv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	member := func(body map[string]any, name string) (any, bool) {
		if v, ok := body[name]; ok {
			return v, true
		}
		msgs, _ := body["messages"].([]any)
		parts, _ := msgs[0].(map[string]any)["content"].([]any)
		if len(parts) == 0 {
			return nil, false
		}
		v, ok := parts[0].(map[string]any)[name]
		return v, ok
	}
	chat := func(req llm.ChatRequest) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			if req.Messages == nil {
				req.Messages = []llm.Message{llm.TextMessage("user", "x")}
			}
			req.Model = "gpt-4o"
			ctx, warnings := llm.WithWarnings(context.Background())
			if _, err := p.Chat(ctx, &req); err != nil {
				t.Fatal(err)
			}
			if v, ok := member(<-bodies, rule.Native); !ok || v == nil {
				t.Errorf("%s not sent", rule.Native)
			}
			if len(warnings.List()) != 0 {
				t.Errorf("warnings %q", warnings.List())
			}
		}
	}
	parts := func(p llm.Part) []llm.Message {
		return []llm.Message{{Role: "user", ContentIsParts: true, Content: []llm.Part{p}}}
	}
	tools := []llm.Tool{{Name: "f", Parameters: []byte(`{"type":"object"}`)}}
	checks := map[string]providertest.ParamCheck{
		"temperature":         chat(llm.ChatRequest{Temperature: llm.Ptr(0.4)}),
		"top_p":               chat(llm.ChatRequest{TopP: llm.Ptr(0.4)}),
		"max_tokens":          chat(llm.ChatRequest{MaxTokens: llm.Ptr[int32](5)}),
		"stop":                chat(llm.ChatRequest{Stop: []string{"x"}}),
		"presence_penalty":    chat(llm.ChatRequest{PresencePenalty: llm.Ptr(0.1)}),
		"frequency_penalty":   chat(llm.ChatRequest{FrequencyPenalty: llm.Ptr(0.1)}),
		"seed":                chat(llm.ChatRequest{Seed: llm.Ptr[int64](1)}),
		"n":                   chat(llm.ChatRequest{N: llm.Ptr[int32](2)}),
		"response_format":     chat(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}),
		"tools":               chat(llm.ChatRequest{Tools: tools}),
		"tool_choice":         chat(llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "f"}}),
		"parallel_tool_calls": chat(llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(false)}),
		"user":                chat(llm.ChatRequest{User: "u"}),
		"reasoning_effort":    chat(llm.ChatRequest{ReasoningEffort: "low"}),
		"image_url":           chat(llm.ChatRequest{Messages: parts(llm.Part{Type: llm.PartImageURL, ImageURL: "https://x.test/a.png"})}),
		"input_audio":         chat(llm.ChatRequest{Messages: parts(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})}),
		"file":                chat(llm.ChatRequest{Messages: parts(llm.Part{Type: llm.PartFile, FileID: "assistant-1"})}),
		"embeddings.dimensions": func(t *testing.T, rule provider.ParamRule) {
			if _, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "emb", Texts: []string{"a"}, Dimensions: llm.Ptr[int32](8)}); err != nil {
				t.Fatal(err)
			}
			if v := (<-bodies)[rule.Native]; v != 8.0 {
				t.Errorf("%s = %v, want 8", rule.Native, v)
			}
		},
	}
	providertest.CheckParamRules(t, azure.ParamRules(), checks)
}
