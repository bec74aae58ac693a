// Package openai adapts any OpenAI-compatible Chat Completions and Embeddings upstream (OpenAI,
// Azure's v1 API, vLLM, DeepSeek, Qwen's compatible mode, Ollama's /v1, ...) to llm.Provider, and
// with options.rerank_path the Jina/vLLM/TEI rerank endpoint such servers offer to llm.Reranker.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// DefaultBaseURL is used when the configuration names none.
const DefaultBaseURL = "https://api.openai.com/v1"

// Provider talks to one OpenAI-compatible upstream. It implements llm.Provider, llm.Embedder and
// llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	cfg      provider.Config
	client   *http.Client
	url      func(op Op, model string) string
	authName string // header carrying the credential, "Authorization" by default
	authVal  string // its value; empty when no key is configured
	// streamUsage: streamed requests ask for the final usage chunk (stream_options.include_usage).
	streamUsage bool
}

// Op names an operation of the OpenAI API, as the last part of its URL path.
type Op string

// The operations the adapter calls.
const (
	OpChat       Op = "chat/completions"
	OpEmbeddings Op = "embeddings"
)

// Endpoint adapts the adapter to OpenAI-shaped APIs that address and authenticate requests
// differently (Azure OpenAI's deployments and api-key header). The zero value is OpenAI's own:
// POST {base_url}/{op} with "Authorization: Bearer <api_key>".
type Endpoint struct {
	// URL returns the full URL of op for model (the request's model name). Nil: cfg.BaseURL + "/" + op.
	URL func(op Op, model string) string
	// AuthHeader, when set, carries AuthValue instead of the Authorization bearer header; an
	// empty AuthValue sends no credential.
	AuthHeader string
	AuthValue  string
	// NoStreamUsage, when set, sends streamed requests without stream_options, for APIs that
	// reject it (Azure's api-versions before 2024-09-01). The option stream_usage overrides it.
	NoStreamUsage bool
}

// OptionStreamUsage is the options key ("true" or "false", default true) that says whether
// streamed requests ask the upstream for its final usage chunk with
// stream_options.include_usage. Turn it off only for a server that rejects stream_options:
// without the chunk the gateway estimates the stream's usage (docs/limits.md).
const OptionStreamUsage = "stream_usage"

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
)

// New returns a provider for the upstream cfg describes: cfg.BaseURL (DefaultBaseURL when
// empty) up to and including the API version, e.g. http://localhost:8000/v1; cfg.APIKey sent as
// a bearer token when set; cfg.Headers added to every request (they override the defaults, so
// Azure's "api-key" header works with an empty APIKey); cfg.Options may hold OptionStreamUsage
// and the rerank options (rerank.go), and nothing else. With options.rerank_path the provider
// also implements llm.Reranker. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	for k := range cfg.Options {
		if !slices.Contains(knownOptions, k) {
			return nil, fmt.Errorf("openai.New: unknown option %q (known: %s)", k, strings.Join(knownOptions, ", "))
		}
	}
	p, err := NewWithClient(cfg, provider.NewHTTPClient(cfg))
	if err != nil {
		return nil, err
	}
	return newReranker(p, cfg)
}

// NewWithClient is New with a caller-supplied HTTP client (tests, custom transports).
func NewWithClient(cfg provider.Config, client *http.Client) (*Provider, error) {
	return NewWithEndpoint(cfg, client, Endpoint{})
}

// NewWithEndpoint is NewWithClient for an OpenAI-shaped API addressed as ep says. cfg.BaseURL
// must still be an http(s) URL (DefaultBaseURL when empty); ep.URL may ignore it. Of
// cfg.Options it reads OptionStreamUsage only; the caller checks the others.
func NewWithEndpoint(cfg provider.Config, client *http.Client, ep Endpoint) (*Provider, error) {
	base, err := wireutil.BaseURL("openai.New", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, client: client, url: ep.URL, authName: "Authorization", streamUsage: !ep.NoStreamUsage}
	if v, ok := cfg.Options[OptionStreamUsage]; ok {
		if p.streamUsage, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("openai.New: options.%s: %q is not true or false", OptionStreamUsage, v)
		}
	}
	if p.url == nil {
		chatURL, embedURL := base+"/"+string(OpChat), base+"/"+string(OpEmbeddings)
		p.url = func(op Op, _ string) string {
			if op == OpEmbeddings {
				return embedURL
			}
			return chatURL
		}
	}
	switch {
	case ep.AuthHeader != "":
		p.authName, p.authVal = http.CanonicalHeaderKey(ep.AuthHeader), ep.AuthValue
	case cfg.APIKey != "":
		p.authVal = "Bearer " + cfg.APIKey
	}
	return p, nil
}

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat sends a blocking chat completion.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	defer cancel()
	resp, err := p.post(ctx, p.url(OpChat, req.Model), encodeChat(req, false), false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var w chatResponse
	if err := p.decodeBody(ctx, resp, func(b []byte) error { return decodeResponseJSON(b, &w) }); err != nil {
		return nil, err
	}
	if hasError(w.Error) {
		return nil, classifyStreamError(p.cfg.Name, resp.StatusCode, w.Error)
	}
	return decodeResponse(&w), nil
}

