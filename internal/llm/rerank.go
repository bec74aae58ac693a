package llm

import "context"

// Reranker is implemented by providers that order documents by their relevance to a query
// (Cohere, Jina, vLLM/TEI /rerank servers, in-house models): Dify's knowledge bases call it
// through POST /v1/rerank (docs/providers.md, "Rerank").
type Reranker interface {
	// Rerank scores req.Documents against req.Query. The results come in descending score
	// order, at most req.TopN of them when it is positive, each naming its document by index.
	Rerank(ctx context.Context, req *RerankRequest) (*RerankResponse, error)
}

// RerankModelLister is implemented by providers that know which of their models are rerank
// models, so that model listings can say so ("type": "rerank" in /v1/models).
type RerankModelLister interface {
	RerankModels() []string
}

// RerankRequest asks for documents ordered by relevance to a query.
type RerankRequest struct {
	Model     string
	Query     string
	Documents []RerankDocument
	// TopN keeps the best TopN results; 0 keeps them all.
	TopN int32
	// ReturnDocuments asks for each result's document to be returned with it.
	ReturnDocuments bool
	// MaxChunksPerDoc bounds how many chunks a long document is split into (providers that
	// chunk, e.g. Cohere's max_chunks_per_doc); 0 leaves the provider's default.
	MaxChunksPerDoc int32
	User            string
}

// RerankDocument is a document to rank: plain text, or a structured document of named text
// fields (e.g. title and body), which providers without structured documents receive as
// "key: value" lines in the order of Keys.
type RerankDocument struct {
	Text   string
	Fields map[string]string // structured; Text is empty then
	Keys   []string          // the order of Fields' keys, as the client sent them
}

// RerankResponse holds the results in descending score order.
type RerankResponse struct {
	Model   string
	Results []RerankResult
	// Usage is what the upstream reported: tokens (Jina, TEI, vLLM) or, for Cohere, search
	// units in SearchUnits.
	Usage       Usage
	SearchUnits int32
}

// RerankResult is one ranked document.
type RerankResult struct {
	Index          int32   // position in RerankRequest.Documents
	RelevanceScore float64 // higher is more relevant; the scale is the provider's
	Document       *RerankDocument
}

// AsText is d as one text: Text, or Fields as "key: value" lines in the order of Keys (then any
// fields Keys does not name, in no particular order).
func (d RerankDocument) AsText() string {
	if d.Fields == nil {
		return d.Text
	}
	var b []byte
	seen := make(map[string]bool, len(d.Keys))
	line := func(k string) {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, d.Fields[k]...)
	}
	for _, k := range d.Keys {
		if _, ok := d.Fields[k]; ok && !seen[k] {
			seen[k] = true
			line(k)
		}
	}
	for k := range d.Fields {
		if !seen[k] {
			line(k)
		}
	}
	return string(b)
}
