// Package anthropictest is the upstream side of Anthropic's Messages API for tests: a providertest.Wire
// that renders canonical answers in the native protocol and reads the adapter's native requests
// back. It is written independently of the anthropic adapter, so a misreading is not mirrored; the
// conformance suite and providertest.NewUpstream (end-to-end tests) both use it.
package anthropictest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// Wire speaks the Messages API for the conformance suite, written from Anthropic's
// documentation independently of the adapter: Decode validates each request against the API's
// rules (strict field sets, block shapes, alternating roles, tool results first, max_tokens
// present, temperature range) and reads it back into canonical form; the writers render
// canonical answers as Anthropic JSON and named SSE events.
type Wire struct {
	mu      sync.Mutex
	streams map[io.Writer]*wireStream
}

// testSignature stands for a thinking block's signature.
const testSignature = "EqQBCkYIBxgCKkDpOhV1cWmRsnTg2TXS4JeQ3XwB8ci9F3QqQPaSuBqF0VeoGMFbNPS0OKJQ5ao2Ulb5sVuHoPL8YoFt4EzUIr6UEgyS5EUmXYNdTvXTiLkaDM4hQNgaVYcVH95GCyIwUbTmYiHfK=="

type wireRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int32          `json:"max_tokens"`
	System        json.RawMessage `json:"system"`
	Messages      []wireMessage   `json:"messages"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	StopSequences []string        `json:"stop_sequences"`
	Tools         []wireTool      `json:"tools"`
	ToolChoice    *struct {
		Type                   string `json:"type"`
		Name                   string `json:"name"`
		DisableParallelToolUse *bool  `json:"disable_parallel_tool_use"`
	} `json:"tool_choice"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int32  `json:"budget_tokens"`
	} `json:"thinking"`
	OutputConfig json.RawMessage `json:"output_config"`
	Metadata     *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	Stream bool `json:"stream"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // string or blocks
}

type wireTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      *bool           `json:"strict"`
}

type wireBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text"`
	Source    *wireSource     `json:"source"`
	Title     string          `json:"title"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   *bool           `json:"is_error"`
	Thinking  *string         `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
}

type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// blocks reads a content value: a string is one text block.
func blocks(raw json.RawMessage) ([]wireBlock, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []wireBlock{{Type: "text", Text: &s}}, nil
	}
	var bs []wireBlock
	if err := strictUnmarshal(raw, &bs); err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	for i, b := range bs {
		if err := validBlock(b); err != nil {
			return nil, fmt.Errorf("content[%d]: %w", i, err)
		}
	}
	return bs, nil
}

func validBlock(b wireBlock) error {
	switch b.Type {
	case "text":
		if b.Text == nil || *b.Text == "" {
			return errors.New("text content blocks must be non-empty")
		}
	case "image":
		s := b.Source
		switch {
		case s == nil:
			return errors.New("image without source")
		case s.Type == "base64" && s.Data != "" && strings.HasPrefix(s.MediaType, "image/"):
		case s.Type == "url" && strings.HasPrefix(s.URL, "http"):
		default:
			return fmt.Errorf("bad image source %+v", *s)
		}
	case "document":
		if s := b.Source; s == nil || (s.Type != "base64" && s.Type != "text") || s.Data == "" {
			return errors.New("bad document source")
		}
	case "tool_use":
		var obj map[string]any
		if b.ID == "" || b.Name == "" || json.Unmarshal(b.Input, &obj) != nil || obj == nil {
			return errors.New("tool_use needs id, name and an object input")
		}
	case "tool_result":
		if b.ToolUseID == "" {
			return errors.New("tool_result needs tool_use_id")
		}
	case "thinking":
		if b.Thinking == nil || b.Signature == "" {
			return errors.New("thinking needs thinking and signature")
		}
	case "redacted_thinking":
		if b.Data == "" {
			return errors.New("redacted_thinking needs data")
		}
	default:
		return fmt.Errorf("unknown block type %q", b.Type)
	}
	return nil
}

