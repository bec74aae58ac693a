// Package azure adapts Azure OpenAI to llm.Provider. It is a thin layer over the openai
// adapter: only the URLs, the credential header and the model → deployment mapping differ.
//
// Configuration: cfg.BaseURL is the resource endpoint, e.g. https://my-resource.openai.azure.com
// (a trailing /openai is accepted); cfg.APIKey is sent in the api-key header. Microsoft Entra ID
// bearer tokens are not built in: they expire, and refreshing them needs a credential flow; an
// operator can still pass a token through cfg.Headers ("Authorization: Bearer …"). cfg.Options keys:
//
//   - api_version: the data-plane API version, default DefaultAPIVersion. Dated versions call
//     {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…; "v1" selects the
//     v1 API, {endpoint}/openai/v1/chat/completions, with the deployment name as the body's model.
//   - deployments: the model → deployment map, "gpt-4o=prod-gpt4o,text-embedding-3-small=emb";
//     a model not in the map is used as the deployment name.
//   - stream_usage: openai.OptionStreamUsage; the default is true for v1 and api-versions from
//     2024-09-01 on, false before (those refuse stream_options).
//
// Content-filter refusals (400 with code content_filter, innererror ResponsibleAIPolicyViolation)
// are business-class errors with code content_filter; a filtered completion ends with
// finish_reason content_filter; stream chunks with empty choices (prompt_filter_results) are
// skipped.
package azure

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
)

// DefaultAPIVersion is the latest generally available dated data-plane version.
const DefaultAPIVersion = "2024-10-21"

// Provider is an Azure OpenAI resource. It implements llm.Provider, llm.Embedder and
// llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	*openai.Provider
	deployments map[string]string
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
)

// New returns a provider for the Azure OpenAI resource cfg describes (see the package doc). It
// matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	endpoint := strings.TrimSuffix(strings.TrimRight(cfg.BaseURL, "/"), "/openai")
	u, err := url.Parse(endpoint)
	if cfg.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("azure.New: base_url %q is not the resource's http(s) endpoint", cfg.BaseURL)
	}
	version, deployments := DefaultAPIVersion, map[string]string{}
	for k, v := range cfg.Options {
		switch k {
		case "api_version":
			if v == "" {
				return nil, fmt.Errorf("azure.New: options.api_version is empty")
			}
			version = v
		case "deployments":
			if deployments, err = parseDeployments(v); err != nil {
				return nil, fmt.Errorf("azure.New: options.deployments: %w", err)
			}
		case openai.OptionStreamUsage:
			// read by the openai adapter
		default:
			return nil, fmt.Errorf("azure.New: unknown option %q (known: api_version, deployments, %s)", k, openai.OptionStreamUsage)
		}
	}
	ep := openai.Endpoint{AuthHeader: "api-key", AuthValue: cfg.APIKey, NoStreamUsage: !streamUsageKnown(version)}
	if version == "v1" {
		base := endpoint + "/openai/v1/"
		ep.URL = func(op openai.Op, _ string) string { return base + string(op) }
	} else {
		query := "?api-version=" + url.QueryEscape(version)
		ep.URL = func(op openai.Op, deployment string) string {
			return endpoint + "/openai/deployments/" + url.PathEscape(deployment) + "/" + string(op) + query
		}
	}
	inner, err := openai.NewWithEndpoint(cfg, provider.NewHTTPClient(cfg), ep)
	if err != nil {
		return nil, fmt.Errorf("azure.New: %w", err)
	}
	return &Provider{Provider: inner, deployments: deployments}, nil
}

// firstStreamUsageVersion is the first dated api-version that accepts stream_options.
const firstStreamUsageVersion = "2024-09-01"

// streamUsageKnown says whether api-version accepts stream_options: v1, and dated versions
// ("2024-10-21", "2025-01-01-preview") from firstStreamUsageVersion on. Older versions refuse
// the unknown parameter, so their streams go without it (and their usage is estimated).
func streamUsageKnown(version string) bool {
	if version == "v1" {
		return true
	}
	return len(version) >= len(firstStreamUsageVersion) && version[:len(firstStreamUsageVersion)] >= firstStreamUsageVersion
}

// parseDeployments reads "model=deployment,model=deployment".
func parseDeployments(s string) (map[string]string, error) {
	m := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		model, dep, ok := strings.Cut(pair, "=")
		model, dep = strings.TrimSpace(model), strings.TrimSpace(dep)
		if !ok || model == "" || dep == "" {
			return nil, fmt.Errorf("%q is not model=deployment", pair)
		}
		m[model] = dep
	}
	return m, nil
}

func (p *Provider) deployment(model string) string {
	if d, ok := p.deployments[model]; ok {
		return d
	}
	return model
}

// Chat sends a blocking chat completion to the model's deployment.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	r := *req
	r.Model = p.deployment(req.Model)
	return p.Provider.Chat(ctx, &r)
}

// ChatStream starts a streamed chat completion on the model's deployment.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	r := *req
	r.Model = p.deployment(req.Model)
	return p.Provider.ChatStream(ctx, &r)
}

// Embed returns one vector per input, in input order, from the model's deployment.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	r := *req
	r.Model = p.deployment(req.Model)
	return p.Provider.Embed(ctx, &r)
}
