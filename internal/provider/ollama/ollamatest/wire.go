// Package ollamatest is the upstream side of Ollama's native API for tests: a providertest.Wire
// that renders canonical answers in the native protocol and reads the adapter's native requests
// back. It is written independently of the ollama adapter, so a misreading is not mirrored; the
// conformance suite and providertest.NewUpstream (end-to-end tests) both use it.
package ollamatest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// Wire speaks Ollama's native API as its docs describe it (docs/api.md), written apart
// from the adapter so that a misreading is not mirrored: requests are read with generic maps,
// answers are written as NDJSON, tool calls are sent whole with object arguments.
type Wire struct {
	mu      sync.Mutex
	streams map[io.Writer]*wireStream
}

// wireStream is the state of one streamed answer: tool call pieces are gathered and sent whole,
// as Ollama does, and the finish reason waits for the done line.
type wireStream struct {
	model    string
	calls    []map[string]any
	args     []*strings.Builder
	reason   string
	doneSent bool
}

const fixedTime = "2026-01-01T00:00:00.000000Z"

func (o *Wire) state(w io.Writer) *wireStream {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.streams == nil {
		o.streams = map[io.Writer]*wireStream{}
	}
	st, ok := o.streams[w]
	if !ok {
		st = &wireStream{}
		o.streams[w] = st
	}
	return st
}

