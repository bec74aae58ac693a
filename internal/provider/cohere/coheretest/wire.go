// Package coheretest is the upstream side of Cohere's v2 API for tests: a providertest.Wire
// that renders canonical answers in the native protocol and reads the adapter's native requests
// back, a request validator, and rerank helpers. It is written from Cohere's OpenAPI document
// (cohere-ai/cohere-developer-experience cohere-openapi.yaml at commit
// e814c8a1822f3b144b3708fdff14c3df0281e961; the document's licence is proprietary, so it is
// not vendored: Validate transcribes the constraints it checks) independently of the cohere
// adapter, so a misreading is not mirrored. Requests are read as generic JSON, answers written
// as literal JSON objects.
package coheretest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

type obj = map[string]any

// Wire speaks Cohere's v2 chat and embed endpoints for the conformance suite.
type Wire struct {
	mu      sync.Mutex
	streams map[io.Writer]*wireStream
}

// wireStream is what a streamed answer has written so far: Cohere numbers content blocks and
// tool calls with one index, and sends the finish reason together with the usage in
// message-end.
type wireStream struct {
	started bool
	next    int           // the next block index
	block   string        // the open content block: "text", "thinking" or ""
	blockAt int           // its index
	calls   map[int32]int // canonical tool call index → Cohere index
	finish  string        // the pending finish reason (Cohere's name)
}

func NewWire() *Wire { return &Wire{streams: map[io.Writer]*wireStream{}} }

// Decode reads a /v2/chat or /v2/embed request.
func (c *Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	if err := Validate(r, body); err != nil {
		return nil, err
	}
	var m obj
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	switch r.URL.Path {
	case "/v2/chat":
		req, err := decodeChat(m)
		stream, _ := m["stream"].(bool)
		return &providertest.Call{Op: "chat", Stream: stream, Chat: req}, err
	case "/v2/embed":
		req := &llm.EmbeddingRequest{Model: m["model"].(string), Dimensions: int32Field(m, "output_dimension")}
		for _, t := range list(m["texts"]) {
			req.Texts = append(req.Texts, t.(string))
		}
		return &providertest.Call{Op: "embed", Embed: req}, nil
	}
	return nil, fmt.Errorf("unexpected path %s", r.URL.Path)
}

func decodeChat(m obj) (*llm.ChatRequest, error) {
	req := &llm.ChatRequest{Model: m["model"].(string)}
	for _, x := range list(m["messages"]) {
		msg := x.(obj)
		switch msg["role"] {
		case "system":
			req.Messages = append(req.Messages, llm.TextMessage(llm.RoleSystem, textOf(msg["content"])))
		case "user":
			um := llm.Message{Role: llm.RoleUser}
			switch c := msg["content"].(type) {
			case string:
				um.Content = []llm.Part{{Type: llm.PartText, Text: c}}
			case []any:
				um.ContentIsParts = true
				for _, y := range c {
					p := y.(obj)
					switch p["type"] {
					case "text":
						um.Content = append(um.Content, llm.Part{Type: llm.PartText, Text: p["text"].(string)})
					case "image_url":
						iu := p["image_url"].(obj)
						detail, _ := iu["detail"].(string)
						um.Content = append(um.Content, llm.Part{Type: llm.PartImageURL, ImageURL: iu["url"].(string), ImageDetail: detail})
					}
				}
			}
			req.Messages = append(req.Messages, um)
		case "assistant":
			am := llm.Message{Role: llm.RoleAssistant}
			if t := textOf(msg["content"]); t != "" {
				am.Content = []llm.Part{{Type: llm.PartText, Text: t}}
			}
			am.ReasoningContent, _ = msg["tool_plan"].(string)
			for _, y := range list(msg["tool_calls"]) {
				tc := y.(obj)
				fn := tc["function"].(obj)
				am.ToolCalls = append(am.ToolCalls, llm.ToolCall{ID: tc["id"].(string), Name: fn["name"].(string), Arguments: fn["arguments"].(string)})
			}
			req.Messages = append(req.Messages, am)
		case "tool":
			req.Messages = append(req.Messages, llm.Message{Role: llm.RoleTool, ToolCallID: msg["tool_call_id"].(string),
				Content: []llm.Part{{Type: llm.PartText, Text: textOf(msg["content"])}}})
		}
	}
	req.Temperature = floatField(m, "temperature")
	req.TopP = floatField(m, "p")
	req.PresencePenalty = floatField(m, "presence_penalty")
	req.FrequencyPenalty = floatField(m, "frequency_penalty")
	req.MaxTokens = int32Field(m, "max_tokens")
	if s, ok := m["seed"].(float64); ok {
		req.Seed = llm.Ptr(int64(s))
	}
	for _, s := range list(m["stop_sequences"]) {
		req.Stop = append(req.Stop, s.(string))
	}
	for _, x := range list(m["tools"]) {
		fn := x.(obj)["function"].(obj)
		params, _ := json.Marshal(fn["parameters"])
		desc, _ := fn["description"].(string)
		req.Tools = append(req.Tools, llm.Tool{Name: fn["name"].(string), Description: desc, Parameters: params})
	}
	switch m["tool_choice"] {
	case "REQUIRED":
		req.ToolChoice = &llm.ToolChoice{Mode: "required"}
	case "NONE":
		req.ToolChoice = &llm.ToolChoice{Mode: "none"}
	}
	if rf, ok := m["response_format"].(obj); ok {
		req.ResponseFormat = &llm.ResponseFormat{Type: rf["type"].(string)}
		if s, ok := rf["json_schema"]; ok {
			req.ResponseFormat.Type = "json_schema"
			req.ResponseFormat.Schema, _ = json.Marshal(s)
		}
	}
	if th, ok := m["thinking"].(obj); ok && th["type"] == "disabled" {
		req.ReasoningEffort = "none"
	}
	return req, nil
}

