// Package cohere adapts Cohere's v2 API to llm.Provider, llm.Embedder and llm.Reranker:
// POST /v2/chat (blocking and SSE streaming), /v2/embed and /v2/rerank, authenticated with
// "Authorization: Bearer <key>".
//
// Conversion choices, beyond the parameter rules in ParamRules:
//   - Cohere keeps the system, user, assistant and tool roles, so messages map one to one
//     (developer messages become system messages). Tool call arguments are JSON text on both
//     sides. Images are image_url content parts of user messages.
//   - Thinking content (reasoning_effort set) and the tool plan (the text Cohere writes before
//     tool calls) become reasoning_content; an assistant message's reasoning goes back as
//     tool_plan when the message made tool calls.
//   - finish_reason COMPLETE and STOP_SEQUENCE are stop, MAX_TOKENS length, TOOL_CALL
//     tool_calls; ERROR and TIMEOUT are upstream errors, as is a message-end event that carries
//     an error.
//   - Usage is usage.tokens (what the model saw), else usage.billed_units.
//   - Citations (answers grounded in tool results) are not carried: the canonical answer has no
//     annotations. The answer's text is unchanged.
//   - Errors are {"message"} bodies classified by status; see classify (402, 498 and 499 are
//     Cohere's own).
//   - Embeddings: texts only, float vectors, at most 96 texts per upstream call (larger inputs
//     are sent as several calls, in order); usage is meta.billed_units.input_tokens.
//   - Rerank: structured documents are sent as "key: value" text (llm.RerankDocument.AsText);
//     the v2 API has no max_chunks_per_doc (dropped with a warning) and returns no documents (the
//     adapter attaches the request's documents when asked).
//
// Options (provider.Config.Options):
//   - input_type: input_type sent with every embedding request: search_document (default),
//     search_query, classification or clustering. OpenAI-shaped clients (Dify) send no input
//     type, and Cohere requires one for v3+ models; search_document suits knowledge-base
//     indexing, the bulk of embedding traffic. Configure a second provider with search_query
//     for query embeddings if retrieval quality needs it.
//   - rerank_max_tokens_per_doc: max_tokens_per_doc sent with every rerank request (a positive
//     integer); unset by default (Cohere's default, 4096).
package cohere

import (
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

// DefaultBaseURL is used when the configuration names none; paths (/v2/chat ...) are appended.
const DefaultBaseURL = "https://api.cohere.com"

// maxEmbedTexts is /v2/embed's limit on texts per call.
const maxEmbedTexts = 96

// inputTypes are the accepted values of the input_type option (EmbedInputType without image).
var inputTypes = []string{"search_document", "search_query", "classification", "clustering"}

// Provider talks to one Cohere endpoint. It implements llm.Provider, llm.Embedder,
// llm.Reranker and llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	cfg             provider.Config
	client          *http.Client
	base            string
	inputType       string
	maxTokensPerDoc int32
}

var (
	_ llm.Provider          = (*Provider)(nil)
	_ llm.Embedder          = (*Provider)(nil)
	_ llm.Reranker          = (*Provider)(nil)
	_ llm.RerankModelLister = (*Provider)(nil)
	_ llm.ModelLister       = (*Provider)(nil)
)

// New returns a provider for the endpoint cfg describes: cfg.BaseURL (DefaultBaseURL when
// empty), without the /v2 path; cfg.APIKey sent as a bearer token when set; cfg.Headers added
// to every request (they override the defaults); cfg.Options as the package documentation
// lists. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewWithClient(cfg, provider.NewHTTPClient(cfg))
}

// NewWithClient is New with a caller-supplied HTTP client (tests, custom transports).
func NewWithClient(cfg provider.Config, client *http.Client) (*Provider, error) {
	base, err := wireutil.BaseURL("cohere.New", cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	if err := provider.ValidateTemperatureMapping(cfg.TemperatureMapping); err != nil {
		return nil, fmt.Errorf("cohere.New: %w", err)
	}
	p := &Provider{cfg: cfg, client: client, base: base, inputType: "search_document"}
	for k, v := range cfg.Options {
		switch k {
		case "input_type":
			if !slices.Contains(inputTypes, v) {
				return nil, fmt.Errorf("cohere.New: option input_type %q is not one of %v", v, inputTypes)
			}
			p.inputType = v
		case "rerank_max_tokens_per_doc":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("cohere.New: option rerank_max_tokens_per_doc %q is not a positive integer", v)
			}
			p.maxTokensPerDoc = int32(n)
		default:
			return nil, fmt.Errorf("cohere.New: unknown option %q (known: input_type, rerank_max_tokens_per_doc)", k)
		}
	}
	return p, nil
}

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// RerankModels names the configured models that are Cohere rerank models (their names start
// with "rerank", as every Cohere rerank model's does), so /v1/models gives them "type": "rerank".
func (p *Provider) RerankModels() []string {
	var out []string
	for _, m := range p.cfg.Models {
		if strings.HasPrefix(m, "rerank") {
			out = append(out, m)
		}
	}
	return out
}

// Chat sends a blocking /v2/chat call.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	w, err := encodeChat(ctx, req, p.cfg.TemperatureMapping, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	resp, err := p.post(ctx, "/v2/chat", w, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cr chatResponse
	if err := p.decodeBody(ctx, resp, &cr); err != nil {
		return nil, err
	}
	if cr.Message == nil {
		return nil, p.badAnswer(fmt.Errorf("answer without a message"))
	}
	if cr.FinishReason == "ERROR" || cr.FinishReason == "TIMEOUT" {
		return nil, streamError(p.cfg.Name, cr.FinishReason, "")
	}
	return decodeResponse(&cr, req.Model, time.Now().Unix()), nil
}

