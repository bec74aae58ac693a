package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/router"
)

// Embedding encodings.
const (
	EncodingFloat  = "float"
	EncodingBase64 = "base64"
)

type embeddingService struct {
	pb.UnimplementedEmbeddingServiceServer
	routes func() *router.Router
}

// CreateEmbedding plans the route for the model and embeds the input through it (retries,
// fallbacks). Targets whose provider does not implement llm.Embedder are skipped; with none the
// answer is KindInvalidArgument. With encoding_format "base64" each vector is
// returned as little-endian float32 bytes in embedding_bytes; otherwise ("" or "float") as floats.
func (s *embeddingService) CreateEmbedding(ctx context.Context, in *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
	base64 := false
	switch in.GetEncodingFormat() {
	case "", EncodingFloat:
	case EncodingBase64:
		base64 = true
	default:
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "encoding_format",
			Message: fmt.Sprintf("Invalid value for 'encoding_format': %q (want 'float' or 'base64').", in.GetEncodingFormat())}
	}
	req := pbconv.EmbeddingRequestFromPB(in, "")
	plan, err := s.routes().Plan(in.GetModel(), router.EstimateEmbedding(req))
	if err != nil {
		return nil, err
	}
	resp, res, err := plan.Embed(ctx, req)
	call := routed(ctx, res, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	if err != nil {
		return nil, err
	}
	target := res.Target
	if n := len(req.Texts) + len(req.Tokens); len(resp.Vectors) != n {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: target.ProviderName, Message: "upstream returned a wrong number of embeddings",
			Err: fmt.Errorf("embed %s: got %d vectors for %d inputs", target.Name(), len(resp.Vectors), n)}
	}
	call.SetUsage(llm.Usage{PromptTokens: resp.PromptTokens, TotalTokens: resp.PromptTokens, Estimated: resp.UsageEstimated})
	out := &pb.CreateEmbeddingResponse{
		Object: "list",
		Model:  resp.Model,
		Data:   make([]*pb.Embedding, len(resp.Vectors)),
		Usage:  &pb.EmbeddingUsage{PromptTokens: resp.PromptTokens, TotalTokens: resp.PromptTokens},
	}
	if out.Model == "" {
		out.Model = target.Model
	}
	call.SetResponseModel(out.Model)
	for i, v := range resp.Vectors {
		e := &pb.Embedding{Object: "embedding", Index: int32(i)}
		if base64 {
			e.EmbeddingBytes = pbconv.Float32Bytes(v)
		} else {
			e.Embedding = v
		}
		out.Data[i] = e
	}
	return out, nil
}