// textOf is a content that is a string or a list of text parts, as one string.
func textOf(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, y := range c {
			if t, ok := y.(obj)["text"].(string); ok {
				b.WriteString(t)
			}
		}
		return b.String()
	}
	return ""
}

// cohereFinish is the native name of a canonical finish reason.
func cohereFinish(reason string) string {
	switch reason {
	case llm.FinishLength:
		return "MAX_TOKENS"
	case llm.FinishToolCalls:
		return "TOOL_CALL"
	case "":
		return ""
	}
	return "COMPLETE"
}

func usageObj(u *llm.Usage) obj {
	if u == nil {
		return nil
	}
	// billed_units differs from tokens (Cohere bills fewer tokens than the model sees): the
	// adapter must read tokens.
	return obj{
		"billed_units":  obj{"input_tokens": u.PromptTokens - 1, "output_tokens": u.CompletionTokens},
		"tokens":        obj{"input_tokens": u.PromptTokens, "output_tokens": u.CompletionTokens},
		"cached_tokens": u.CachedTokens,
	}
}

func toolCallObj(tc llm.ToolCall) obj {
	return obj{"id": tc.ID, "type": "function", "function": obj{"name": tc.Name, "arguments": tc.Arguments}}
}

// WriteChat writes a ChatResponseV2.
func (c *Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	ch := resp.Choices[0]
	msg := obj{"role": "assistant"}
	var content []any
	if ch.ReasoningContent != nil {
		content = append(content, obj{"type": "thinking", "thinking": *ch.ReasoningContent})
	}
	if ch.Content != nil {
		content = append(content, obj{"type": "text", "text": *ch.Content})
	}
	if content != nil {
		msg["content"] = content
	}
	if len(ch.ToolCalls) > 0 {
		var calls []any
		for _, tc := range ch.ToolCalls {
			calls = append(calls, toolCallObj(tc))
		}
		msg["tool_calls"] = calls
		msg["tool_plan"] = "I will call the tools."
	}
	out := obj{"id": resp.ID, "finish_reason": cohereFinish(ch.FinishReason), "message": msg}
	if u := usageObj(resp.Usage); u != nil {
		out["usage"] = u
	}
	writeJSON(w, http.StatusOK, nil, out)
}

func (c *Wire) StartStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
}

func (c *Wire) state(w io.Writer) *wireStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[w]
	if st == nil {
		st = &wireStream{calls: map[int32]int{}}
		c.streams[w] = st
	}
	return st
}

func event(w io.Writer, v obj) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", v["type"], b)
}

// openBlock makes sure a content block of kind is open, closing another first.
func (st *wireStream) openBlock(w io.Writer, kind string) {
	if st.block == kind {
		return
	}
	st.closeBlock(w)
	st.block, st.blockAt = kind, st.next
	st.next++
	event(w, obj{"type": "content-start", "index": st.blockAt, "delta": obj{"message": obj{"content": obj{"type": kind, kind: ""}}}})
}

func (st *wireStream) closeBlock(w io.Writer) {
	if st.block != "" {
		event(w, obj{"type": "content-end", "index": st.blockAt})
		st.block = ""
	}
}

