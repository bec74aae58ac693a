// Package ollama adapts Ollama's native API (POST /api/chat, POST /api/embed) to llm.Provider.
//
// Configuration: cfg.BaseURL is the server root without /api (DefaultBaseURL when empty; Ollama's
// cloud is https://ollama.com); cfg.APIKey, when set, is sent as a bearer token (the cloud needs
// one, a local server none). cfg.Options keys:
//
//   - num_ctx: context window in tokens, sent as options.num_ctx on every request (a positive
//     integer; unset keeps the server's default, which may be as small as 4096 and silently
//     truncates longer prompts).
//   - keep_alive: how long the server keeps the model loaded after a request: a duration such
//     as "5m" or "1h", "0" to unload at once, "-1" to keep it loaded (unset: the server's default).
//   - truncate: "true" or "false", sent on /api/embed (false makes over-long inputs an error
//     instead of being cut; unset: the server's default, true).
//
// Images must be inline (data: URLs, sent as bare base64); http(s) image URLs are refused with a
// parameter error, as the gateway does not fetch remote content on a client's behalf.
// ParamRules documents every canonical parameter.
package ollama

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// DefaultBaseURL is a local Ollama server.
const DefaultBaseURL = "http://127.0.0.1:11434"

// Provider talks to one Ollama server. It implements llm.Provider, llm.Embedder and
// llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	cfg       provider.Config
	client    *http.Client
	chatURL   string
	embedURL  string
	numCtx    *int
	keepAlive json.RawMessage
	truncate  *bool
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
)

// New returns a provider for the Ollama server cfg describes (see the package doc for
// cfg.Options). It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewWithClient(cfg, provider.NewHTTPClient(cfg))
}

// NewWithClient is New with a caller-supplied HTTP client.
func NewWithClient(cfg provider.Config, client *http.Client) (*Provider, error) {
	base, err := wireutil.BaseURL("ollama.New", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, client: client, chatURL: base + "/api/chat", embedURL: base + "/api/embed"}
	for k, v := range cfg.Options {
		switch k {
		case "num_ctx":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("ollama.New: options.num_ctx %q is not a positive integer", v)
			}
			p.numCtx = &n
		case "keep_alive":
			ka, err := parseKeepAlive(v)
			if err != nil {
				return nil, fmt.Errorf("ollama.New: options.keep_alive: %w", err)
			}
			p.keepAlive = ka
		case "truncate":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("ollama.New: options.truncate %q is not a boolean", v)
			}
			p.truncate = &b
		default:
			return nil, fmt.Errorf("ollama.New: unknown option %q (known: num_ctx, keep_alive, truncate)", k)
		}
	}
	return p, nil
}

// parseKeepAlive accepts a Go duration ("5m", "1h30m") or a number of seconds ("0", "-1") and
// returns it as Ollama's keep_alive JSON value.
func parseKeepAlive(v string) (json.RawMessage, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return json.RawMessage(strconv.Itoa(n)), nil
	}
	if _, err := time.ParseDuration(v); err != nil {
		return nil, fmt.Errorf("%q is neither a duration nor a number of seconds", v)
	}
	return json.Marshal(v)
}

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat sends a blocking chat request (stream:false).
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	w, err := p.encodeChat(ctx, req, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	defer cancel()
	resp, err := p.post(ctx, p.chatURL, w, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cr chatResponse
	if err := p.decodeBody(ctx, resp, &cr); err != nil {
		return nil, err
	}
	if cr.Error != nil {
		return nil, streamError(p.cfg.Name, *cr.Error)
	}
	return decodeResponse(&cr), nil
}

// ChatStream starts a streamed chat request; Ollama answers with NDJSON, one object per line,
// the last with done:true and the token counts.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	w, err := p.encodeChat(ctx, req, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	resp, err := p.post(ctx, p.chatURL, w, "application/x-ndjson")
	if err != nil {
		cancel()
		return nil, err
	}
	return newStream(ctx, cancel, p.cfg.Name, resp), nil
}

