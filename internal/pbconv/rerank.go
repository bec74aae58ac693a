package pbconv

import (
	"fmt"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
)

// RerankRequestFromPB converts a proto rerank request, with model as the upstream model name.
func RerankRequestFromPB(in *pb.RerankRequest, model string) *llm.RerankRequest {
	req := &llm.RerankRequest{
		Model:           model,
		Query:           in.GetQuery(),
		Documents:       make([]llm.RerankDocument, len(in.GetDocuments())),
		TopN:            in.GetTopN(),
		ReturnDocuments: in.GetReturnDocuments(),
		MaxChunksPerDoc: in.GetMaxChunksPerDoc(),
		User:            in.GetUser(),
	}
	for i, d := range in.GetDocuments() {
		req.Documents[i] = RerankDocumentFromPB(d)
	}
	return req
}

// RerankDocumentFromPB converts a proto document: text, or structured fields in their order (a
// repeated key keeps its first value).
func RerankDocumentFromPB(d *pb.RerankDocument) llm.RerankDocument {
	s := d.GetStructured()
	if s == nil {
		return llm.RerankDocument{Text: d.GetText()}
	}
	out := llm.RerankDocument{Fields: make(map[string]string, len(s.GetFields())), Keys: make([]string, 0, len(s.GetFields()))}
	for _, f := range s.GetFields() {
		if _, dup := out.Fields[f.GetKey()]; dup {
			continue
		}
		out.Fields[f.GetKey()] = f.GetValue()
		out.Keys = append(out.Keys, f.GetKey())
	}
	return out
}

// RerankDocumentToPB converts a canonical document; structured fields follow Keys, then any
// fields Keys does not name.
func RerankDocumentToPB(d *llm.RerankDocument) *pb.RerankDocument {
	if d.Fields == nil {
		return &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: d.Text}}
	}
	s := &pb.StructuredDocument{Fields: make([]*pb.DocumentField, 0, len(d.Fields))}
	seen := make(map[string]bool, len(d.Keys))
	for _, k := range d.Keys {
		if v, ok := d.Fields[k]; ok && !seen[k] {
			seen[k] = true
			s.Fields = append(s.Fields, &pb.DocumentField{Key: k, Value: v})
		}
	}
	for k, v := range d.Fields {
		if !seen[k] {
			s.Fields = append(s.Fields, &pb.DocumentField{Key: k, Value: v})
		}
	}
	return &pb.RerankDocument{Document: &pb.RerankDocument_Structured{Structured: s}}
}

// RerankRequestToPB converts a canonical rerank request (for an upstream RerankService).
func RerankRequestToPB(req *llm.RerankRequest) *pb.RerankRequest {
	out := &pb.RerankRequest{Model: req.Model, Query: req.Query, ReturnDocuments: req.ReturnDocuments, User: req.User,
		Documents: make([]*pb.RerankDocument, len(req.Documents))}
	if req.TopN > 0 {
		out.TopN = &req.TopN
	}
	if req.MaxChunksPerDoc > 0 {
		out.MaxChunksPerDoc = &req.MaxChunksPerDoc
	}
	for i := range req.Documents {
		out.Documents[i] = RerankDocumentToPB(&req.Documents[i])
	}
	return out
}

// RerankResponseFromPB converts a rerank answer for n documents. It fails when a result's index
// is out of range or repeated.
func RerankResponseFromPB(r *pb.RerankResponse, n int) (*llm.RerankResponse, error) {
	out := &llm.RerankResponse{Model: r.GetModel(), Results: make([]llm.RerankResult, len(r.GetResults())),
		SearchUnits: r.GetUsage().GetSearchUnits()}
	out.Usage.PromptTokens = r.GetUsage().GetTotalTokens()
	out.Usage.TotalTokens = out.Usage.PromptTokens
	seen := make([]bool, n)
	for i, res := range r.GetResults() {
		j := int(res.GetIndex())
		if j < 0 || j >= n || seen[j] {
			return nil, fmt.Errorf("rerank result index %d out of range or repeated (%d documents)", j, n)
		}
		seen[j] = true
		out.Results[i] = llm.RerankResult{Index: res.GetIndex(), RelevanceScore: res.GetRelevanceScore()}
		if d := res.GetDocument(); d != nil {
			doc := RerankDocumentFromPB(d)
			out.Results[i].Document = &doc
		}
	}
	return out, nil
}
