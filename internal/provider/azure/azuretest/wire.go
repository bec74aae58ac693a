// Package azuretest is the upstream side of the Azure OpenAI API for tests: a providertest.Wire
// that renders canonical answers in the native protocol and reads the adapter's native requests
// back. It is written independently of the azure adapter, so a misreading is not mirrored; the
// conformance suite and providertest.NewUpstream (end-to-end tests) both use it.
package azuretest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// Wire is an Azure OpenAI resource as Microsoft documents it (inference.json 2024-10-21 and
// the v1 API), written apart from the openai adapter: the deployment comes from the path (dated
// API) or the body (v1), the key from the api-key header; answers carry prompt_filter_results
// and content_filter_results, a stream opens with a chunk whose choices are empty, and errors
// use Azure's bodies.
type Wire struct {
	V1 bool // the v1 API surface: /openai/v1/..., model in the body, no api-version
}

type wireRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	Temperature         *float64 `json:"temperature"`
	MaxTokens           *int32   `json:"max_tokens"`
	MaxCompletionTokens *int32   `json:"max_completion_tokens"`
	Stop                []string `json:"stop"`
	// embeddings
	Input      []string `json:"input"`
	Dimensions *int32   `json:"dimensions"`
}

func (a Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	if r.Header.Get("Api-Key") == "" || r.Header.Get("Authorization") != "" {
		return nil, fmt.Errorf("credential headers: api-key %q, Authorization %q", r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
	}
	var req wireRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	model, op, err := a.route(r, req.Model)
	if err != nil {
		return nil, err
	}
	if op == "embeddings" {
		return &providertest.Call{Op: "embed", Embed: &llm.EmbeddingRequest{Model: model, Texts: req.Input, Dimensions: req.Dimensions}}, nil
	}
	c := &llm.ChatRequest{Model: model, Temperature: req.Temperature, MaxTokens: req.MaxCompletionTokens, Stop: req.Stop}
	if c.MaxTokens == nil {
		c.MaxTokens = req.MaxTokens
	}
	for _, m := range req.Messages {
		cm := llm.Message{Role: m.Role, ToolCallID: m.ToolCallID}
		var text string
		var parts []struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			ImageURL struct {
				URL    string `json:"url"`
				Detail string `json:"detail"`
			} `json:"image_url"`
		}
		switch {
		case json.Unmarshal(m.Content, &text) == nil:
			cm.Content = []llm.Part{{Type: llm.PartText, Text: text}}
		case json.Unmarshal(m.Content, &parts) == nil:
			for _, p := range parts {
				cm.Content = append(cm.Content, llm.Part{Type: p.Type, Text: p.Text, ImageURL: p.ImageURL.URL, ImageDetail: p.ImageURL.Detail})
			}
		}
		for _, tc := range m.ToolCalls {
			cm.ToolCalls = append(cm.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		c.Messages = append(c.Messages, cm)
	}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, llm.Tool{Name: t.Function.Name, Parameters: t.Function.Parameters})
	}
	return &providertest.Call{Op: "chat", Stream: req.Stream, Chat: c}, nil
}