// Embed returns one vector per input, in input order (/api/embed answers in input order). Token
// inputs are refused: Ollama embeds text only.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if len(req.Tokens) > 0 {
		return nil, invalidParam("input", "Ollama embeds text only, not token arrays")
	}
	n := len(req.Texts)
	if n == 0 {
		return nil, invalidParam("input", "embeddings need at least one input")
	}
	w := embedRequest{Model: req.Model, Input: req.Texts, Dimensions: req.Dimensions, Truncate: p.truncate, KeepAlive: p.keepAlive}
	if p.numCtx != nil {
		w.Options = &options{NumCtx: p.numCtx}
	}
	if req.User != "" {
		llm.Warn(ctx, "ollama: user dropped: Ollama has no end-user field")
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	defer cancel()
	resp, err := p.post(ctx, p.embedURL, &w, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var er embedResponse
	if err := p.decodeBody(ctx, resp, &er); err != nil {
		return nil, err
	}
	if er.Error != nil {
		return nil, streamError(p.cfg.Name, *er.Error)
	}
	if len(er.Embeddings) != n {
		return nil, badAnswer(p.cfg.Name, fmt.Errorf("%d embeddings for %d inputs", len(er.Embeddings), n))
	}
	if i := slices.IndexFunc(er.Embeddings, func(v []float32) bool { return v == nil }); i >= 0 {
		return nil, badAnswer(p.cfg.Name, fmt.Errorf("embedding %d is null", i))
	}
	return &llm.EmbeddingResponse{Model: er.Model, Vectors: er.Embeddings, PromptTokens: er.PromptEvalCount}, nil
}

// post sends body as JSON and returns a 2xx response; any other answer is returned as a
// classified *llm.Error.
func (p *Provider) post(ctx context.Context, u string, body any, accept string) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {accept}}
	if p.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	resp, errBody, err := wireutil.PostJSON(ctx, p.client, p.cfg.Name, u, body, h)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	return nil, classifyStatus(p.cfg.Name, resp.StatusCode, resp.Header, errBody)
}

// decodeBody reads a whole JSON answer into v.
func (p *Provider) decodeBody(ctx context.Context, resp *http.Response, v any) error {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return wireutil.ClassifyTransport(ctx, p.cfg.Name, err, true)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badAnswer(p.cfg.Name, fmt.Errorf("decode answer: %w", err))
	}
	return nil
}

// decodeResponse converts a blocking answer.
func decodeResponse(w *chatResponse) *llm.ChatResponse {
	ch := llm.Choice{FinishReason: finishReason(w.DoneReason, len(w.Message.ToolCalls) > 0)}
	if w.Message.Content != "" || len(w.Message.ToolCalls) == 0 {
		ch.Content = llm.Ptr(w.Message.Content)
	}
	if w.Message.Thinking != "" {
		ch.ReasoningContent = llm.Ptr(w.Message.Thinking)
	}
	for _, tc := range w.Message.ToolCalls {
		ch.ToolCalls = append(ch.ToolCalls, llm.ToolCall{ID: callID(tc.ID), Name: tc.Function.Name, Arguments: compactArgs(tc.Function.Arguments)})
	}
	return &llm.ChatResponse{
		ID: newID("chatcmpl-"), Model: w.Model, Created: created(w.CreatedAt),
		Choices: []llm.Choice{ch}, Usage: usage(w),
	}
}

// finishReason maps done_reason: "length" is length; anything else ("stop", "load", "unload",
// none) is stop, or tool_calls when the answer called tools (Ollama still says "stop").
func finishReason(doneReason string, calledTools bool) string {
	switch {
	case doneReason == "length":
		return llm.FinishLength
	case calledTools:
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

func usage(w *chatResponse) *llm.Usage {
	return &llm.Usage{PromptTokens: w.PromptEvalCount, CompletionTokens: w.EvalCount, TotalTokens: w.PromptEvalCount + w.EvalCount}
}

func created(t time.Time) int64 {
	if t.IsZero() {
		return time.Now().Unix()
	}
	return t.Unix()
}

// callID returns id, or a new call id when Ollama sent none (older servers do not).
func callID(id string) string {
	if id != "" {
		return id
	}
	return newID("call_")
}

// newID returns prefix followed by 24 random alphanumerics.
func newID(prefix string) string {
	return prefix + rand.Text()[:24]
}
