// Package gemini adapts Google's Gemini API (the Generative Language API, v1beta REST) to
// llm.Provider and llm.Embedder: models/{model}:generateContent, :streamGenerateContent?alt=sse,
// :embedContent and :batchEmbedContents, authenticated with the x-goog-api-key header.
//
// Conversion choices, beyond the parameter rules in ParamRules:
//   - System and developer messages become systemInstruction; assistant turns are "model"
//     turns; tool results are functionResponse parts of a "user" turn, named after the call they
//     answer (Gemini matches responses to calls by name), with the call's id. Consecutive turns
//     of one role are merged. A tool result that is a JSON object is sent as is, any other as
//     {"result": "<text>"}.
//   - Function parameters go in parametersJsonSchema, which takes the client's JSON Schema as is
//     (additionalProperties, $ref, ...), rather than parameters, which takes only the
//     OpenAPI-subset Schema message and would need a lossy conversion. Structured output uses
//     responseJsonSchema for the same reason.
//   - Function calls without an id from Gemini get one derived from the response id, the
//     candidate, the call's position and the call itself, so that one answer always yields the
//     same ids.
//   - Thought signatures (thoughtSignature on functionCall parts, required back on the next
//     turn by Gemini 3 models) ride in the tool call id: "<id>__ts_<signature in unpadded
//     base64url>". OpenAI-shaped clients echo tool call ids verbatim and drop fields they do not
//     know, so this is what survives a round trip through Dify or an OpenAI SDK; the adapter
//     splits the id again when the call comes back in the history. Signatures on text parts
//     (recommended, not required) are not kept.
//   - Thought parts (thought: true) become reasoning_content; they appear when reasoning_effort
//     is set (includeThoughts).
//   - The finish reason STOP becomes tool_calls when the candidate made function calls; see
//     finishReason for the rest. A prompt refused with promptFeedback.blockReason is a business
//     error with code content_filter.
//   - Errors are google.rpc.Status bodies: API_KEY_INVALID (a 400) is an authentication error,
//     RESOURCE_EXHAUSTED a rate limit (a per-day quota is quota exceeded, not retried), RetryInfo
//     gives RetryAfter; see classify.
//   - Embeddings carry no token usage (PromptTokens is 0) and take text only.
//
// Options (provider.Config.Options):
//   - embedding_task_type: taskType sent with every embedding request (RETRIEVAL_QUERY,
//     RETRIEVAL_DOCUMENT, SEMANTIC_SIMILARITY, CLASSIFICATION, CLUSTERING, QUESTION_ANSWERING,
//     FACT_VERIFICATION, CODE_RETRIEVAL_QUERY); unset by default.
package gemini

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// DefaultBaseURL is used when the configuration names none.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// taskTypes are the accepted values of the embedding_task_type option (TaskType in the protos).
var taskTypes = []string{
	"RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION",
	"CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
}

// Provider talks to one Gemini API endpoint. It implements llm.Provider, llm.Embedder and
// llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	cfg      provider.Config
	client   *http.Client
	base     string
	taskType string
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
)

// New returns a provider for the endpoint cfg describes: cfg.BaseURL (DefaultBaseURL when
// empty) up to and including the API version; cfg.APIKey sent as x-goog-api-key when set;
// cfg.Headers added to every request (they override the defaults); cfg.Options as the package
// documentation lists. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewWithClient(cfg, provider.NewHTTPClient(cfg))
}

// NewWithClient is New with a caller-supplied HTTP client (tests, custom transports).
func NewWithClient(cfg provider.Config, client *http.Client) (*Provider, error) {
	base, err := wireutil.BaseURL("gemini.New", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, client: client, base: base}
	for k, v := range cfg.Options {
		switch k {
		case "embedding_task_type":
			if !slices.Contains(taskTypes, v) {
				return nil, fmt.Errorf("gemini.New: option embedding_task_type %q is not one of %v", v, taskTypes)
			}
			p.taskType = v
		default:
			return nil, fmt.Errorf("gemini.New: unknown option %q (known: embedding_task_type)", k)
		}
	}
	return p, nil
}

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat sends a blocking generateContent call.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	w, target, err := p.prepareChat(ctx, req, ":generateContent")
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	resp, err := p.post(ctx, target, w, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var gr generateResponse
	if err := p.decodeBody(ctx, resp, &gr); err != nil {
		return nil, err
	}
	if gr.Error != nil {
		return nil, classify(p.cfg.Name, resp.StatusCode, gr.Error)
	}
	if e := blocked(p.cfg.Name, &gr); e != nil {
		return nil, e
	}
	if len(gr.Candidates) == 0 {
		return nil, p.badAnswer(fmt.Errorf("answer without candidates"))
	}
	return decodeResponse(&gr, req.Model, time.Now().Unix()), nil
}

