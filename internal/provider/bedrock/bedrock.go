// Package bedrock adapts AWS Bedrock's runtime API to llm.Provider: chat through Converse and
// ConverseStream (one request shape for every chat model on Bedrock: Anthropic, Llama, Mistral,
// Titan, Nova...), embeddings through InvokeModel for the Titan and Cohere embedding models.
//
// It uses the AWS SDK for Go v2 (service/bedrockruntime), which brings SigV4 signing and the
// binary event-stream decoding. The SDK's own retries are off (the router retries, with its
// breaker and deadlines); its HTTP client is the provider's pooled, traced client
// (provider.NewHTTPClient), so the pool settings and the upstream spans apply.
//
// Configuration: cfg.BaseURL, when set, overrides the regional endpoint
// (https://bedrock-runtime.{region}.amazonaws.com), for VPC endpoints and tests. cfg.APIKey is
// refused: Bedrock signs requests with AWS credentials; so are cfg.Headers (the SDK builds and
// signs the requests). Credentials come from the SDK's default chain (environment, shared config and
// credentials files, web identity, ECS and EC2 instance roles) unless static keys are given.
// cfg.Options keys:
//
//   - region: the AWS region (required unless the chain names one: AWS_REGION, shared config).
//   - access_key_id, secret_access_key, session_token: static credentials (usually "${ENV}");
//     access_key_id and secret_access_key go together; none by default (the chain).
//   - guardrail_identifier, guardrail_version: a guardrail applied to every chat request
//     (guardrailConfig, trace off); together; none by default.
//   - additional_model_request_fields: a JSON object passed as additionalModelRequestFields
//     (model-specific fields such as {"top_k": 200}); none by default.
//   - cohere_input_type: input_type sent to Cohere embedding models, "search_document" by default.
//
// Conversions are listed by ParamRules; the package's docs in docs/providers.md ("AWS Bedrock")
// say what maps how and what is dropped.
package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brdoc "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// Option keys of provider.Config.Options.
const (
	optRegion           = "region"
	optAccessKeyID      = "access_key_id"
	optSecretAccessKey  = "secret_access_key"
	optSessionToken     = "session_token"
	optGuardrailID      = "guardrail_identifier"
	optGuardrailVersion = "guardrail_version"
	optAdditionalFields = "additional_model_request_fields"
	optCohereInputType  = "cohere_input_type"
)

var knownOptions = []string{optRegion, optAccessKeyID, optSecretAccessKey, optSessionToken,
	optGuardrailID, optGuardrailVersion, optAdditionalFields, optCohereInputType}

// DefaultCohereInputType is the input_type sent to Cohere embedding models.
const DefaultCohereInputType = "search_document"

// Provider talks to the Bedrock runtime of one region. It implements llm.Provider, llm.Embedder
// and llm.ModelLister, and is safe for concurrent use.
type Provider struct {
	cfg              provider.Config
	client           *bedrockruntime.Client
	guardrailID      string
	guardrailVersion string
	additional       any // decoded additional_model_request_fields, nil when unset
	cohereInputType  string
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
)

// New returns a provider for the region and credentials cfg describes (see the package comment).
// It fails on unknown or inconsistent options, an api_key, a base_url that is not http(s), and
// when no region is configured. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return newProvider(cfg, provider.NewHTTPClient(cfg))
}