func (*Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		return nil, fmt.Errorf("%s %s, want POST /v1/messages", r.Method, r.URL.Path)
	}
	if r.Header.Get("Anthropic-Version") != "2023-06-01" || r.Header.Get("X-Api-Key") == "" || r.Header.Get("Content-Type") != "application/json" {
		return nil, fmt.Errorf("headers: anthropic-version %q, x-api-key set %v, content-type %q",
			r.Header.Get("Anthropic-Version"), r.Header.Get("X-Api-Key") != "", r.Header.Get("Content-Type"))
	}
	var w wireRequest
	if err := strictUnmarshal(body, &w); err != nil {
		return nil, err
	}
	switch {
	case w.Model == "" || w.MaxTokens == nil || *w.MaxTokens < 1 || len(w.Messages) == 0:
		return nil, errors.New("model, max_tokens and messages are required")
	case w.Temperature != nil && (*w.Temperature < 0 || *w.Temperature > 1):
		return nil, errors.New("temperature: range: 0..1")
	case w.Temperature != nil && w.TopP != nil:
		return nil, errors.New("`temperature` and `top_p` cannot both be specified for this model")
	case w.Thinking != nil && (w.Thinking.BudgetTokens < 1024 || w.Thinking.BudgetTokens >= *w.MaxTokens):
		return nil, errors.New("thinking.budget_tokens must be ≥ 1024 and less than max_tokens")
	}
	req := &llm.ChatRequest{Model: w.Model, MaxTokens: w.MaxTokens, Temperature: w.Temperature, TopP: w.TopP, Stop: w.StopSequences}
	if len(w.System) > 0 {
		sys, err := blocks(w.System)
		if err != nil {
			return nil, fmt.Errorf("system: %w", err)
		}
		for _, b := range sys {
			if b.Type != "text" {
				return nil, errors.New("system: text blocks only")
			}
			req.Messages = append(req.Messages, llm.TextMessage(llm.RoleSystem, *b.Text))
		}
	}
	for i, m := range w.Messages {
		if i > 0 && w.Messages[i-1].Role == m.Role {
			return nil, fmt.Errorf("messages[%d]: roles must alternate", i)
		}
		bs, err := blocks(m.Content)
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		msgs, err := canonical(m.Role, bs)
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		req.Messages = append(req.Messages, msgs...)
	}
	for _, t := range w.Tools {
		if t.Name == "" || len(t.InputSchema) == 0 {
			return nil, errors.New("tools: name and input_schema are required")
		}
		req.Tools = append(req.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema, Strict: t.Strict})
	}
	if tc := w.ToolChoice; tc != nil {
		mode := map[string]string{"auto": "auto", "any": "required", "none": "none", "tool": "function"}[tc.Type]
		if mode == "" || (tc.Type == "tool") != (tc.Name != "") {
			return nil, fmt.Errorf("tool_choice %+v", *tc)
		}
		req.ToolChoice = &llm.ToolChoice{Mode: mode, Name: tc.Name}
		if tc.DisableParallelToolUse != nil {
			req.ParallelToolCalls = llm.Ptr(!*tc.DisableParallelToolUse)
		}
	}
	if w.Metadata != nil {
		req.User = w.Metadata.UserID
	}
	return &providertest.Call{Op: "chat", Stream: w.Stream, Chat: req}, nil
}

