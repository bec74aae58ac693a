package batch

import (
	"context"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

// embedReranker embeds and reranks, and lists one rerank model.
type embedReranker struct{ llm.Provider }

func (embedReranker) Embed(context.Context, *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	return &llm.EmbeddingResponse{}, nil
}

func (embedReranker) Rerank(_ context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	return &llm.RerankResponse{Model: req.Model, Results: []llm.RerankResult{{Index: 0, RelevanceScore: 1}}}, nil
}

func (embedReranker) RerankModels() []string { return []string{"r"} }

type embedOnly struct{ llm.Provider }

func (embedOnly) Embed(context.Context, *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	return &llm.EmbeddingResponse{}, nil
}

// TestWithRest: batching a provider keeps its rerank and its rerank model listing, and adds none
// to a provider without them.
func TestWithRest(t *testing.T) {
	bp, err := Wrap(embedReranker{}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := bp.WithRest()
	r, ok := p.(llm.Reranker)
	if !ok {
		t.Fatalf("%T does not rerank", p)
	}
	if resp, err := r.Rerank(t.Context(), &llm.RerankRequest{Model: "r"}); err != nil || len(resp.Results) != 1 {
		t.Fatalf("Rerank = %v, %v", resp, err)
	}
	if l, ok := p.(llm.RerankModelLister); !ok || len(l.RerankModels()) != 1 {
		t.Fatalf("%T does not list its rerank models", p)
	}
	if _, ok := p.(llm.Embedder); !ok {
		t.Fatalf("%T no longer embeds", p)
	}

	bp, err = Wrap(embedOnly{}, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bp.WithRest().(llm.Reranker); ok {
		t.Fatal("a provider without rerank reranks once batched")
	}
}
