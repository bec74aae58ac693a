package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// Rerank options of the openai type (docs/providers.md, "Rerank"). OpenAI itself has no rerank
// API; the servers people run next to their OpenAI-compatible ones do (Jina, vLLM, TEI, Xinference,
// LocalAI), at a path of their own under the same base URL.
const (
	// OptionRerankPath turns rerank on: the path of the rerank endpoint, relative to base_url
	// ("rerank" → {base_url}/rerank), or a full http(s) URL. Unset: the provider does not rerank.
	OptionRerankPath = "rerank_path"
	// OptionRerankFormat is the wire shape of that endpoint: RerankFormatJina (the default) or
	// RerankFormatTEI.
	OptionRerankFormat = "rerank_format"
	// OptionRerankModels lists (comma-separated) the models that are rerank models, so that
	// /v1/models shows them with "type": "rerank". Optional.
	OptionRerankModels = "rerank_models"
)

// Rerank wire shapes.
const (
	// RerankFormatJina is Jina's /v1/rerank, which vLLM, Xinference and LocalAI also serve and
	// Cohere's v1 resembles: {"model","query","documents":["..."],"top_n"} answered by
	// {"results":[{"index","relevance_score"}],"usage":{"total_tokens"}}.
	RerankFormatJina = "jina"
	// RerankFormatTEI is Hugging Face text-embeddings-inference's native /rerank:
	// {"query","texts":["..."]} answered by [{"index","score"}] (no model, no top_n, no usage).
	RerankFormatTEI = "tei"
)

var knownOptions = []string{OptionStreamUsage, OptionRerankPath, OptionRerankFormat, OptionRerankModels}

// reranker is an openai provider with a rerank endpoint. New returns it instead of *Provider
// when options.rerank_path is set, so only such providers implement llm.Reranker (the router
// skips the others for rerank requests).
type reranker struct {
	*Provider
	url    string
	format string
	models []string
}

var (
	_ llm.Reranker          = (*reranker)(nil)
	_ llm.RerankModelLister = (*reranker)(nil)
)

// newReranker wraps p when cfg's options turn rerank on, and checks those options.
func newReranker(p *Provider, cfg provider.Config) (llm.Provider, error) {
	path, on := cfg.Options[OptionRerankPath]
	format, hasFormat := cfg.Options[OptionRerankFormat]
	models, hasModels := cfg.Options[OptionRerankModels]
	if !on {
		if hasFormat || hasModels {
			return nil, fmt.Errorf("openai.New: options.%s and options.%s need options.%s", OptionRerankFormat, OptionRerankModels, OptionRerankPath)
		}
		return p, nil
	}
	r := &reranker{Provider: p, format: RerankFormatJina}
	switch {
	case strings.TrimSpace(path) == "" || strings.TrimLeft(path, "/") == "":
		return nil, fmt.Errorf("openai.New: options.%s is empty", OptionRerankPath)
	case strings.Contains(path, "://"):
		u, err := wireutil.BaseURL("openai.New", path, "")
		if err != nil {
			return nil, fmt.Errorf("openai.New: options.%s %q is not an http(s) URL", OptionRerankPath, path)
		}
		r.url = u
	default:
		base, err := wireutil.BaseURL("openai.New", cfg.BaseURL, DefaultBaseURL)
		if err != nil {
			return nil, err
		}
		r.url = base + "/" + strings.TrimLeft(path, "/")
	}
	if hasFormat {
		if format != RerankFormatJina && format != RerankFormatTEI {
			return nil, fmt.Errorf("openai.New: options.%s: %q is not %s or %s", OptionRerankFormat, format, RerankFormatJina, RerankFormatTEI)
		}
		r.format = format
	}
	for m := range strings.SplitSeq(models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			r.models = append(r.models, m)
		}
	}
	return r, nil
}

// RerankModels returns options.rerank_models.
func (r *reranker) RerankModels() []string { return slices.Clone(r.models) }

// jinaRerankRequest is the Jina/vLLM request. Documents go as text (structured ones as
// "key: value" lines); the gateway returns documents from the request itself, so the upstream
// is not asked for them. user and max_chunks_per_doc are not sent: these servers have no such
// fields, and some refuse unknown ones.
type jinaRerankRequest struct {
	Model     string   `json:"model,omitempty"`
	Query     string   `json:"query"`
	Documents []string `json:"documents"`
	TopN      int32    `json:"top_n,omitempty"`
}

type jinaRerankResponse struct {
	Model   string `json:"model"`
	Results []struct {
		Index          *int32   `json:"index"`
		RelevanceScore *float64 `json:"relevance_score"`
	} `json:"results"`
	Usage struct {
		TotalTokens  int32 `json:"total_tokens"`
		PromptTokens int32 `json:"prompt_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

type teiRerankRequest struct {
	Query string   `json:"query"`
	Texts []string `json:"texts"`
}

type teiRerankResult struct {
	Index *int32   `json:"index"`
	Score *float64 `json:"score"`
}

// Rerank posts the query and documents to the rerank endpoint in the configured format.
func (r *reranker) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	texts := make([]string, len(req.Documents))
	for i := range req.Documents {
		texts[i] = req.Documents[i].AsText()
	}
	var body any = &jinaRerankRequest{Model: req.Model, Query: req.Query, Documents: texts, TopN: req.TopN}
	if r.format == RerankFormatTEI {
		body = &teiRerankRequest{Query: req.Query, Texts: texts}
	}
	ctx, cancel := wireutil.CallContext(ctx, r.cfg.Timeout)
	defer cancel()
	resp, err := r.post(ctx, r.url, body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &llm.RerankResponse{Model: req.Model}
	if r.format == RerankFormatTEI {
		var rs []teiRerankResult
		if err := r.decodeBody(ctx, resp, func(b []byte) error { return json.Unmarshal(b, &rs) }); err != nil {
			return nil, err
		}
		for _, x := range rs {
			if x.Index == nil || x.Score == nil {
				return nil, r.badAnswer(fmt.Errorf("rerank result without index or score"))
			}
			out.Results = append(out.Results, llm.RerankResult{Index: *x.Index, RelevanceScore: *x.Score})
		}
		return out, nil
	}
	var jr jinaRerankResponse
	if err := r.decodeBody(ctx, resp, func(b []byte) error { return json.Unmarshal(b, &jr) }); err != nil {
		return nil, err
	}
	if hasError(jr.Error) {
		return nil, classifyStreamError(r.cfg.Name, http.StatusOK, jr.Error)
	}
	if jr.Model != "" {
		out.Model = jr.Model
	}
	for _, x := range jr.Results {
		if x.Index == nil || x.RelevanceScore == nil {
			return nil, r.badAnswer(fmt.Errorf("rerank result without index or relevance_score"))
		}
		out.Results = append(out.Results, llm.RerankResult{Index: *x.Index, RelevanceScore: *x.RelevanceScore})
	}
	out.Usage.TotalTokens = max(jr.Usage.TotalTokens, jr.Usage.PromptTokens)
	out.Usage.PromptTokens = out.Usage.TotalTokens
	return out, nil
}
