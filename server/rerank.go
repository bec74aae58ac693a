package server

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/router"
)

type rerankService struct {
	pb.UnimplementedRerankServiceServer
	routes func() *router.Router
}

// Rerank plans the route for the model and ranks the documents through it (retries, fallbacks,
// breakers as for embeddings). Targets whose provider does not implement llm.Reranker are
// skipped; with none the answer is KindInvalidArgument. The results are checked (indexes in
// range and unique), put in descending score order and cut to top_n whatever the upstream did;
// documents are returned only when asked for, taken from the request. When the upstream reports
// no tokens, the usage recorded and returned is the router's estimate (about 4 characters a
// token over every query-document pair), marked as estimated in the call record.
func (s *rerankService) Rerank(ctx context.Context, in *pb.RerankRequest) (*pb.RerankResponse, error) {
	req := pbconv.RerankRequestFromPB(in, "")
	est := router.EstimateRerank(req)
	plan, err := s.routes().Plan(in.GetModel(), est)
	if err != nil {
		return nil, err
	}
	resp, res, err := plan.Rerank(ctx, req)
	call := routed(ctx, res, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	if err != nil {
		return nil, err
	}
	target := res.Target
	results, err := checkRerank(resp.Results, len(req.Documents), req.TopN)
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: target.ProviderName, Message: "upstream returned invalid rerank results",
			Err: fmt.Errorf("rerank %s: %w", target.Name(), err)}
	}
	u := resp.Usage
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if u.TotalTokens == 0 {
		n := int32(est.PromptTokens)
		u = llm.Usage{PromptTokens: n, TotalTokens: n, Estimated: true}
	}
	call.SetUsage(u)
	out := &pb.RerankResponse{
		Id:      newID("rerank-"),
		Model:   resp.Model,
		Results: make([]*pb.RerankResult, len(results)),
		Usage:   &pb.RerankUsage{TotalTokens: u.TotalTokens, SearchUnits: resp.SearchUnits},
	}
	if out.Model == "" {
		out.Model = target.Model
	}
	call.SetResponseModel(out.Model)
	for i, r := range results {
		o := &pb.RerankResult{Index: r.Index, RelevanceScore: r.RelevanceScore}
		if req.ReturnDocuments {
			o.Document = in.GetDocuments()[r.Index]
		}
		out.Results[i] = o
	}
	return out, nil
}

// checkRerank returns results in descending score order (stable, so equal scores keep the
// upstream's order), at most topN of them when topN > 0. It fails when an index is outside
// [0, n) or repeated.
func checkRerank(results []llm.RerankResult, n int, topN int32) ([]llm.RerankResult, error) {
	seen := make([]bool, n)
	for _, r := range results {
		if r.Index < 0 || int(r.Index) >= n || seen[r.Index] {
			return nil, fmt.Errorf("result index %d out of range or repeated (%d documents)", r.Index, n)
		}
		seen[r.Index] = true
	}
	out := slices.Clone(results)
	slices.SortStableFunc(out, func(a, b llm.RerankResult) int { return cmp.Compare(b.RelevanceScore, a.RelevanceScore) })
	if topN > 0 && int(topN) < len(out) {
		out = out[:topN]
	}
	return out, nil
}