// ChatStream starts a streamGenerateContent call in SSE mode (alt=sse; without it Gemini
// streams one JSON array).
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	w, target, err := p.prepareChat(ctx, req, ":streamGenerateContent?alt=sse")
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	resp, err := p.post(ctx, target, w, true)
	if err != nil {
		cancel()
		return nil, err
	}
	return newStream(ctx, cancel, p.cfg.Name, req.Model, time.Now().Unix(), resp), nil
}

func (p *Provider) prepareChat(ctx context.Context, req *llm.ChatRequest, method string) (*generateRequest, string, error) {
	mp, err := modelPath(req.Model)
	if err != nil {
		return nil, "", err
	}
	w, err := encodeChat(ctx, req)
	if err != nil {
		return nil, "", err
	}
	return w, p.base + "/" + mp + method, nil
}

// Embed returns one vector per input, in input order: embedContent for one text,
// batchEmbedContents (whose answer is in request order) for several. Token inputs are rejected:
// Gemini embeds text only.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if len(req.Tokens) > 0 {
		return nil, invalid("input", "Gemini embeds text only, not token arrays")
	}
	n := len(req.Texts)
	if n == 0 {
		return nil, invalid("input", "embeddings need at least one input")
	}
	mp, err := modelPath(req.Model)
	if err != nil {
		return nil, err
	}
	if req.User != "" {
		llm.Warn(ctx, "gemini: user is not supported and was dropped")
	}
	item := func(text string) embedRequest {
		return embedRequest{Content: content{Parts: []part{{Text: llm.Ptr(text)}}}, TaskType: p.taskType, OutputDimensionality: req.Dimensions}
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	out := &llm.EmbeddingResponse{Model: req.Model}
	if n == 1 {
		resp, err := p.post(ctx, p.base+"/"+mp+":embedContent", item(req.Texts[0]), false)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var er embedResponse
		if err := p.decodeBody(ctx, resp, &er); err != nil {
			return nil, err
		}
		if er.Embedding == nil || er.Embedding.Values == nil {
			return nil, p.badAnswer(fmt.Errorf("embedContent answer without an embedding"))
		}
		out.Vectors = [][]float32{er.Embedding.Values}
		return out, nil
	}
	br := batchEmbedRequest{Requests: make([]embedRequest, n)}
	for i, t := range req.Texts {
		br.Requests[i] = item(t)
		br.Requests[i].Model = mp
	}
	resp, err := p.post(ctx, p.base+"/"+mp+":batchEmbedContents", &br, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var er batchEmbedResponse
	if err := p.decodeBody(ctx, resp, &er); err != nil {
		return nil, err
	}
	if len(er.Embeddings) != n {
		return nil, p.badAnswer(fmt.Errorf("%d embeddings for %d inputs", len(er.Embeddings), n))
	}
	out.Vectors = make([][]float32, n)
	for i := range er.Embeddings {
		if er.Embeddings[i].Values == nil {
			return nil, p.badAnswer(fmt.Errorf("embedding %d without values", i))
		}
		out.Vectors[i] = er.Embeddings[i].Values
	}
	return out, nil
}

func (p *Provider) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return wireutil.CallContext(ctx, p.cfg.Timeout)
}

// post sends body as JSON to target and returns a 2xx response; any other answer is returned
// as a classified *llm.Error.
func (p *Provider) post(ctx context.Context, target string, body any, stream bool) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if stream {
		h["Accept"] = []string{"text/event-stream"}
	}
	if p.cfg.APIKey != "" {
		h["X-Goog-Api-Key"] = []string{p.cfg.APIKey}
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	resp, errBody, err := wireutil.PostJSON(ctx, p.client, p.cfg.Name, target, body, h)
	if err != nil {
		return nil, err
	}
	if errBody != nil || resp.StatusCode/100 != 2 {
		return nil, classifyStatus(p.cfg.Name, resp.StatusCode, resp.Header, errBody)
	}
	return resp, nil
}

// decodeBody reads a whole JSON answer into v.
func (p *Provider) decodeBody(ctx context.Context, resp *http.Response, v any) error {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return wireutil.ClassifyTransport(ctx, p.cfg.Name, err, true)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return p.badAnswer(fmt.Errorf("decode answer: %w", err))
	}
	return nil
}

func (p *Provider) badAnswer(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("gemini: %w", err), "the upstream provider sent an invalid answer")
	e.Provider = p.cfg.Name
	return e
}
