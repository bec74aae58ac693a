package openai_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
)

// rerankUpstream answers every request with answer and records the path, the Authorization
// header and the body of the last one.
func rerankUpstream(t *testing.T, status int, answer string) (*httptest.Server, func() (string, string, map[string]any)) {
	t.Helper()
	var path, auth string
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		path, auth, body = r.URL.Path, r.Header.Get("Authorization"), nil
		_ = json.Unmarshal(b, &body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() (string, string, map[string]any) { return path, auth, body }
}

func rerankReq() *llm.RerankRequest {
	return &llm.RerankRequest{Model: "bge-reranker", Query: "q", TopN: 1, ReturnDocuments: true, User: "u", MaxChunksPerDoc: 3, Documents: []llm.RerankDocument{
		{Text: "a"}, {Fields: map[string]string{"title": "T", "body": "B"}, Keys: []string{"title", "body"}},
	}}
}

func TestRerankJina(t *testing.T) {
	srv, last := rerankUpstream(t, 200, `{"id":"x","model":"bge-reranker-v2","usage":{"total_tokens":17},
		"results":[{"index":1,"document":{"text":"title: T\nbody: B"},"relevance_score":0.9}]}`)
	p, err := openai.New(provider.Config{Name: "jina", BaseURL: srv.URL + "/v1", APIKey: "k",
		Options: map[string]string{"rerank_path": "/rerank", "rerank_models": "bge-reranker, other"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.(llm.Reranker).Rerank(t.Context(), rerankReq())
	if err != nil {
		t.Fatal(err)
	}
	path, auth, body := last()
	want := map[string]any{"model": "bge-reranker", "query": "q", "documents": []any{"a", "title: T\nbody: B"}, "top_n": 1.0}
	if path != "/v1/rerank" || auth != "Bearer k" || !reflect.DeepEqual(body, want) {
		t.Errorf("sent %s %q %v; want /v1/rerank, Bearer k, %v", path, auth, body, want)
	}
	if resp.Model != "bge-reranker-v2" || len(resp.Results) != 1 || resp.Results[0] != (llm.RerankResult{Index: 1, RelevanceScore: 0.9}) || resp.Usage.TotalTokens != 17 {
		t.Errorf("answer = %+v", resp)
	}
	if got := p.(llm.RerankModelLister).RerankModels(); !reflect.DeepEqual(got, []string{"bge-reranker", "other"}) {
		t.Errorf("RerankModels = %v", got)
	}
}

func TestRerankTEI(t *testing.T) {
	srv, last := rerankUpstream(t, 200, `[{"index":1,"score":0.8},{"index":0,"score":0.1}]`)
	p, err := openai.New(provider.Config{Name: "tei", BaseURL: "http://unused.invalid/v1",
		Options: map[string]string{"rerank_path": srv.URL + "/rerank", "rerank_format": "tei"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.(llm.Reranker).Rerank(t.Context(), rerankReq())
	if err != nil {
		t.Fatal(err)
	}
	path, auth, body := last()
	want := map[string]any{"query": "q", "texts": []any{"a", "title: T\nbody: B"}}
	if path != "/rerank" || auth != "" || !reflect.DeepEqual(body, want) {
		t.Errorf("sent %s %q %v; want /rerank, no credential, %v", path, auth, body, want)
	}
	if len(resp.Results) != 2 || resp.Results[0] != (llm.RerankResult{Index: 1, RelevanceScore: 0.8}) || resp.Model != "bge-reranker" {
		t.Errorf("answer = %+v", resp)
	}
}

func TestRerankErrorsAndOptions(t *testing.T) {
	cases := []struct {
		status int
		answer string
		kind   llm.Kind
	}{
		{429, `{"error":{"message":"slow down","type":"rate_limit_error"}}`, llm.KindRateLimited},
		{503, `upstream down`, llm.KindUnavailable},
		{400, `{"error":{"message":"bad","type":"invalid_request_error"}}`, llm.KindInvalidArgument},
		{200, `{"results":[{"index":0}]}`, llm.KindUpstream},
		{200, `not json`, llm.KindUpstream},
	}
	for _, c := range cases {
		srv, _ := rerankUpstream(t, c.status, c.answer)
		p, err := openai.New(provider.Config{Name: "u", BaseURL: srv.URL, Options: map[string]string{"rerank_path": "rerank"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.(llm.Reranker).Rerank(t.Context(), rerankReq()); llm.KindOf(err) != c.kind {
			t.Errorf("%d %s: %v, want %v", c.status, c.answer, err, c.kind)
		}
	}
	p, err := openai.New(provider.Config{Name: "plain"})
	if _, ok := p.(llm.Reranker); ok || err != nil {
		t.Errorf("without rerank_path: reranker %v, err %v; want a plain provider", ok, err)
	}
	for _, opts := range []map[string]string{
		{"rerank_path": ""}, {"rerank_path": "rerank", "rerank_format": "cohere"}, {"rerank_format": "tei"},
		{"rerank_models": "x"}, {"rerank_path": "ftp://x/rerank"},
	} {
		if _, err := openai.New(provider.Config{Name: "oai", Options: opts}); err == nil {
			t.Errorf("New with options %v succeeded", opts)
		}
	}
}
