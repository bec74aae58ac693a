// Package mock is an in-process provider with deterministic answers, for tests, demos and
// benchmarks that must not depend on a real upstream. Models:
//
//   - "echo" answers with the text of the last user message;
//   - "tools" calls the first offered tool (or the one tool_choice names) with arguments built
//     from the tool's schema, and summarises a tool result when the last message is one;
//   - "embed" serves embeddings: unit vectors derived from a SHA-256 of each input;
//   - "rerank" ranks documents (every model does; this one is listed as a rerank model): a
//     document's score is the share of the query's distinct words it contains, in [0, 1].
//
// Any other name listed in Config.Models behaves like "tools" if it starts with "tools" and like
// "echo" otherwise. Nothing sleeps; tokens are whitespace-separated words (plus one per prompt
// message).
package mock

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// Built-in model names.
const (
	ModelEcho   = "echo"
	ModelTools  = "tools"
	ModelEmbed  = "embed"
	ModelRerank = "rerank"
)

// DefaultDimensions is the embedding size when the request names none.
const DefaultDimensions = 16

// defaultAnswer is echoed when the last user message has no text.
const defaultAnswer = "This is the mock provider's answer."

// Provider is the mock. It implements llm.Provider, llm.Embedder, llm.Reranker, llm.ModelLister and
// llm.RerankModelLister and is safe for concurrent use.
type Provider struct {
	name   string
	models []string
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
	_ llm.Reranker    = (*Provider)(nil)

	_ llm.RerankModelLister = (*Provider)(nil)
)

// New returns the mock. It matches provider.Factory and never fails.
func New(cfg provider.Config) (llm.Provider, error) {
	models := []string{ModelEcho, ModelTools, ModelEmbed, ModelRerank}
	for _, m := range cfg.Models {
		if !slices.Contains(models, m) {
			models = append(models, m)
		}
	}
	name := cfg.Name
	if name == "" {
		name = "mock"
	}
	return &Provider{name: name, models: models}, nil
}

// Models returns echo, tools, embed, rerank and the configured names.
func (p *Provider) Models() []string { return slices.Clone(p.models) }

func (p *Provider) check(model string) error {
	if !slices.Contains(p.models, model) {
		e := llm.Errorf(llm.KindNotFound, "model %q not found", model)
		e.Code, e.Provider = "model_not_found", p.name
		return e
	}
	return nil
}

// answer is one planned reply, shared by Chat and ChatStream.
type answer struct {
	text     string
	call     *llm.ToolCall
	finish   string
	prompt   int32
	complete int32
}

func (p *Provider) plan(ctx context.Context, req *llm.ChatRequest) (*answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, llm.Wrap(llm.KindOf(err), err, "")
	}
	if err := p.check(req.Model); err != nil {
		return nil, err
	}
	if req.Model == ModelEmbed {
		return nil, llm.Errorf(llm.KindInvalidArgument, "model %q serves embeddings only", req.Model)
	}
	if req.Model == ModelRerank {
		return nil, llm.Errorf(llm.KindInvalidArgument, "model %q serves rerank only", req.Model)
	}
	if len(req.Messages) == 0 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "messages must not be empty")
	}
	a := &answer{finish: llm.FinishStop}
	for i := range req.Messages {
		a.prompt += 1 + countWords(req.Messages[i].Text()) // one token of overhead per message
	}
	last := &req.Messages[len(req.Messages)-1]
	toolsModel := strings.HasPrefix(req.Model, ModelTools)
	switch {
	case toolsModel && last.Role == llm.RoleTool:
		a.text = "The tool " + toolName(req.Messages, last.ToolCallID) + " returned: " + last.Text()
	case toolsModel && len(req.Tools) > 0 && (req.ToolChoice == nil || req.ToolChoice.Mode != "none"):
		t := pickTool(req)
		a.call = &llm.ToolCall{ID: callID(req, t.Name), Name: t.Name, Arguments: exampleArgs(t.Parameters)}
		a.finish = llm.FinishToolCalls
		a.complete = countWords(a.call.Arguments)
		return a, nil
	default:
		a.text = lastUserText(req.Messages)
	}
	a.text, a.finish = limit(a.text, req.Stop, req.MaxTokens)
	a.complete = countWords(a.text)
	return a, nil
}

func (a *answer) usage() *llm.Usage {
	return &llm.Usage{PromptTokens: a.prompt, CompletionTokens: a.complete, TotalTokens: a.prompt + a.complete}
}

// Chat answers at once.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	a, err := p.plan(ctx, req)
	if err != nil {
		return nil, err
	}
	c := llm.Choice{FinishReason: a.finish}
	if a.call != nil {
		c.ToolCalls = []llm.ToolCall{*a.call}
	} else {
		c.Content = llm.Ptr(a.text)
	}
	return &llm.ChatResponse{ID: responseID(req), Model: req.Model, Created: time.Now().Unix(),
		Choices: []llm.Choice{c}, Usage: a.usage()}, nil
}

