package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

// UpstreamOption changes how the scripted model of NewUpstream answers.
type UpstreamOption func(*model)

// WithReasoning makes every chat answer carry reasoning content before its text or tool call:
// "Thinking about: <last user text>".
func WithReasoning() UpstreamOption { return func(m *model) { m.reasoning = true } }

// NewUpstream starts a loopback server that speaks w's native protocol and answers like a
// model, for end-to-end tests that put an adapter behind the gateway. It answers:
//
//   - chat: "pong: <last user text>", blocking or streamed one word per chunk, then a finish
//     chunk and a usage chunk (usage counts whitespace-separated words);
//   - chat offering tools whose last message is not a tool result: a call to the first tool
//     (finish reason tool_calls), its arguments a JSON object that sets each required string
//     property of the tool's schema to the last user text; streamed, the arguments arrive in
//     several deltas;
//   - chat whose last message is a tool result: "tool said: <result text>";
//   - embeddings: EmbeddingVector of each input, written in reverse index order (wires whose
//     protocol has no indexes answer positionally).
//
// A request w cannot decode fails t and is answered with a 400 in w's error format. The server
// is closed when t ends.
func NewUpstream(t testing.TB, w Wire, opts ...UpstreamOption) *httptest.Server {
	t.Helper()
	m := &model{t: t, w: w}
	for _, o := range opts {
		o(m)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return srv
}

// EmbeddingVector is the embedding NewUpstream's model returns for text: its length in bytes,
// its first byte, 0.5 and -0.25 (all exact in float32).
func EmbeddingVector(text string) []float32 {
	var first float32
	if text != "" {
		first = float32(text[0])
	}
	return []float32{float32(len(text)), first, 0.5, -0.25}
}

// upstreamID and upstreamCreated identify every answer of NewUpstream's model.
const (
	upstreamID      = "chatcmpl-upstream"
	upstreamCreated = 1767225600
)

type model struct {
	t         testing.TB
	w         Wire
	reasoning bool
}

func (m *model) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		m.t.Errorf("upstream: read request: %v", err)
		return
	}
	c, err := m.w.Decode(r, body)
	if err != nil {
		m.t.Errorf("upstream: decode %s %s: %v\n%s", r.Method, r.URL, err, body)
		m.w.WriteError(rw, &UpstreamError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: err.Error()})
		return
	}
	switch {
	case c.Op == "embed":
		m.embed(rw, c.Embed)
	case c.Stream:
		m.stream(rw, c.Chat)
	default:
		m.w.WriteChat(rw, m.answer(c.Chat))
	}
}

// turn is the model's answer to one chat request, before rendering.
type turn struct {
	reasoning *string
	text      *string
	call      *llm.ToolCall
	usage     *llm.Usage
}

