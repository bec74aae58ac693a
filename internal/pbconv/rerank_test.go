package pbconv_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
)

func TestRerankRoundTrip(t *testing.T) {
	req := &llm.RerankRequest{Model: "m", Query: "q", TopN: 3, ReturnDocuments: true, MaxChunksPerDoc: 2, User: "u", Documents: []llm.RerankDocument{
		{Text: "a"}, {Fields: map[string]string{"title": "T", "body": "B"}, Keys: []string{"title", "body"}},
	}}
	got := pbconv.RerankRequestFromPB(pbconv.RerankRequestToPB(req), "m")
	if diff := cmp.Diff(req, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	zero := pbconv.RerankRequestToPB(&llm.RerankRequest{Query: "q"})
	if zero.TopN != nil || zero.MaxChunksPerDoc != nil {
		t.Errorf("zero top_n and max_chunks_per_doc sent as %v, %v; want absent", zero.TopN, zero.MaxChunksPerDoc)
	}
	// A repeated key keeps its first value.
	d := pbconv.RerankDocumentFromPB(&pb.RerankDocument{Document: &pb.RerankDocument_Structured{Structured: &pb.StructuredDocument{
		Fields: []*pb.DocumentField{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}}}})
	if d.AsText() != "k: 1" {
		t.Errorf("repeated key: %q", d.AsText())
	}
	resp, err := pbconv.RerankResponseFromPB(&pb.RerankResponse{Model: "m", Usage: &pb.RerankUsage{TotalTokens: 4, SearchUnits: 1},
		Results: []*pb.RerankResult{{Index: 1, RelevanceScore: 0.5, Document: &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: "b"}}}}}, 2)
	if err != nil || resp.Usage.TotalTokens != 4 || resp.SearchUnits != 1 || resp.Results[0].Document.Text != "b" {
		t.Errorf("response = %+v, %v", resp, err)
	}
	for _, idx := range []int32{-1, 2} {
		if _, err := pbconv.RerankResponseFromPB(&pb.RerankResponse{Results: []*pb.RerankResult{{Index: idx}}}, 2); err == nil {
			t.Errorf("index %d accepted for 2 documents", idx)
		}
	}
	if _, err := pbconv.RerankResponseFromPB(&pb.RerankResponse{Results: []*pb.RerankResult{{Index: 0}, {Index: 0}}}, 2); err == nil {
		t.Error("repeated index accepted")
	}
}
