// Package openaitest is the upstream side of OpenAI's chat completions and embeddings API for tests: a providertest.Wire
// that renders canonical answers in the native protocol and reads the adapter's native requests
// back. It is written independently of the openai adapter, so a misreading is not mirrored; the
// conformance suite and providertest.NewUpstream (end-to-end tests) both use it.
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// Wire is the upstream side of OpenAI's protocol for the conformance suite. It is written
// independently of the adapter's own wire types, from the OpenAPI document, so the two check
// each other.
type Wire struct{}

var _ providertest.Wire = Wire{}

type reqJSON struct {
	Model               string          `json:"model"`
	Messages            []msgJSON       `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	MaxTokens           *int32          `json:"max_tokens"`
	MaxCompletionTokens *int32          `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Tools               []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ParallelToolCalls *bool `json:"parallel_tool_calls"`
	Stream            bool  `json:"stream"`
	StreamOptions     *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`

	Input          json.RawMessage `json:"input"`
	Dimensions     *int32          `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type msgJSON struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
	ToolCallID string `json:"tool_call_id"`
}

type partJSON struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"`
}

func (Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	var w reqJSON
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		return nil, fmt.Errorf("%s with Content-Type %q, want a JSON POST", r.Method, r.Header.Get("Content-Type"))
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/v1/embeddings"):
		c := &providertest.Call{Op: "embed", Embed: &llm.EmbeddingRequest{Model: w.Model, Dimensions: w.Dimensions}}
		if w.EncodingFormat != "float" {
			return nil, fmt.Errorf("encoding_format %q, want float", w.EncodingFormat)
		}
		if err := json.Unmarshal(w.Input, &c.Embed.Texts); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		return c, nil
	case strings.HasSuffix(r.URL.Path, "/v1/chat/completions"):
	default:
		return nil, fmt.Errorf("unexpected path %s", r.URL.Path)
	}
	if w.Stream && (w.StreamOptions == nil || !w.StreamOptions.IncludeUsage) {
		return nil, fmt.Errorf("streamed request without stream_options.include_usage")
	}
	req := &llm.ChatRequest{Model: w.Model, Temperature: w.Temperature, ParallelToolCalls: w.ParallelToolCalls}
	req.MaxTokens = w.MaxCompletionTokens
	if req.MaxTokens == nil {
		req.MaxTokens = w.MaxTokens
	}
	if len(w.Stop) > 0 {
		if err := json.Unmarshal(w.Stop, &req.Stop); err != nil {
			var one string
			if err := json.Unmarshal(w.Stop, &one); err != nil {
				return nil, fmt.Errorf("stop: %w", err)
			}
			req.Stop = []string{one}
		}
	}
	for _, t := range w.Tools {
		req.Tools = append(req.Tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	for _, m := range w.Messages {
		cm := llm.Message{Role: m.Role, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			cm.ToolCalls = append(cm.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		switch {
		case len(m.Content) == 0 || string(m.Content) == "null":
		case m.Content[0] == '"':
			var s string
			if err := json.Unmarshal(m.Content, &s); err != nil {
				return nil, err
			}
			cm.Content = []llm.Part{{Type: llm.PartText, Text: s}}
		default:
			var parts []partJSON
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return nil, fmt.Errorf("content: %w", err)
			}
			cm.ContentIsParts = true
			for _, p := range parts {
				cm.Content = append(cm.Content, llm.Part{Type: p.Type, Text: p.Text, ImageURL: p.ImageURL.URL, ImageDetail: p.ImageURL.Detail})
			}
		}
		req.Messages = append(req.Messages, cm)
	}
	return &providertest.Call{Op: "chat", Stream: w.Stream, Chat: req}, nil
}

func usageJSON(u *llm.Usage) any {
	if u == nil {
		return nil
	}
	return map[string]any{
		"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens, "total_tokens": u.TotalTokens,
		"prompt_tokens_details":     map[string]any{"cached_tokens": u.CachedTokens, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": u.ReasoningTokens, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
}

func toolCallsJSON(calls []llm.ToolCall) []any {
	var out []any
	for _, c := range calls {
		out = append(out, map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": c.Arguments}})
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_test")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	var choices []any
	for _, c := range resp.Choices {
		msg := map[string]any{"role": "assistant", "content": c.Content, "refusal": nil, "annotations": []any{}}
		if len(c.ToolCalls) > 0 {
			msg["tool_calls"] = toolCallsJSON(c.ToolCalls)
		}
		if c.ReasoningContent != nil {
			msg["reasoning_content"] = *c.ReasoningContent // DeepSeek's name
		}
		choices = append(choices, map[string]any{"index": c.Index, "message": msg, "logprobs": nil, "finish_reason": c.FinishReason})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": resp.ID, "object": "chat.completion", "created": resp.Created, "model": resp.Model,
		"choices": choices, "usage": usageJSON(resp.Usage), "service_tier": "default", "system_fingerprint": "fp_test",
	})
}

func (Wire) StartStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
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
			delta["reasoning"] = *ch.ReasoningContent // vLLM's name
		}
		var tcs []any
		for _, d := range ch.ToolCalls {
			tc := map[string]any{"index": d.Index}
			fn := map[string]any{"arguments": d.Arguments}
			if d.ID != "" {
				tc["id"], tc["type"] = d.ID, "function"
			}
			if d.Name != "" {
				fn["name"] = d.Name
			}
			tc["function"] = fn
			tcs = append(tcs, tc)
		}
		if tcs != nil {
			delta["tool_calls"] = tcs
		}
		var finish any
		if ch.FinishReason != "" {
			finish = ch.FinishReason
		}
		choices = append(choices, map[string]any{"index": ch.Index, "delta": delta, "logprobs": nil, "finish_reason": finish})
	}
	b, _ := json.Marshal(map[string]any{
		"id": c.ID, "object": "chat.completion.chunk", "created": c.Created, "model": c.Model,
		"system_fingerprint": "fp_test", "choices": choices, "usage": usageJSON(c.Usage), "obfuscation": "x1",
	})
	fmt.Fprintf(w, "data: %s\n\n", b)
}

func (Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	b, _ := json.Marshal(map[string]any{"error": errorJSON(e)})
	fmt.Fprintf(w, "data: %s\n\n", b)
}

func (Wire) EndStream(w io.Writer) { io.WriteString(w, "data: [DONE]\n\n") }

func (Wire) WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, order []int) {
	var data []any
	for _, i := range order {
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": resp.Vectors[i]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": resp.Model,
		"usage": map[string]any{"prompt_tokens": resp.PromptTokens, "total_tokens": resp.PromptTokens}})
}

func errorJSON(e *providertest.UpstreamError) map[string]any {
	var code any
	if e.Code != "" {
		code = e.Code
	}
	return map[string]any{"message": e.Message, "type": e.Type, "param": nil, "code": code}
}

func (Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	writeJSON(w, e.Status, map[string]any{"error": errorJSON(e)})
}