// route returns the deployment and the operation from the URL.
func (a Wire) route(r *http.Request, bodyModel string) (deployment, op string, err error) {
	if a.V1 {
		op, ok := strings.CutPrefix(r.URL.Path, "/openai/v1/")
		if !ok || r.URL.Query().Has("api-version") {
			return "", "", fmt.Errorf("not a v1 API call: %s", r.URL)
		}
		return bodyModel, op, nil
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	deployment, op, _ = strings.Cut(rest, "/")
	if !ok || deployment == "" || r.URL.Query().Get("api-version") == "" {
		return "", "", fmt.Errorf("not a deployment call with an api-version: %s", r.URL)
	}
	return deployment, op, nil
}

var noFilter = map[string]any{
	"hate": map[string]any{"filtered": false, "severity": "safe"}, "self_harm": map[string]any{"filtered": false, "severity": "safe"},
	"sexual": map[string]any{"filtered": false, "severity": "safe"}, "violence": map[string]any{"filtered": false, "severity": "safe"},
}

func toolCallsJSON(calls []llm.ToolCall) []any {
	var out []any
	for _, tc := range calls {
		out = append(out, map[string]any{"id": tc.ID, "type": "function", "function": map[string]any{"name": tc.Name, "arguments": tc.Arguments}})
	}
	return out
}

func usageJSON(u *llm.Usage) any {
	if u == nil {
		return nil
	}
	return map[string]any{"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens, "total_tokens": u.TotalTokens,
		"prompt_tokens_details":     map[string]any{"cached_tokens": u.CachedTokens},
		"completion_tokens_details": map[string]any{"reasoning_tokens": u.ReasoningTokens}}
}

func (Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	var choices []any
	for _, c := range resp.Choices {
		msg := map[string]any{"role": "assistant", "content": c.Content}
		if c.ReasoningContent != nil {
			msg["reasoning_content"] = *c.ReasoningContent
		}
		if len(c.ToolCalls) > 0 {
			msg["tool_calls"] = toolCallsJSON(c.ToolCalls)
		}
		choices = append(choices, map[string]any{"index": c.Index, "message": msg, "finish_reason": c.FinishReason,
			"logprobs": nil, "content_filter_results": noFilter})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Apim-Request-Id", "0c8d7f2e-3a51-4d0c-9d7a-5b3b1e0a9f11")
	json.NewEncoder(w).Encode(map[string]any{"id": resp.ID, "object": "chat.completion", "created": resp.Created, "model": resp.Model,
		"system_fingerprint": "fp_ee1d74bde0", "choices": choices, "usage": usageJSON(resp.Usage),
		"prompt_filter_results": []any{map[string]any{"prompt_index": 0, "content_filter_results": noFilter}}})
}

// StartStream opens the stream with Azure's first chunk: no choices, only the prompt filter.
func (Wire) StartStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	writeEvent(w, map[string]any{"choices": []any{}, "created": 0, "id": "", "model": "", "object": "",
		"prompt_filter_results": []any{map[string]any{"prompt_index": 0, "content_filter_results": noFilter}}})
}

func writeEvent(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "data: %s\n\n", b)
}

func (Wire) WriteChunk(w io.Writer, c *llm.Chunk) {
	choices := []any{}
	for _, ch := range c.Choices {
		delta := map[string]any{}
		if ch.Role != "" {
			delta["role"] = ch.Role
		}
		if ch.Content != nil {
			delta["content"] = *ch.Content
		}
		if ch.ReasoningContent != nil {
			delta["reasoning_content"] = *ch.ReasoningContent
		}
		var calls []any
		for _, d := range ch.ToolCalls {
			call := map[string]any{"index": d.Index, "function": map[string]any{"arguments": d.Arguments}}
			if d.ID != "" {
				call["id"], call["type"] = d.ID, "function"
				call["function"].(map[string]any)["name"] = d.Name
			}
			calls = append(calls, call)
		}
		if calls != nil {
			delta["tool_calls"] = calls
		}
		var finish any
		if ch.FinishReason != "" {
			finish = ch.FinishReason
		}
		choices = append(choices, map[string]any{"index": ch.Index, "delta": delta, "finish_reason": finish, "content_filter_results": noFilter})
	}
	writeEvent(w, map[string]any{"id": c.ID, "object": "chat.completion.chunk", "created": c.Created, "model": c.Model,
		"system_fingerprint": "fp_ee1d74bde0", "choices": choices, "usage": usageJSON(c.Usage)})
}

func (Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	writeEvent(w, map[string]any{"error": map[string]any{"message": e.Message, "type": e.Type, "code": nilIfEmpty(e.Code), "param": nil}})
}

func (Wire) EndStream(w io.Writer) { io.WriteString(w, "data: [DONE]\n\n") }

// WriteEmbeddings emits the vectors in the given order, each with its index.
func (Wire) WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, order []int) {
	var data []any
	for _, i := range order {
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": resp.Vectors[i]})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "model": resp.Model, "data": data,
		"usage": map[string]any{"prompt_tokens": resp.PromptTokens, "total_tokens": resp.PromptTokens}})
}

// WriteError answers with Azure's error body: the code is the status as a string unless the
// case names one (content_filter adds the innererror Azure sends).
func (Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	code := e.Code
	if code == "" {
		code = fmt.Sprint(e.Status)
	}
	obj := map[string]any{"code": code, "message": e.Message}
	if code == "content_filter" {
		obj["param"], obj["status"], obj["type"] = "prompt", e.Status, nil
		obj["innererror"] = map[string]any{"code": "ResponsibleAIPolicyViolation", "content_filter_result": map[string]any{
			"hate": map[string]any{"filtered": true, "severity": "high"}, "jailbreak": map[string]any{"filtered": false, "detected": false}}}
	}
	json.NewEncoder(w).Encode(map[string]any{"error": obj})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