// ChatStream answers in several chunks: text a few words at a time, or a tool call whose first
// delta carries id and name and whose arguments follow in at least two deltas; then a chunk with
// the finish reason and a usage chunk.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	a, err := p.plan(ctx, req)
	if err != nil {
		return nil, err
	}
	base := llm.Chunk{ID: responseID(req), Model: req.Model, Created: time.Now().Unix()}
	mk := func(c llm.ChunkChoice) *llm.Chunk {
		ch := base
		ch.Choices = []llm.ChunkChoice{c}
		return &ch
	}
	var chunks []*llm.Chunk
	if a.call != nil {
		chunks = append(chunks, mk(llm.ChunkChoice{Role: llm.RoleAssistant,
			ToolCalls: []llm.ToolCallDelta{{ID: a.call.ID, Name: a.call.Name}}}))
		for _, piece := range splitHalves(a.call.Arguments) {
			chunks = append(chunks, mk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Arguments: piece}}}))
		}
	} else {
		for i, piece := range splitWords(a.text) {
			c := llm.ChunkChoice{Content: llm.Ptr(piece)}
			if i == 0 {
				c.Role = llm.RoleAssistant
			}
			chunks = append(chunks, mk(c))
		}
	}
	chunks = append(chunks, mk(llm.ChunkChoice{FinishReason: a.finish}))
	u := base
	u.Usage = a.usage()
	chunks = append(chunks, &u)
	return &stream{ctx: ctx, chunks: chunks}, nil
}

type stream struct {
	ctx    context.Context
	chunks []*llm.Chunk
	closed bool
}

// Recv returns the next planned chunk, io.EOF after the last, or KindCanceled/KindTimeout once
// ctx ends.
func (s *stream) Recv() (*llm.Chunk, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, llm.Wrap(llm.KindOf(err), err, "")
	}
	if s.closed || len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *stream) Close() error { s.closed = true; return nil }

// Embed returns a deterministic unit vector per input (req.Dimensions, else DefaultDimensions).
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, llm.Wrap(llm.KindOf(err), err, "")
	}
	if err := p.check(req.Model); err != nil {
		return nil, err
	}
	dims := DefaultDimensions
	if req.Dimensions != nil {
		dims = int(*req.Dimensions)
	}
	if dims < 1 || dims > 4096 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "dimensions must be between 1 and 4096")
	}
	inputs := make([][]byte, 0, len(req.Texts)+len(req.Tokens))
	var tokens int32
	for _, t := range req.Texts {
		inputs = append(inputs, []byte(t))
		tokens += countWords(t)
	}
	for _, ts := range req.Tokens {
		b := make([]byte, 0, 4*len(ts))
		for _, tok := range ts {
			b = binary.LittleEndian.AppendUint32(b, uint32(tok))
		}
		inputs = append(inputs, b)
		tokens += int32(len(ts))
	}
	if len(inputs) == 0 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "input must not be empty")
	}
	out := &llm.EmbeddingResponse{Model: req.Model, PromptTokens: tokens, Vectors: make([][]float32, len(inputs))}
	for i, in := range inputs {
		out.Vectors[i] = vector(in, dims)
	}
	return out, nil
}

// RerankModels returns the rerank model.
func (p *Provider) RerankModels() []string { return []string{ModelRerank} }

// Rerank scores each document by the share of the query's distinct words (lower-cased, split at
// anything but letters and digits) that it contains, and returns the results in descending score
// order, equal scores in document order, cut to req.TopN. Usage counts the words of the query once
// per document plus the words of the documents.
func (p *Provider) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, llm.Wrap(llm.KindOf(err), err, "")
	}
	if err := p.check(req.Model); err != nil {
		return nil, err
	}
	if len(req.Documents) == 0 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "documents must not be empty")
	}
	query := wordSet(req.Query)
	qWords := countWords(req.Query)
	out := &llm.RerankResponse{Model: req.Model, Results: make([]llm.RerankResult, len(req.Documents))}
	var tokens int32
	for i := range req.Documents {
		text := req.Documents[i].AsText()
		tokens += qWords + countWords(text)
		score := 0.0
		if len(query) > 0 {
			doc := wordSet(text)
			hits := 0
			for w := range query {
				if doc[w] {
					hits++
				}
			}
			score = float64(hits) / float64(len(query))
		}
		out.Results[i] = llm.RerankResult{Index: int32(i), RelevanceScore: score}
		if req.ReturnDocuments {
			out.Results[i].Document = &req.Documents[i]
		}
	}
	slices.SortStableFunc(out.Results, func(a, b llm.RerankResult) int { return cmp.Compare(b.RelevanceScore, a.RelevanceScore) })
	if req.TopN > 0 && int(req.TopN) < len(out.Results) {
		out.Results = out.Results[:req.TopN]
	}
	out.Usage = llm.Usage{PromptTokens: tokens, TotalTokens: tokens}
	return out, nil
}

// wordSet returns the distinct lower-cased words of s: runs of letters and digits.
func wordSet(s string) map[string]bool {
	ws := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	set := make(map[string]bool, len(ws))
	for _, w := range ws {
		set[w] = true
	}
	return set
}