// canonical converts one Anthropic turn: a user turn's tool_result blocks (which must come
// first) become tool messages ahead of the rest.
func canonical(role string, bs []wireBlock) ([]llm.Message, error) {
	var out []llm.Message
	m := llm.Message{Role: role, ContentIsParts: true}
	for i, b := range bs {
		switch {
		case b.Type == "tool_result":
			if role != "user" || i > 0 && bs[i-1].Type != "tool_result" {
				return nil, errors.New("tool_result blocks must come first in a user message")
			}
			var text string
			if len(b.Content) > 0 {
				cs, err := blocks(b.Content)
				if err != nil {
					return nil, err
				}
				for _, c := range cs {
					if c.Text != nil {
						text += *c.Text
					}
				}
			}
			out = append(out, llm.Message{Role: llm.RoleTool, ToolCallID: b.ToolUseID, Content: []llm.Part{{Type: llm.PartText, Text: text}}})
		case b.Type == "text":
			m.Content = append(m.Content, llm.Part{Type: llm.PartText, Text: *b.Text})
		case b.Type == "image" && b.Source.Type == "base64":
			m.Content = append(m.Content, llm.Part{Type: llm.PartImageURL, ImageURL: "data:" + b.Source.MediaType + ";base64," + b.Source.Data})
		case b.Type == "image":
			m.Content = append(m.Content, llm.Part{Type: llm.PartImageURL, ImageURL: b.Source.URL})
		case b.Type == "document":
			m.Content = append(m.Content, llm.Part{Type: llm.PartFile, FileName: b.Title, FileData: b.Source.Type + ":" + b.Source.MediaType + ":" + b.Source.Data})
		case b.Type == "tool_use" && role == "assistant":
			var args bytes.Buffer
			_ = json.Compact(&args, b.Input)
			m.ToolCalls = append(m.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args.String()})
		case b.Type == "thinking" && role == "assistant":
			m.ReasoningContent += *b.Thinking
			m.ReasoningSignature = b.Signature
		case b.Type == "redacted_thinking" && role == "assistant":
		default:
			return nil, fmt.Errorf("%s block in a %s message", b.Type, role)
		}
	}
	if len(m.Content) > 0 || len(m.ToolCalls) > 0 || m.ReasoningContent != "" {
		out = append(out, m)
	}
	return out, nil
}

var stopReasons = map[string]string{
	llm.FinishStop: "end_turn", llm.FinishLength: "max_tokens", llm.FinishToolCalls: "tool_use", llm.FinishContentFilter: "refusal",
}

func wireUsage(u *llm.Usage) map[string]any {
	if u == nil {
		u = &llm.Usage{}
	}
	return map[string]any{
		"input_tokens": u.PromptTokens - u.CachedTokens, "cache_creation_input_tokens": 0,
		"cache_read_input_tokens": u.CachedTokens, "output_tokens": u.CompletionTokens,
	}
}

func (*Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	ch := resp.Choices[0]
	content := []any{}
	if ch.ReasoningContent != nil {
		content = append(content, map[string]any{"type": "thinking", "thinking": *ch.ReasoningContent, "signature": testSignature})
	}
	if ch.Content != nil {
		content = append(content, map[string]any{"type": "text", "text": *ch.Content})
	}
	for _, tc := range ch.ToolCalls {
		content = append(content, map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Name, "input": json.RawMessage(tc.Arguments)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_011CSHoEeqs5C35K2UUqR7Fy")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": resp.Model,
		"content": content, "stop_reason": stopReasons[ch.FinishReason], "stop_sequence": nil, "usage": wireUsage(resp.Usage),
	})
}

// wireStream is the state of one streamed answer: canonical chunks arrive one by one, Anthropic
// sends one content block at a time, so tool calls are held until the finish reason.
type wireStream struct {
	started bool
	open    string // type of the open block, "" if none
	index   int    // index of the open block, or of the next one
	tools   []*wireToolCall
	stop    string
	delta   bool // message_delta written
}

type wireToolCall struct {
	index     int32
	id, name  string
	fragments []string
}

func (a *Wire) state(w io.Writer) *wireStream {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.streams == nil {
		a.streams = map[io.Writer]*wireStream{}
	}
	st := a.streams[w]
	if st == nil {
		st = &wireStream{}
		a.streams[w] = st
	}
	return st
}

func sse(w io.Writer, name string, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
}

func (a *Wire) StartStream(w http.ResponseWriter) {
	a.mu.Lock()
	if a.streams == nil {
		a.streams = map[io.Writer]*wireStream{}
	}
	a.streams[w] = &wireStream{}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Request-Id", "req_011CSHoEeqs5C35K2UUqR7Fy")
	w.WriteHeader(http.StatusOK)
}

func (st *wireStream) closeBlock(w io.Writer) {
	if st.open == "" {
		return
	}
	if st.open == "thinking" {
		sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": st.index,
			"delta": map[string]any{"type": "signature_delta", "signature": testSignature}})
	}
	sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": st.index})
	st.open = ""
	st.index++
}