// WriteChunk writes a canonical chunk as Cohere events.
func (c *Wire) WriteChunk(w io.Writer, ch *llm.Chunk) {
	st := c.state(w)
	if !st.started {
		st.started = true
		event(w, obj{"type": "message-start", "id": ch.ID, "delta": obj{"message": obj{"role": "assistant"}}})
	}
	if ch.Usage != nil && len(ch.Choices) == 0 {
		c.messageEnd(w, st, ch.Usage)
		return
	}
	for _, cc := range ch.Choices {
		if cc.ReasoningContent != nil {
			st.openBlock(w, "thinking")
			event(w, obj{"type": "content-delta", "index": st.blockAt, "delta": obj{"message": obj{"content": obj{"thinking": *cc.ReasoningContent}}}})
		}
		if cc.Content != nil {
			st.openBlock(w, "text")
			event(w, obj{"type": "content-delta", "index": st.blockAt, "delta": obj{"message": obj{"content": obj{"text": *cc.Content}}}})
		}
		for _, d := range cc.ToolCalls {
			st.closeBlock(w)
			if d.ID != "" {
				idx := st.next
				st.next++
				st.calls[d.Index] = idx
				event(w, obj{"type": "tool-call-start", "index": idx, "delta": obj{"message": obj{"tool_calls": obj{
					"id": d.ID, "type": "function", "function": obj{"name": d.Name, "arguments": d.Arguments}}}}})
				continue
			}
			event(w, obj{"type": "tool-call-delta", "index": st.calls[d.Index], "delta": obj{"message": obj{"tool_calls": obj{"function": obj{"arguments": d.Arguments}}}}})
		}
		if cc.FinishReason != "" {
			st.closeBlock(w)
			st.finish = cohereFinish(cc.FinishReason)
		}
	}
}

func (c *Wire) messageEnd(w io.Writer, st *wireStream, u *llm.Usage) {
	if st.finish == "" {
		return
	}
	delta := obj{"finish_reason": st.finish}
	if u != nil {
		delta["usage"] = usageObj(u)
	}
	event(w, obj{"type": "message-end", "delta": delta})
	st.finish = ""
}

// WriteStreamError ends the stream with a message-end carrying finish_reason ERROR and the
// error text.
func (c *Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	event(w, obj{"type": "message-end", "delta": obj{"finish_reason": "ERROR", "error": e.Message}})
}

// EndStream sends a pending message-end without usage; Cohere has no other terminator.
func (c *Wire) EndStream(w io.Writer) {
	st := c.state(w)
	c.messageEnd(w, st, nil)
	c.mu.Lock()
	delete(c.streams, w)
	c.mu.Unlock()
}

// WriteEmbeddings writes an EmbedByTypeResponse. Cohere answers positionally (no per-item
// index), so order is ignored.
func (c *Wire) WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, order []int) {
	vecs := make([]any, len(resp.Vectors))
	for i, v := range resp.Vectors {
		vecs[i] = v
	}
	writeJSON(w, http.StatusOK, nil, obj{
		"id": "emb-1", "embeddings": obj{"float": vecs}, "texts": []string{},
		"meta": obj{"api_version": obj{"version": "2"}, "billed_units": obj{"input_tokens": resp.PromptTokens}},
	})
}

// WriteError writes Cohere's error body {"id", "message"} with e's status.
func (c *Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	writeJSON(w, e.Status, e.Header, obj{"id": "err-1", "message": e.Message})
}

func writeJSON(w http.ResponseWriter, status int, h http.Header, v any) {
	for k, vs := range h {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RerankResult is one result a rerank answer lists.
type RerankResult struct {
	Index int
	Score float64
}

// DecodeRerank reads a /v2/rerank request (after Validate).
func DecodeRerank(body []byte) (*llm.RerankRequest, int, error) {
	var m obj
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, 0, err
	}
	req := &llm.RerankRequest{Model: m["model"].(string), Query: m["query"].(string)}
	for _, d := range list(m["documents"]) {
		req.Documents = append(req.Documents, llm.RerankDocument{Text: d.(string)})
	}
	if n := int32Field(m, "top_n"); n != nil {
		req.TopN = *n
	}
	maxTokens := 0
	if n := int32Field(m, "max_tokens_per_doc"); n != nil {
		maxTokens = int(*n)
	}
	return req, maxTokens, nil
}

// WriteRerank writes a /v2/rerank answer.
func WriteRerank(w http.ResponseWriter, results []RerankResult, searchUnits int) {
	rs := make([]any, len(results))
	for i, r := range results {
		rs[i] = obj{"index": r.Index, "relevance_score": r.Score}
	}
	writeJSON(w, http.StatusOK, nil, obj{"id": "rr-1", "results": rs,
		"meta": obj{"api_version": obj{"version": "2"}, "billed_units": obj{"search_units": searchUnits}}})
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func floatField(m obj, k string) *float64 {
	if f, ok := m[k].(float64); ok {
		return &f
	}
	return nil
}

func int32Field(m obj, k string) *int32 {
	if f, ok := m[k].(float64); ok {
		return llm.Ptr(int32(f))
	}
	return nil
}