// ChatStream starts a streamed chat completion. The upstream is asked for a final usage chunk
// (stream_options.include_usage) whatever the client asked, unless OptionStreamUsage turned
// that off; whether the client sees the chunk is the caller's decision.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	w := encodeChat(req, true)
	if !p.streamUsage {
		w.StreamOptions = nil
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	resp, err := p.post(ctx, p.url(OpChat, req.Model), w, true)
	if err != nil {
		cancel()
		return nil, err
	}
	return newStream(ctx, cancel, p.cfg.Name, resp), nil
}

// Embed returns one vector per input, in input order. It always asks the upstream for float
// vectors (encoding_format "float"), which every compatible server supports.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	n := len(req.Texts)
	w := embeddingRequest{Model: req.Model, EncodingFormat: "float", Dimensions: req.Dimensions, User: req.User}
	if n > 0 {
		w.Input = req.Texts
	} else {
		n = len(req.Tokens)
		w.Input = req.Tokens
	}
	if n == 0 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "embeddings need at least one input")
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	defer cancel()
	resp, err := p.post(ctx, p.url(OpEmbeddings, req.Model), &w, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var er embeddingResponse
	if err := p.decodeBody(ctx, resp, func(b []byte) error { return json.Unmarshal(b, &er) }); err != nil {
		return nil, err
	}
	if hasError(er.Error) {
		return nil, classifyStreamError(p.cfg.Name, resp.StatusCode, er.Error)
	}
	out := &llm.EmbeddingResponse{Model: er.Model, Vectors: make([][]float32, n), PromptTokens: er.Usage.PromptTokens}
	for _, d := range er.Data {
		if d.Embedding == nil {
			return nil, p.badAnswer(fmt.Errorf("embedding %d without a vector", d.Index))
		}
		if d.Index < 0 || d.Index >= n || out.Vectors[d.Index] != nil {
			return nil, p.badAnswer(fmt.Errorf("embedding index %d out of range or repeated (%d inputs)", d.Index, n))
		}
		out.Vectors[d.Index] = d.Embedding
	}
	if len(er.Data) != n {
		return nil, p.badAnswer(fmt.Errorf("%d embeddings for %d inputs", len(er.Data), n))
	}
	return out, nil
}

// post sends body as JSON and returns a 2xx response; any other answer is returned as a
// classified *llm.Error.
func (p *Provider) post(ctx context.Context, url string, body any, stream bool) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if stream {
		h["Accept"] = []string{"text/event-stream"}
	}
	if p.authVal != "" {
		h[p.authName] = []string{p.authVal}
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	var (
		resp    *http.Response
		errBody []byte
		err     error
	)
	if w, ok := body.(*chatRequest); ok {
		if b, ok := appendChatRequest(make([]byte, 0, 1024), w); ok {
			resp, errBody, err = wireutil.PostBody(ctx, p.client, p.cfg.Name, url, b, h)
		} else { // encoding/json decides (and words any error)
			resp, errBody, err = wireutil.PostJSON(ctx, p.client, p.cfg.Name, url, body, h)
		}
	} else {
		resp, errBody, err = wireutil.PostJSON(ctx, p.client, p.cfg.Name, url, body, h)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	return nil, classifyStatus(p.cfg.Name, resp.StatusCode, resp.Header, errBody)
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeBody reads a whole JSON answer through a pooled buffer and decodes it with decode (which
// must copy what it keeps, as json.Unmarshal does, so the buffer can be reused).
func (p *Provider) decodeBody(ctx context.Context, resp *http.Response, decode func([]byte) error) error {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bodyPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return wireutil.ClassifyTransport(ctx, p.cfg.Name, err, true)
	}
	if err := decode(buf.Bytes()); err != nil {
		return p.badAnswer(fmt.Errorf("decode answer: %w", err))
	}
	return nil
}

func (p *Provider) badAnswer(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("openai: %w", err), "the upstream provider sent an invalid answer")
	e.Provider = p.cfg.Name
	return e
}

func hasError(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}
