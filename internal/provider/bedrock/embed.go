package bedrock

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// embedFamily chooses the embedding request shape by model id prefix. An inference profile id
// ("us.cohere.embed-v4:0", "global.…") has a geography before the model id, which is skipped.
func embedFamily(model string) string {
	m := model
	if !strings.HasPrefix(m, "amazon.") && !strings.HasPrefix(m, "cohere.") {
		if _, rest, ok := strings.Cut(m, "."); ok {
			m = rest
		}
	}
	switch {
	case strings.HasPrefix(m, "amazon.titan-embed"):
		return "titan"
	case strings.HasPrefix(m, "cohere.embed"):
		return "cohere"
	}
	return ""
}

type titanRequest struct {
	InputText  string `json:"inputText"`
	Dimensions *int32 `json:"dimensions,omitempty"`
	Normalize  *bool  `json:"normalize,omitempty"`
}

type titanResponse struct {
	Embedding           []float32 `json:"embedding"`
	InputTextTokenCount int32     `json:"inputTextTokenCount"`
}

type cohereRequest struct {
	Texts     []string `json:"texts"`
	InputType string   `json:"input_type"`
}

type cohereResponse struct {
	Embeddings [][]float32 `json:"embeddings"`
}

// Embed calls InvokeModel: once per input for Titan text embeddings ({"inputText",
// "dimensions", "normalize": true} → {"embedding", "inputTextTokenCount"}), once for all inputs
// for Cohere ({"texts", "input_type"} → {"embeddings"}, the prompt tokens from the
// X-Amzn-Bedrock-Input-Token-Count header, estimated and marked so when it is missing). Other
// models are refused.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if len(req.Tokens) > 0 {
		return nil, invalid("input", "bedrock: token arrays are not supported as embedding input; send text")
	}
	family := embedFamily(req.Model)
	if family == "" {
		e := invalid("model", "bedrock: %q is not a Titan (amazon.titan-embed-*) or Cohere (cohere.embed-*) embedding model", req.Model)
		e.Provider = p.cfg.Name
		return nil, e
	}
	if req.User != "" {
		llm.Warn(ctx, "bedrock: user is not supported and was dropped")
	}
	ctx, cancel := wireutil.CallContext(ctx, p.cfg.Timeout)
	defer cancel()
	resp := &llm.EmbeddingResponse{Model: req.Model, Vectors: make([][]float32, 0, len(req.Texts))}
	if family == "cohere" {
		if req.Dimensions != nil {
			return nil, invalid("dimensions", "bedrock: dimensions is not supported by Cohere embedding models on Bedrock")
		}
		var out cohereResponse
		n, err := p.invoke(ctx, req.Model, cohereRequest{Texts: req.Texts, InputType: p.cohereInputType}, &out)
		if err != nil {
			return nil, err
		}
		resp.PromptTokens = n
		if n < 0 { // no count header: the gateway's estimate, marked as such
			resp.PromptTokens, resp.UsageEstimated = 0, true
			for _, s := range req.Texts {
				resp.PromptTokens += int32(llm.TokensForChars(len(s)))
			}
		}
		if len(out.Embeddings) != len(req.Texts) {
			return nil, p.badAnswer(fmt.Errorf("%d embeddings for %d inputs", len(out.Embeddings), len(req.Texts)))
		}
		resp.Vectors = out.Embeddings
		return resp, nil
	}
	for _, text := range req.Texts {
		var out titanResponse
		if _, err := p.invoke(ctx, req.Model, titanRequest{InputText: text, Dimensions: req.Dimensions, Normalize: aws.Bool(true)}, &out); err != nil {
			return nil, err
		}
		if len(out.Embedding) == 0 {
			return nil, p.badAnswer(fmt.Errorf("no embedding in the answer"))
		}
		resp.Vectors = append(resp.Vectors, out.Embedding)
		resp.PromptTokens += out.InputTextTokenCount
	}
	return resp, nil
}

// invoke calls InvokeModel with body as JSON and decodes the answer into out. It returns the
// answer's X-Amzn-Bedrock-Input-Token-Count header, or -1 when there is none.
func (p *Provider) invoke(ctx context.Context, model string, body, out any) (int32, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, llm.Wrap(llm.KindInternal, fmt.Errorf("bedrock: encode request: %w", err), "")
	}
	res, err := p.client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(model), Body: b,
		ContentType: aws.String("application/json"), Accept: aws.String("application/json")})
	if err != nil {
		return 0, classify(ctx, p.cfg.Name, err, false)
	}
	if err := json.Unmarshal(res.Body, out); err != nil {
		return 0, p.badAnswer(fmt.Errorf("decode answer: %w", err))
	}
	n := int32(-1)
	if raw, ok := awsmiddleware.GetRawResponse(res.ResultMetadata).(*smithyhttp.Response); ok {
		if v, err := strconv.ParseInt(raw.Header.Get("X-Amzn-Bedrock-Input-Token-Count"), 10, 32); err == nil && v >= 0 {
			n = int32(v)
		}
	}
	return n, nil
}

func (p *Provider) badAnswer(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("bedrock: %w", err), "the upstream provider sent an invalid answer")
	e.Provider = p.cfg.Name
	return e
}