// vector derives dims values in [-1, 1) from SHA-256(counter || input) and normalises them.
func vector(input []byte, dims int) []float32 {
	v := make([]float32, dims)
	var sum float64
	var block [sha256.Size]byte
	for i := range dims {
		if i%8 == 0 {
			h := sha256.New()
			_ = binary.Write(h, binary.LittleEndian, uint32(i/8))
			h.Write(input)
			h.Sum(block[:0])
		}
		x := float64(binary.LittleEndian.Uint32(block[(i%8)*4:]))/float64(1<<31) - 1
		v[i] = float32(x)
		sum += x * x
	}
	norm := math.Sqrt(sum)
	if norm == 0 {
		v[0], norm = 1, 1
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

func countWords(s string) int32 { return int32(len(strings.Fields(s))) }

func lastUserText(msgs []llm.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == llm.RoleUser {
			if t := strings.TrimSpace(msgs[i].Text()); t != "" {
				return t
			}
			break
		}
	}
	return defaultAnswer
}

// limit cuts text at the earliest stop sequence (finish "stop") and then to maxTokens words
// (finish "length").
func limit(text string, stop []string, maxTokens *int32) (string, string) {
	cut := -1
	for _, s := range stop {
		if i := strings.Index(text, s); s != "" && i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		text = text[:cut]
	}
	if maxTokens != nil && *maxTokens >= 0 {
		starts := wordStarts(text)
		if n := int(*maxTokens); n < len(starts) {
			return strings.TrimRight(text[:starts[n]], " \t\n"), llm.FinishLength
		}
	}
	return text, llm.FinishStop
}

// wordStarts returns the byte offset of every word of s.
func wordStarts(s string) []int {
	var starts []int
	inWord := false
	for i, r := range s {
		space := r == ' ' || r == '\t' || r == '\n' || r == '\r'
		if !space && !inWord {
			starts = append(starts, i)
		}
		inWord = !space
	}
	return starts
}

// splitWords cuts s at word starts into pieces of up to three words, at least two pieces when
// s has two words or more; the pieces concatenate back to s.
func splitWords(s string) []string {
	starts := wordStarts(s)
	if len(starts) < 2 {
		return []string{s}
	}
	per := min(3, (len(starts)+1)/2)
	var pieces []string
	from := 0
	for i := per; i < len(starts); i += per {
		pieces = append(pieces, s[from:starts[i]])
		from = starts[i]
	}
	return append(pieces, s[from:])
}

// splitHalves cuts s into two non-empty pieces (one if s is shorter than two bytes).
func splitHalves(s string) []string {
	if len(s) < 2 {
		return []string{s}
	}
	return []string{s[:len(s)/2], s[len(s)/2:]}
}

func pickTool(req *llm.ChatRequest) llm.Tool {
	if tc := req.ToolChoice; tc != nil && tc.Name != "" {
		for _, t := range req.Tools {
			if t.Name == tc.Name {
				return t
			}
		}
	}
	return req.Tools[0]
}

func toolName(msgs []llm.Message, id string) string {
	for _, m := range msgs {
		for _, c := range m.ToolCalls {
			if c.ID == id {
				return c.Name
			}
		}
	}
	return "call"
}

func callID(req *llm.ChatRequest, tool string) string {
	h := fnv.New64a()
	h.Write([]byte(req.Model))
	h.Write([]byte{0})
	h.Write([]byte(tool))
	h.Write([]byte{0})
	h.Write([]byte(lastUserText(req.Messages)))
	return "call_" + hex.EncodeToString(h.Sum(nil))
}

func responseID(req *llm.ChatRequest) string {
	h := fnv.New64a()
	for i := range req.Messages {
		h.Write([]byte(req.Messages[i].Role))
		h.Write([]byte(req.Messages[i].Text()))
	}
	return "chatcmpl-mock-" + hex.EncodeToString(h.Sum(nil))
}

// exampleArgs builds a JSON object with a placeholder for each required property of schema:
// "example" for strings, 1 for numbers, true for booleans, the first enum value when given.
func exampleArgs(schema []byte) string {
	var s struct {
		Properties map[string]struct {
			Type json.RawMessage   `json:"type"`
			Enum []json.RawMessage `json:"enum"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if json.Unmarshal(schema, &s) != nil || len(s.Required) == 0 {
		return "{}"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range s.Required {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(name)
		b.Write(key)
		b.WriteByte(':')
		prop := s.Properties[name]
		if len(prop.Enum) > 0 {
			b.Write(prop.Enum[0])
			continue
		}
		var typ string
		if json.Unmarshal(prop.Type, &typ) != nil {
			var types []string
			if json.Unmarshal(prop.Type, &types) == nil && len(types) > 0 {
				typ = types[0]
			}
		}
		switch typ {
		case "integer", "number":
			b.WriteString("1")
		case "boolean":
			b.WriteString("true")
		case "array":
			b.WriteString("[]")
		case "object":
			b.WriteString("{}")
		case "null":
			b.WriteString("null")
		default:
			b.WriteString(`"example"`)
		}
	}
	b.WriteByte('}')
	return b.String()
}