func (m *model) turn(req *llm.ChatRequest) turn {
	var last *llm.Message
	if n := len(req.Messages); n > 0 {
		last = &req.Messages[n-1]
	}
	user := lastUserText(req.Messages)
	var tr turn
	if m.reasoning {
		tr.reasoning = llm.Ptr("Thinking about: " + user)
	}
	var completion string
	switch {
	case last != nil && last.Role == llm.RoleTool:
		tr.text = llm.Ptr("tool said: " + last.Text())
		completion = *tr.text
	case len(req.Tools) > 0:
		tool := req.Tools[0]
		tr.call = &llm.ToolCall{ID: "call_" + tool.Name + "_1", Name: tool.Name, Arguments: toolArguments(tool, user)}
		completion = tr.call.Arguments
	default:
		tr.text = llm.Ptr("pong: " + user)
		completion = *tr.text
	}
	var prompt int
	for i := range req.Messages {
		prompt += len(strings.Fields(req.Messages[i].Text()))
	}
	u := &llm.Usage{PromptTokens: int32(prompt), CompletionTokens: int32(len(strings.Fields(completion)))}
	if tr.reasoning != nil {
		u.ReasoningTokens = int32(len(strings.Fields(*tr.reasoning)))
		u.CompletionTokens += u.ReasoningTokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	tr.usage = u
	return tr
}

func (m *model) answer(req *llm.ChatRequest) *llm.ChatResponse {
	tr := m.turn(req)
	ch := llm.Choice{Content: tr.text, ReasoningContent: tr.reasoning, FinishReason: llm.FinishStop}
	if tr.call != nil {
		ch.ToolCalls, ch.FinishReason = []llm.ToolCall{*tr.call}, llm.FinishToolCalls
	}
	return &llm.ChatResponse{ID: upstreamID, Model: req.Model, Created: upstreamCreated, Choices: []llm.Choice{ch}, Usage: tr.usage}
}

func (m *model) stream(rw http.ResponseWriter, req *llm.ChatRequest) {
	tr := m.turn(req)
	chunk := func(c llm.ChunkChoice) *llm.Chunk {
		return &llm.Chunk{ID: upstreamID, Model: req.Model, Created: upstreamCreated, Choices: []llm.ChunkChoice{c}}
	}
	var chunks []*llm.Chunk
	role := llm.RoleAssistant
	if tr.reasoning != nil {
		chunks = append(chunks, chunk(llm.ChunkChoice{Role: role, ReasoningContent: tr.reasoning}))
		role = ""
	}
	finish := llm.FinishStop
	if tr.call != nil {
		finish = llm.FinishToolCalls
		chunks = append(chunks, chunk(llm.ChunkChoice{Role: role, ToolCalls: []llm.ToolCallDelta{{ID: tr.call.ID, Name: tr.call.Name}}}))
		for _, piece := range splitArguments(tr.call.Arguments) {
			chunks = append(chunks, chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Arguments: piece}}}))
		}
	} else {
		for _, word := range strings.SplitAfter(*tr.text, " ") {
			chunks = append(chunks, chunk(llm.ChunkChoice{Role: role, Content: llm.Ptr(word)}))
			role = ""
		}
	}
	chunks = append(chunks, chunk(llm.ChunkChoice{FinishReason: finish}))
	chunks = append(chunks, &llm.Chunk{ID: upstreamID, Model: req.Model, Created: upstreamCreated, Usage: tr.usage})

	m.w.StartStream(rw)
	rc := http.NewResponseController(rw)
	_ = rc.Flush()
	for _, c := range chunks {
		m.w.WriteChunk(rw, c)
		_ = rc.Flush()
	}
	m.w.EndStream(rw)
}

func (m *model) embed(rw http.ResponseWriter, req *llm.EmbeddingRequest) {
	resp := &llm.EmbeddingResponse{Model: req.Model}
	order := make([]int, len(req.Texts))
	for i, text := range req.Texts {
		resp.Vectors = append(resp.Vectors, EmbeddingVector(text))
		resp.PromptTokens += int32(len(strings.Fields(text)))
		order[i] = len(req.Texts) - 1 - i
	}
	m.w.WriteEmbeddings(rw, resp, order)
}

func lastUserText(msgs []llm.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == llm.RoleUser {
			return msgs[i].Text()
		}
	}
	return ""
}

// toolArguments is the model's call of tool: a JSON object setting each required string
// property of the tool's parameter schema to text.
func toolArguments(tool llm.Tool, text string) string {
	var schema struct {
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	args := map[string]string{}
	if json.Unmarshal(tool.Parameters, &schema) == nil {
		for _, name := range schema.Required {
			if schema.Properties[name].Type == "string" {
				args[name] = text
			}
		}
	}
	b, err := json.Marshal(args)
	if err != nil {
		panic(fmt.Sprintf("providertest: marshal tool arguments: %v", err)) // a map of strings always marshals
	}
	return string(b)
}

// splitArguments cuts JSON text into about three pieces (fewer when it is shorter), on rune
// boundaries, as a model streams a call's arguments.
func splitArguments(s string) []string {
	runes := []rune(s)
	var out []string
	for piece := range slices.Chunk(runes, max(len(runes)/3, 1)) {
		out = append(out, string(piece))
	}
	return out
}