func (st *wireStream) openBlock(w io.Writer, typ string, cb map[string]any) {
	if st.open == typ {
		return
	}
	st.closeBlock(w)
	st.open = typ
	sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": st.index, "content_block": cb})
}

func (st *wireStream) flushTools(w io.Writer) {
	st.closeBlock(w)
	for _, tc := range st.tools {
		st.openBlock(w, "tool_use", map[string]any{"type": "tool_use", "id": tc.id, "name": tc.name, "input": map[string]any{}})
		for _, f := range append([]string{""}, tc.fragments...) {
			sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": st.index,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": f}})
		}
		st.closeBlock(w)
	}
	st.tools = nil
}

func (a *Wire) WriteChunk(w io.Writer, c *llm.Chunk) {
	st := a.state(w)
	if !st.started {
		st.started = true
		sse(w, "message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": c.Model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 0, "output_tokens": 1}}})
		sse(w, "ping", map[string]any{"type": "ping"})
	}
	for _, ch := range c.Choices {
		if ch.ReasoningContent != nil {
			st.openBlock(w, "thinking", map[string]any{"type": "thinking", "thinking": ""})
			sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": st.index,
				"delta": map[string]any{"type": "thinking_delta", "thinking": *ch.ReasoningContent}})
		}
		if ch.Content != nil && *ch.Content != "" {
			st.openBlock(w, "text", map[string]any{"type": "text", "text": ""})
			sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": st.index,
				"delta": map[string]any{"type": "text_delta", "text": *ch.Content}})
		}
		for _, d := range ch.ToolCalls {
			var tc *wireToolCall
			for _, t := range st.tools {
				if t.index == d.Index {
					tc = t
				}
			}
			if tc == nil {
				tc = &wireToolCall{index: d.Index}
				st.tools = append(st.tools, tc)
			}
			if d.ID != "" {
				tc.id, tc.name = d.ID, d.Name
			}
			if d.Arguments != "" {
				tc.fragments = append(tc.fragments, d.Arguments)
			}
		}
		if ch.FinishReason != "" {
			st.flushTools(w)
			st.stop = stopReasons[ch.FinishReason]
		}
	}
	if c.Usage != nil {
		st.flushTools(w)
		sse(w, "message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": st.stop, "stop_sequence": nil}, "usage": wireUsage(c.Usage)})
		st.delta = true
	}
}

func (a *Wire) EndStream(w io.Writer) {
	st := a.state(w)
	st.flushTools(w)
	if !st.delta {
		sse(w, "message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": st.stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 1}})
	}
	sse(w, "message_stop", map[string]any{"type": "message_stop"})
	a.mu.Lock()
	delete(a.streams, w)
	a.mu.Unlock()
}

// errorTypes are Anthropic's error types and their statuses.
var errorTypes = map[string]int{
	"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
	"not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
	"timeout_error": 504, "overloaded_error": 529,
}

// errorType names the Anthropic error type for a scripted error: its own type when Anthropic
// has it with that status, else the type Anthropic uses for the status.
func errorType(e *providertest.UpstreamError) string {
	if st, ok := errorTypes[e.Type]; ok && (e.Status == 0 || st == e.Status) {
		return e.Type
	}
	for typ, st := range errorTypes {
		if st == e.Status {
			return typ
		}
	}
	return "api_error"
}

func errorJSON(e *providertest.UpstreamError) map[string]any {
	return map[string]any{"type": "error", "error": map[string]any{"type": errorType(e), "message": e.Message}}
}

func (*Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	sse(w, "error", errorJSON(e))
}

func (*Wire) WriteEmbeddings(w http.ResponseWriter, _ *llm.EmbeddingResponse, _ []int) {
	// Anthropic has no embeddings route.
	(&Wire{}).WriteError(w, &providertest.UpstreamError{Status: 404, Message: "Not found"})
}

func (*Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_011CSHoEeqs5C35K2UUqR7Fy")
	w.WriteHeader(e.Status)
	body := errorJSON(e)
	body["request_id"] = "req_011CSHoEeqs5C35K2UUqR7Fy"
	json.NewEncoder(w).Encode(body)
}