func newProvider(cfg provider.Config, httpClient aws.HTTPClient) (*Provider, error) {
	if err := provider.ValidateTemperatureMapping(cfg.TemperatureMapping); err != nil {
		return nil, fmt.Errorf("bedrock.New: %w", err)
	}
	if cfg.APIKey != "" {
		return nil, errors.New("bedrock.New: api_key is not used: Bedrock signs with AWS credentials (options access_key_id/secret_access_key, or the default credential chain)")
	}
	if len(cfg.Headers) > 0 {
		return nil, errors.New("bedrock.New: headers are not supported (the AWS SDK builds and signs the requests)")
	}
	for k := range cfg.Options {
		if !slices.Contains(knownOptions, k) {
			return nil, fmt.Errorf("bedrock.New: unknown option %q (known: %s)", k, strings.Join(knownOptions, ", "))
		}
	}
	o := cfg.Options
	p := &Provider{cfg: cfg, guardrailID: o[optGuardrailID], guardrailVersion: o[optGuardrailVersion], cohereInputType: DefaultCohereInputType}
	if (p.guardrailID == "") != (p.guardrailVersion == "") {
		return nil, fmt.Errorf("bedrock.New: options %s and %s go together", optGuardrailID, optGuardrailVersion)
	}
	if v, ok := o[optCohereInputType]; ok {
		switch v {
		case "search_document", "search_query", "classification", "clustering":
			p.cohereInputType = v
		default:
			return nil, fmt.Errorf("bedrock.New: option %s = %q (known: search_document, search_query, classification, clustering)", optCohereInputType, v)
		}
	}
	if v, ok := o[optAdditionalFields]; ok {
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("bedrock.New: option %s is not a JSON object", optAdditionalFields)
		}
		p.additional = smithyValue(obj)
	}
	var base string
	if cfg.BaseURL != "" {
		b, err := wireutil.BaseURL("bedrock.New", cfg.BaseURL, "")
		if err != nil {
			return nil, err
		}
		base = b
	}

	// The HTTP client is set on the Bedrock client below, not here: the credential providers
	// (STS, SSO, IMDS) keep the SDK's own client, which honours AWS_CA_BUNDLE.
	loadOpts := []func(*awsconfig.LoadOptions) error{}
	if r := o[optRegion]; r != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(r))
	}
	ak, sk := o[optAccessKeyID], o[optSecretAccessKey]
	switch {
	case ak != "" && sk != "":
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, o[optSessionToken])))
	case ak != "" || sk != "" || o[optSessionToken] != "":
		return nil, fmt.Errorf("bedrock.New: options %s and %s go together (and %s needs both)", optAccessKeyID, optSecretAccessKey, optSessionToken)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("bedrock.New: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("bedrock.New: no region: set option %s (or AWS_REGION)", optRegion)
	}
	p.client = bedrockruntime.NewFromConfig(awsCfg, func(bo *bedrockruntime.Options) {
		bo.HTTPClient = httpClient
		// The router retries (with its breaker, deadlines and the first-chunk rule): one attempt here.
		bo.Retryer = aws.NopRetryer{}
		if base != "" {
			bo.BaseEndpoint = aws.String(base)
		}
	})
	return p, nil
}

// Models returns the configured model ids (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat sends a Converse request.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	in, err := p.encode(ctx, req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	defer cancel()
	out, err := p.client.Converse(ctx, &bedrockruntime.ConverseInput{
		ModelId: in.modelID, System: in.system, Messages: in.messages, InferenceConfig: in.inference,
		ToolConfig: in.tools, GuardrailConfig: p.guardrail(), AdditionalModelRequestFields: p.additionalFields(),
	})
	if err != nil {
		return nil, classify(ctx, p.cfg.Name, err, false)
	}
	return decodeResponse(req.Model, out)
}

// ChatStream sends a ConverseStream request; see stream for how events become chunks. The
// stream ends with a usage chunk when Bedrock reports usage (its metadata event).
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	in, err := p.encode(ctx, req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	var gc *types.GuardrailStreamConfiguration
	if p.guardrailID != "" {
		gc = &types.GuardrailStreamConfiguration{GuardrailIdentifier: aws.String(p.guardrailID),
			GuardrailVersion: aws.String(p.guardrailVersion), Trace: types.GuardrailTraceDisabled}
	}
	out, err := p.client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId: in.modelID, System: in.system, Messages: in.messages, InferenceConfig: in.inference,
		ToolConfig: in.tools, GuardrailConfig: gc, AdditionalModelRequestFields: p.additionalFields(),
	})
	if err != nil {
		e := classify(ctx, p.cfg.Name, err, false)
		cancel()
		return nil, e
	}
	return newStream(ctx, cancel, p.cfg.Name, req.Model, out), nil
}

func (p *Provider) guardrail() *types.GuardrailConfiguration {
	if p.guardrailID == "" {
		return nil
	}
	return &types.GuardrailConfiguration{GuardrailIdentifier: aws.String(p.guardrailID),
		GuardrailVersion: aws.String(p.guardrailVersion), Trace: types.GuardrailTraceDisabled}
}

func (p *Provider) additionalFields() brdoc.Interface {
	if p.additional == nil {
		return nil
	}
	return brdoc.NewLazyDocument(p.additional)
}