// ChatStream starts a streamed /v2/chat call ("stream": true).
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	w, err := encodeChat(ctx, req, p.cfg.TemperatureMapping, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	resp, err := p.post(ctx, "/v2/chat", w, true)
	if err != nil {
		cancel()
		return nil, err
	}
	return newStream(ctx, cancel, p.cfg.Name, req.Model, time.Now().Unix(), resp), nil
}

// Embed returns one float vector per input, in input order, from /v2/embed calls of at most 96
// texts each. Token inputs are rejected: Cohere embeds text.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if len(req.Tokens) > 0 {
		return nil, invalid("input", "Cohere embeds text only, not token arrays")
	}
	if len(req.Texts) == 0 {
		return nil, invalid("input", "embeddings need at least one input")
	}
	if req.User != "" {
		llm.Warn(ctx, "cohere: user is not supported and was dropped")
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	out := &llm.EmbeddingResponse{Model: req.Model, Vectors: make([][]float32, 0, len(req.Texts))}
	for texts := range slices.Chunk(req.Texts, maxEmbedTexts) {
		er, err := p.embed(ctx, &embedRequest{Model: req.Model, Texts: texts, InputType: p.inputType,
			EmbeddingTypes: []string{"float"}, OutputDimension: req.Dimensions})
		if err != nil {
			return nil, err
		}
		if len(er.Embeddings.Float) != len(texts) {
			return nil, p.badAnswer(fmt.Errorf("%d embeddings for %d texts", len(er.Embeddings.Float), len(texts)))
		}
		for i, v := range er.Embeddings.Float {
			if v == nil {
				return nil, p.badAnswer(fmt.Errorf("embedding %d without values", i))
			}
		}
		out.Vectors = append(out.Vectors, er.Embeddings.Float...)
		if er.Meta != nil && er.Meta.BilledUnits != nil {
			out.PromptTokens += int32(er.Meta.BilledUnits.InputTokens)
		}
	}
	return out, nil
}

func (p *Provider) embed(ctx context.Context, w *embedRequest) (*embedResponse, error) {
	resp, err := p.post(ctx, "/v2/embed", w, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var er embedResponse
	if err := p.decodeBody(ctx, resp, &er); err != nil {
		return nil, err
	}
	return &er, nil
}

// Rerank scores the documents with /v2/rerank. Results come in descending score order, at most
// TopN of them; SearchUnits is meta.billed_units.search_units.
func (p *Provider) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	if len(req.Documents) == 0 {
		return nil, invalid("documents", "rerank needs at least one document")
	}
	if req.MaxChunksPerDoc > 0 {
		llm.Warn(ctx, "cohere: max_chunks_per_doc is not supported by the v2 rerank API and was dropped")
	}
	if req.User != "" {
		llm.Warn(ctx, "cohere: user is not supported and was dropped")
	}
	w := &rerankRequest{Model: req.Model, Query: req.Query, Documents: make([]string, len(req.Documents)), MaxTokensPerDoc: p.maxTokensPerDoc}
	for i, d := range req.Documents {
		w.Documents[i] = d.AsText()
	}
	if req.TopN > 0 {
		w.TopN = min(req.TopN, int32(len(req.Documents)))
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	resp, err := p.post(ctx, "/v2/rerank", w, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rr rerankResponse
	if err := p.decodeBody(ctx, resp, &rr); err != nil {
		return nil, err
	}
	out := &llm.RerankResponse{Model: req.Model, Results: make([]llm.RerankResult, 0, len(rr.Results))}
	for _, r := range rr.Results {
		if r.Index == nil || r.RelevanceScore == nil {
			return nil, p.badAnswer(fmt.Errorf("rerank result without index or relevance_score"))
		}
		if *r.Index < 0 || int(*r.Index) >= len(req.Documents) {
			return nil, p.badAnswer(fmt.Errorf("rerank result index %d out of range for %d documents", *r.Index, len(req.Documents)))
		}
		res := llm.RerankResult{Index: *r.Index, RelevanceScore: *r.RelevanceScore}
		if req.ReturnDocuments {
			res.Document = &req.Documents[*r.Index]
		}
		out.Results = append(out.Results, res)
	}
	slices.SortStableFunc(out.Results, func(a, b llm.RerankResult) int {
		switch {
		case a.RelevanceScore > b.RelevanceScore:
			return -1
		case a.RelevanceScore < b.RelevanceScore:
			return 1
		}
		return 0
	})
	if req.TopN > 0 && len(out.Results) > int(req.TopN) {
		out.Results = out.Results[:req.TopN]
	}
	if rr.Meta != nil && rr.Meta.BilledUnits != nil {
		out.SearchUnits = int32(rr.Meta.BilledUnits.SearchUnits)
	}
	return out, nil
}

func (p *Provider) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return wireutil.CallContext(ctx, p.cfg.Timeout)
}

// post sends body as JSON to base+path and returns a 2xx response; any other answer is
// returned as a classified *llm.Error.
func (p *Provider) post(ctx context.Context, path string, body any, stream bool) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if stream {
		h["Accept"] = []string{"text/event-stream"}
	}
	if p.cfg.APIKey != "" {
		h["Authorization"] = []string{"Bearer " + p.cfg.APIKey}
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	resp, errBody, err := wireutil.PostJSON(ctx, p.client, p.cfg.Name, p.base+path, body, h)
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
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("cohere: %w", err), "the upstream provider sent an invalid answer")
	e.Provider = p.cfg.Name
	return e
}
