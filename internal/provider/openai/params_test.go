package openai_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// TestParamRules sends each canonical parameter and checks the native request against the
// adapter's published rule: the member named rule.Native carries the value.
func TestParamRules(t *testing.T) {
	user := func(parts ...llm.Part) []llm.Message {
		return []llm.Message{{Role: llm.RoleUser, ContentIsParts: true, Content: parts}}
	}
	chat := func(req llm.ChatRequest, want string) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			if req.Messages == nil {
				req.Messages = []llm.Message{llm.TextMessage(llm.RoleUser, "x")}
			}
			req.Model = "gpt-4o"
			up := newCapture(t, 200, "application/json", okAnswer)
			p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1"})
			ctx, warnings := llm.WithWarnings(context.Background())
			if _, err := p.Chat(ctx, &req); err != nil {
				t.Fatal(err)
			}
			wantMembers(t, <-up.body, rule.Native, want)
			if w := warnings.List(); len(w) != 0 {
				t.Errorf("warnings %q for a passed parameter", w)
			}
		}
	}
	schema := json.RawMessage(`{"type":"object"}`)
	checks := map[string]providertest.ParamCheck{
		"temperature":       chat(llm.ChatRequest{Temperature: llm.Ptr(1.5)}, `1.5`),
		"top_p":             chat(llm.ChatRequest{TopP: llm.Ptr(0.3)}, `0.3`),
		"max_tokens":        chat(llm.ChatRequest{MaxTokens: llm.Ptr[int32](77)}, `77`),
		"stop":              chat(llm.ChatRequest{Stop: []string{"a", "b"}}, `["a","b"]`),
		"presence_penalty":  chat(llm.ChatRequest{PresencePenalty: llm.Ptr(-1.5)}, `-1.5`),
		"frequency_penalty": chat(llm.ChatRequest{FrequencyPenalty: llm.Ptr(1.25)}, `1.25`),
		"seed":              chat(llm.ChatRequest{Seed: llm.Ptr[int64](7)}, `7`),
		"n":                 chat(llm.ChatRequest{N: llm.Ptr[int32](3)}, `3`),
		"response_format": chat(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Schema: schema}},
			`{"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object"}}}`),
		"tools": chat(llm.ChatRequest{Tools: []llm.Tool{{Name: "f", Parameters: schema}}},
			`[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`),
		"tool_choice":         chat(llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}}, ToolChoice: &llm.ToolChoice{Mode: "required"}}, `"required"`),
		"parallel_tool_calls": chat(llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}}, ParallelToolCalls: llm.Ptr(false)}, `false`),
		"user":                chat(llm.ChatRequest{User: "u-9"}, `"u-9"`),
		"reasoning_effort":    chat(llm.ChatRequest{ReasoningEffort: "high"}, `"high"`),
		"image_url": chat(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "https://x.test/a.png", ImageDetail: "high"})},
			`{"url":"https://x.test/a.png","detail":"high"}`),
		"input_audio": chat(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})},
			`{"data":"UklGRg==","format":"wav"}`),
		"file": chat(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileID: "file-1"})}, `{"file_id":"file-1"}`),
		"embeddings.dimensions": func(t *testing.T, rule provider.ParamRule) {
			up := newCapture(t, 200, "application/json", `{"data":[{"index":0,"embedding":[1]}]}`)
			p := newProvider(t, provider.Config{Name: "oai", BaseURL: up.srv.URL + "/v1"})
			if _, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a"}, Dimensions: llm.Ptr[int32](256)}); err != nil {
				t.Fatal(err)
			}
			wantMembers(t, <-up.body, rule.Native, `256`)
		},
	}
	providertest.CheckParamRules(t, openai.ParamRules(), checks)
}

// wantMembers fails unless the request body has a member named native, at the top level or in
// the first message's first content part, equal to the JSON value want.
func wantMembers(t *testing.T, body []byte, native, want string) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	v, ok := got[native]
	if !ok {
		if msgs, _ := got["messages"].([]any); len(msgs) > 0 {
			if parts, _ := msgs[0].(map[string]any)["content"].([]any); len(parts) > 0 {
				v, ok = parts[0].(map[string]any)[native]
			}
		}
	}
	if !ok || !reflect.DeepEqual(v, w) {
		t.Errorf("%s = %v (present %v), want %s\nbody: %s", native, v, ok, want, body)
	}
}
