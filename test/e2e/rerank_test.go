package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/database"
)

// fakeJina is a real HTTP server speaking Jina's (and vLLM's) /v1/rerank wire format: it scores
// document i as 1/(1+i) reversed (the last document first), keeps top_n, and reports usage. It
// answers model "err-503" with a 503 once per request.
type fakeJina struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []upstreamRequest
}

func newFakeJina(t *testing.T) *fakeJina {
	f := &fakeJina{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		f.reqs = append(f.reqs, upstreamRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body})
		f.mu.Unlock()
		if r.URL.Path != "/v1/rerank" {
			writeErr(w, http.StatusNotFound, "invalid_request_error", "unknown path "+r.URL.Path)
			return
		}
		if body["model"] == "err-503" {
			writeErr(w, http.StatusServiceUnavailable, "server_error", "overloaded")
			return
		}
		docs, _ := body["documents"].([]any)
		n := len(docs)
		if k, ok := body["top_n"].(float64); ok && int(k) < n {
			n = int(k)
		}
		var results []string
		for pos := range n {
			results = append(results, fmt.Sprintf(`{"index":%d,"relevance_score":%g}`, len(docs)-1-pos, 1/float64(1+pos)))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"model":%q,"usage":{"total_tokens":%d},"results":[%s]}`, body["model"], 10*len(docs), strings.Join(results, ","))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeJina) last() upstreamRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func postJSON(t *testing.T, url, key, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: not JSON: %s", url, raw)
	}
	return resp, out
}

// indexes returns results[].index, checking that each result has a numeric relevance_score (what
// Dify's plugin and SDK read).
func indexes(t *testing.T, body map[string]any) []int {
	t.Helper()
	rs, _ := body["results"].([]any)
	out := make([]int, len(rs))
	for i, r := range rs {
		m := r.(map[string]any)
		if _, ok := m["relevance_score"].(float64); !ok {
			t.Errorf("result %d has no numeric relevance_score: %v", i, m)
		}
		out[i] = int(m["index"].(float64))
	}
	return out
}

// TestRerank drives POST /v1/rerank (and /rerank) as Dify's OpenAI-API-compatible plugin sends it,
// against the mock's deterministic scores and a Jina-compatible HTTP upstream (type openai with
// rerank_path), plus a fallback route, the generated gRPC client, the model listing, scopes and
// the audit log.
func TestRerank(t *testing.T) {
	jina := newFakeJina(t)
	dbc := database.Config{Driver: database.SQLite, DSN: filepath.Join(t.TempDir(), "audit.db")}
	const chatOnlyKey = "sk-e2e-chat-only-0123456789"
	g := startYAML(t, fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s}
auth:
  mode: api_key
  api_keys:
    - {name: e2e, key: %q, tenant: e2e}
    - {name: chat-only, key: %q, tenant: e2e, scopes: [chat:write]}
providers:
  - {name: mock, type: mock}
  - name: jina
    type: openai
    base_url: %q
    api_key: %q
    models: [jina-reranker-v2, err-503]
    options: {rerank_path: rerank, rerank_models: jina-reranker-v2}
routes:
  - name: gw-rerank
    targets: [{model: jina/err-503}, {model: mock/rerank}]
    retry: {max_retries: 1, initial_backoff: 1ms, max_backoff: 2ms}
audit:
  enabled: true
  sql: {driver: %s, dsn: %q}
`, clientKey, chatOnlyKey, jina.URL+"/v1", upstreamKey, dbc.Driver, dbc.DSN))
	rest := "http://" + g.HTTPAddr()
	dify := `{"model": %q, "query": "What is the capital of France?", "documents": ["Paris is the capital of France.", "Bananas are yellow.", "France's capital city is Paris."], "top_n": 2}`

	t.Run("mock, Dify plugin request", func(t *testing.T) {
		resp, body := postJSON(t, rest+"/v1/rerank", clientKey, fmt.Sprintf(dify, "mock/rerank"))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, body)
		}
		// Query words what/is/the/capital/of/france: doc 0 has 5 of 6, doc 2 has capital/france (the
		// apostrophe splits "France's"), doc 1 none.
		if got := indexes(t, body); fmt.Sprint(got) != "[0 2]" {
			t.Errorf("order = %v, want [0 2]: %v", got, body)
		}
		if body["model"] != "rerank" || body["usage"].(map[string]any)["total_tokens"].(float64) <= 0 || body["id"] == "" {
			t.Errorf("envelope: %v", body)
		}
		if resp.Header.Get("X-Switchyard-Route") != "mock/rerank" {
			t.Errorf("route header %q", resp.Header.Get("X-Switchyard-Route"))
		}
	})
	t.Run("Jina-compatible upstream, without /v1, documents returned", func(t *testing.T) {
		resp, body := postJSON(t, rest+"/rerank", clientKey,
			`{"model":"jina/jina-reranker-v2","query":"q","documents":["a",{"text":"b"},{"title":"T","body":"c"}],"return_documents":true}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, body)
		}
		up := jina.last()
		want := map[string]any{"model": "jina-reranker-v2", "query": "q", "documents": []any{"a", "b", "title: T\nbody: c"}}
		if up.Authorization != "Bearer "+upstreamKey || fmt.Sprint(up.Body) != fmt.Sprint(want) {
			t.Errorf("upstream got %q %v, want %v", up.Authorization, up.Body, want)
		}
		if got := indexes(t, body); fmt.Sprint(got) != "[2 1 0]" {
			t.Errorf("order = %v, want [2 1 0]", got)
		}
		doc := body["results"].([]any)[0].(map[string]any)["document"]
		if fmt.Sprint(doc) != "map[body:c title:T]" || body["usage"].(map[string]any)["total_tokens"] != 30.0 {
			t.Errorf("document %v, usage %v", doc, body["usage"])
		}
	})
	t.Run("route falls back to the mock after the upstream's 503s", func(t *testing.T) {
		resp, body := postJSON(t, rest+"/v1/rerank", clientKey, fmt.Sprintf(dify, "gw-rerank"))
		if resp.StatusCode != 200 || resp.Header.Get("X-Switchyard-Route") != "mock/rerank" || resp.Header.Get("X-Switchyard-Attempts") != "3" {
			t.Fatalf("status %d route %q attempts %q: %v", resp.StatusCode, resp.Header.Get("X-Switchyard-Route"), resp.Header.Get("X-Switchyard-Attempts"), body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			key, body string
			status    int
			param     string
		}{
			{clientKey, `{"model":"mock/echo","query":"q","documents":[]}`, 400, "documents"},
			{clientKey, `{"model":"mock/rerank","query":"q","documents":[1]}`, 400, "documents[0]"},
			{clientKey, `{"model":"jina/nope","query":"q","documents":["a"]}`, 404, "model"},
			{chatOnlyKey, fmt.Sprintf(dify, "mock/rerank"), 403, ""},
		} {
			resp, body := postJSON(t, rest+"/v1/rerank", c.key, c.body)
			e, _ := body["error"].(map[string]any)
			if resp.StatusCode != c.status || e == nil || (c.param != "" && e["param"] != c.param) {
				t.Errorf("%s: status %d body %v, want %d param %q", c.body, resp.StatusCode, body, c.status, c.param)
			}
		}
	})
	t.Run("models list rerank models with their type", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, rest+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+clientKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Data []map[string]any `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&list)
		types := map[string]any{}
		for _, m := range list.Data {
			types[m["id"].(string)] = m["type"]
		}
		if types["mock/rerank"] != "rerank" || types["jina/jina-reranker-v2"] != "rerank" || types["gw-rerank"] != nil || types["mock/echo"] != nil {
			t.Errorf("types = %v", types)
		}
	})
	t.Run("gRPC client", func(t *testing.T) {
		gw := &gateway{Instance: g}
		c := pb.NewRerankServiceClient(gw.grpcConn(t))
		resp, err := c.Rerank(authed(t.Context()), &pb.RerankRequest{Model: "mock/rerank", Query: "capital of France", ReturnDocuments: true,
			Documents: []*pb.RerankDocument{
				{Document: &pb.RerankDocument_Text{Text: "bananas"}},
				{Document: &pb.RerankDocument_Structured{Structured: &pb.StructuredDocument{Fields: []*pb.DocumentField{{Key: "title", Value: "France"}, {Key: "body", Value: "capital"}}}}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetResults()) != 2 || resp.GetResults()[0].GetIndex() != 1 || resp.GetResults()[0].GetDocument().GetStructured() == nil {
			t.Errorf("results = %v", resp.GetResults())
		}
		_, err = c.Rerank(authed(t.Context()), &pb.RerankRequest{Model: "mock/rerank", Query: "q"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("no documents: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(ctx, dbc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := audit.NewStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := st.Query(ctx, audit.Filter{Tenant: "e2e", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range recs {
		if r.Model == "jina/jina-reranker-v2" && r.Class == audit.ClassOK {
			found = true
			if r.Target != "jina/jina-reranker-v2" || r.Attempts != 1 || r.InputTokens != 30 || r.UsageEstimated || !strings.HasSuffix(r.RPC, "RerankService/Rerank") {
				t.Errorf("rerank record: %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no audit record for the Jina rerank call among %d records", len(recs))
	}
}