func (o *Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	switch r.URL.Path {
	case "/api/chat":
		return decodeChat(body)
	case "/api/embed":
		var req struct {
			Model      string          `json:"model"`
			Input      json.RawMessage `json:"input"`
			Dimensions *int32          `json:"dimensions"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		e := &llm.EmbeddingRequest{Model: req.Model, Dimensions: req.Dimensions}
		if err := json.Unmarshal(req.Input, &e.Texts); err != nil {
			var one string
			if err := json.Unmarshal(req.Input, &one); err != nil {
				return nil, fmt.Errorf("input: %w", err)
			}
			e.Texts = []string{one}
		}
		return &providertest.Call{Op: "embed", Embed: e}, nil
	}
	return nil, fmt.Errorf("unexpected path %s", r.URL.Path)
}

func decodeChat(body []byte) (*providertest.Call, error) {
	var req struct {
		Model    string `json:"model"`
		Stream   *bool  `json:"stream"`
		Messages []struct {
			Role      string   `json:"role"`
			Content   string   `json:"content"`
			Images    []string `json:"images"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string          `json:"name"`
					Arguments json.RawMessage `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
			ToolName   string `json:"tool_name"`
			ToolCallID string `json:"tool_call_id"`
		} `json:"messages"`
		Tools []struct {
			Function struct {
				Name        string          `json:"name"`
				Description string          `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
		Options struct {
			Temperature *float64 `json:"temperature"`
			TopP        *float64 `json:"top_p"`
			NumPredict  *int32   `json:"num_predict"`
			Stop        []string `json:"stop"`
			Seed        *int64   `json:"seed"`
		} `json:"options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	c := &llm.ChatRequest{Model: req.Model, Temperature: req.Options.Temperature, TopP: req.Options.TopP,
		MaxTokens: req.Options.NumPredict, Stop: req.Options.Stop, Seed: req.Options.Seed}
	for _, m := range req.Messages {
		cm := llm.Message{Role: m.Role, ToolCallID: m.ToolCallID}
		if m.Content != "" || len(m.Images) == 0 && len(m.ToolCalls) == 0 {
			cm.Content = []llm.Part{{Type: llm.PartText, Text: m.Content}}
		}
		for _, img := range m.Images {
			raw, err := base64.StdEncoding.DecodeString(img)
			if err != nil {
				return nil, fmt.Errorf("image is not bare base64: %w", err)
			}
			cm.Content = append(cm.Content, llm.Part{Type: llm.PartImageURL, ImageURL: "data:" + http.DetectContentType(raw) + ";base64," + img})
		}
		for _, tc := range m.ToolCalls {
			if len(tc.Function.Arguments) == 0 || tc.Function.Arguments[0] != '{' {
				return nil, fmt.Errorf("tool call arguments %s are not an object", tc.Function.Arguments)
			}
			var args bytes.Buffer
			if err := json.Compact(&args, tc.Function.Arguments); err != nil {
				return nil, err
			}
			cm.ToolCalls = append(cm.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args.String()})
		}
		c.Messages = append(c.Messages, cm)
	}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	return &providertest.Call{Op: "chat", Stream: req.Stream == nil || *req.Stream, Chat: c}, nil
}

func doneReason(finish string) string {
	if finish == llm.FinishLength {
		return "length"
	}
	return "stop" // tool calls end with "stop" too
}

func toolCalls(calls []llm.ToolCall) []map[string]any {
	var out []map[string]any
	for i, tc := range calls {
		out = append(out, map[string]any{"id": tc.ID, "function": map[string]any{
			"index": i, "name": tc.Name, "arguments": json.RawMessage(tc.Arguments)}})
	}
	return out
}

func writeLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Write(append(b, '\n'))
}

func (o *Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	ch := resp.Choices[0]
	msg := map[string]any{"role": "assistant", "content": ""}
	if ch.Content != nil {
		msg["content"] = *ch.Content
	}
	if ch.ReasoningContent != nil {
		msg["thinking"] = *ch.ReasoningContent
	}
	if len(ch.ToolCalls) > 0 {
		msg["tool_calls"] = toolCalls(ch.ToolCalls)
	}
	out := map[string]any{"model": resp.Model, "created_at": fixedTime, "message": msg, "done": true,
		"done_reason": doneReason(ch.FinishReason), "total_duration": 4935886791, "load_duration": 2201384,
		"prompt_eval_duration": 34105000, "eval_duration": 4897640000}
	if u := resp.Usage; u != nil {
		out["prompt_eval_count"], out["eval_count"] = u.PromptTokens, u.CompletionTokens
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeLine(w, out)
}

func (o *Wire) StartStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
}

func (o *Wire) WriteChunk(w io.Writer, c *llm.Chunk) {
	st := o.state(w)
	if c.Model != "" {
		st.model = c.Model
	}
	if len(c.Choices) == 0 && c.Usage != nil {
		o.done(w, st, c.Usage)
		return
	}
	for _, ch := range c.Choices {
		for _, d := range ch.ToolCalls {
			for int(d.Index) >= len(st.calls) {
				st.calls = append(st.calls, map[string]any{})
				st.args = append(st.args, &strings.Builder{})
			}
			if d.ID != "" {
				st.calls[d.Index]["id"], st.calls[d.Index]["name"] = d.ID, d.Name
			}
			st.args[d.Index].WriteString(d.Arguments)
		}
		msg := map[string]any{"role": "assistant", "content": ""}
		send := false
		if ch.Content != nil {
			msg["content"], send = *ch.Content, true
		}
		if ch.ReasoningContent != nil {
			msg["thinking"], send = *ch.ReasoningContent, true
		}
		if send {
			writeLine(w, map[string]any{"model": st.model, "created_at": fixedTime, "message": msg, "done": false})
		}
		if ch.FinishReason != "" {
			o.flushCalls(w, st)
			st.reason = ch.FinishReason
		}
	}
}

// flushCalls sends the gathered tool calls whole, in one line, as Ollama does.
func (o *Wire) flushCalls(w io.Writer, st *wireStream) {
	if len(st.calls) == 0 {
		return
	}
	var calls []llm.ToolCall
	for i, c := range st.calls {
		id, _ := c["id"].(string)
		name, _ := c["name"].(string)
		calls = append(calls, llm.ToolCall{ID: id, Name: name, Arguments: st.args[i].String()})
	}
	st.calls, st.args = nil, nil
	writeLine(w, map[string]any{"model": st.model, "created_at": fixedTime, "done": false,
		"message": map[string]any{"role": "assistant", "content": "", "tool_calls": toolCalls(calls)}})
}

func (o *Wire) done(w io.Writer, st *wireStream, u *llm.Usage) {
	o.flushCalls(w, st)
	line := map[string]any{"model": st.model, "created_at": fixedTime, "message": map[string]any{"role": "assistant", "content": ""},
		"done": true, "done_reason": doneReason(st.reason), "total_duration": 1274925500, "load_duration": 1805292}
	if u != nil {
		line["prompt_eval_count"], line["eval_count"] = u.PromptTokens, u.CompletionTokens
	}
	writeLine(w, line)
	st.doneSent = true
}

func (o *Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	writeLine(w, map[string]string{"error": e.Message})
}

func (o *Wire) EndStream(w io.Writer) {
	if st := o.state(w); !st.doneSent {
		o.done(w, st, nil)
	}
	o.mu.Lock()
	delete(o.streams, w)
	o.mu.Unlock()
}

// WriteEmbeddings answers in input order: /api/embed has no index, so the suite's shuffled
// order cannot be expressed and is ignored.
func (o *Wire) WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, _ []int) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeLine(w, map[string]any{"model": resp.Model, "embeddings": resp.Vectors, "total_duration": 14143917,
		"load_duration": 1019500, "prompt_eval_count": resp.PromptTokens})
}

func (o *Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Status)
	writeLine(w, map[string]string{"error": e.Message})
}
