// Package anthropic adapts Anthropic's Messages API (POST {base_url}/v1/messages) to
// llm.Provider.
//
// Configuration: cfg.BaseURL is the API root without the version, as in Anthropic's SDKs
// (DefaultBaseURL when empty; a trailing "/v1" is tolerated and not doubled). cfg.APIKey is sent
// as x-api-key; cfg.Headers are added to every request and override the defaults (for
// anthropic-beta, say). cfg.Options keys:
//
//   - default_max_tokens: max_tokens sent when a request has none (the API requires it);
//     a positive integer, 4096 by default.
//   - anthropic_version: the anthropic-version header, "2023-06-01" by default.
//
// Conversions (ParamRules lists each canonical parameter): system and developer messages go, in
// order, to the top-level system prompt; tool messages become tool_result blocks at the start of
// a user turn; temperature is clamped into 0–1 (or scaled from 0–2 with the provider's
// temperature_mapping: linear); top_p is dropped when temperature is set; reasoning_effort becomes a thinking budget; thinking comes back as ReasoningContent with its
// signatures in ReasoningSignature, which clients send back unchanged on the assistant message
// to continue a tool loop with thinking. Anthropic serves no embeddings: Provider is not an
// llm.Embedder.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// Defaults for an empty base_url and for absent options.
const (
	DefaultBaseURL         = "https://api.anthropic.com"
	DefaultVersion         = "2023-06-01" // anthropic-version header
	DefaultMaxTokens int32 = 4096         // max_tokens when the request has none
)

// Option keys of provider.Config.Options.
const (
	optDefaultMaxTokens = "default_max_tokens"
	optVersion          = "anthropic_version"
)

// maxErrorBody bounds how much of an upstream error answer is read.
const maxErrorBody = 64 << 10

// Provider talks to one Anthropic Messages API endpoint. It implements llm.Provider and
// llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	cfg       provider.Config
	client    *http.Client
	url       string // {base}/v1/messages
	version   string
	maxTokens int32
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
)

// New returns a provider for the endpoint cfg describes (see the package comment). It fails on
// a base_url that is not http(s) and on unknown or invalid options. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewWithClient(cfg, provider.NewHTTPClient(cfg))
}

// NewWithClient is New with a caller-supplied HTTP client (tests, custom transports).
func NewWithClient(cfg provider.Config, client *http.Client) (*Provider, error) {
	base, err := wireutil.BaseURL("anthropic.New", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	base = strings.TrimSuffix(base, "/v1")
	if err := provider.ValidateTemperatureMapping(cfg.TemperatureMapping); err != nil {
		return nil, fmt.Errorf("anthropic.New: %w", err)
	}
	p := &Provider{cfg: cfg, client: client, url: base + "/v1/messages", version: DefaultVersion, maxTokens: DefaultMaxTokens}
	for k, v := range cfg.Options {
		switch k {
		case optDefaultMaxTokens:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("anthropic.New: option %s = %q is not a positive integer", k, v)
			}
			p.maxTokens = int32(n)
		case optVersion:
			if v == "" {
				return nil, fmt.Errorf("anthropic.New: option %s is empty", k)
			}
			p.version = v
		default:
			return nil, fmt.Errorf("anthropic.New: unknown option %q (known: %s, %s)", k, optDefaultMaxTokens, optVersion)
		}
	}
	return p, nil
}

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat sends a blocking request. Parameters Anthropic cannot take are dropped with a warning
// (llm.Warn) or refused with KindInvalidArgument, as ParamRules says.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	w, err := encodeRequest(ctx, req, p.maxTokens, p.cfg.TemperatureMapping, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	resp, err := p.post(ctx, w, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, wireutil.ClassifyTransport(ctx, p.cfg.Name, err, true)
	}
	var mr messageResponse
	if err := json.Unmarshal(body, &mr); err != nil {
		return nil, p.badAnswer(fmt.Errorf("decode answer: %w", err))
	}
	if mr.Type == "error" {
		return nil, classifyEvent(p.cfg.Name, resp.StatusCode, mr.Error)
	}
	return decodeResponse(&mr, time.Now().Unix()), nil
}

// ChatStream starts a streamed answer (see stream for how events become chunks). The stream
// always ends with a usage chunk.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	w, err := encodeRequest(ctx, req, p.maxTokens, p.cfg.TemperatureMapping, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	resp, err := p.post(ctx, w, true)
	if err != nil {
		cancel()
		return nil, err
	}
	return newStream(ctx, cancel, p.cfg.Name, resp, time.Now().Unix()), nil
}

// callContext applies cfg.Timeout when ctx has no deadline of its own.
func (p *Provider) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.cfg.Timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, p.cfg.Timeout)
		}
	}
	return context.WithCancel(ctx)
}

// post sends body and returns a 2xx response; any other answer is read, closed and returned as
// a classified *llm.Error.
func (p *Provider) post(ctx context.Context, body *messagesRequest, stream bool) (*http.Response, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, llm.Wrap(llm.KindInvalidArgument, fmt.Errorf("anthropic: encode request: %w", err), "the request could not be encoded")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, &buf)
	if err != nil {
		return nil, llm.Wrap(llm.KindInternal, fmt.Errorf("anthropic: build request: %w", err), "")
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Anthropic-Version"] = []string{p.version}
	if stream {
		h["Accept"] = []string{"text/event-stream"}
	} else {
		h["Accept"] = []string{"application/json"}
	}
	if p.cfg.APIKey != "" {
		h["X-Api-Key"] = []string{p.cfg.APIKey}
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, wireutil.ClassifyTransport(ctx, p.cfg.Name, err, false)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if rerr != nil && ctx.Err() != nil {
		return nil, wireutil.ClassifyTransport(ctx, p.cfg.Name, rerr, true)
	}
	return nil, classifyStatus(p.cfg.Name, resp.StatusCode, resp.Header, b)
}

func (p *Provider) badAnswer(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("anthropic: %w", err), "the upstream provider sent an invalid answer")
	e.Provider = p.cfg.Name
	return e
}
