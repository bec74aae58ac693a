package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

func textDoc(s string) *pb.RerankDocument {
	return &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: s}}
}

func structDoc(kv ...string) *pb.RerankDocument {
	s := &pb.StructuredDocument{}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Fields = append(s.Fields, &pb.DocumentField{Key: kv[i], Value: kv[i+1]})
	}
	return &pb.RerankDocument{Document: &pb.RerankDocument_Structured{Structured: s}}
}

func ptr32(v int32) *int32 { return &v }

// TestRerankRequests checks what the gateway reads from the request shapes rerank clients send:
// Dify's OpenAI-API-compatible plugin (strings, top_n), Dify's SDK base class (return_documents,
// "top_n": null), Jina ({"text": ...} objects), Cohere v1 (structured documents, max_chunks_per_doc).
func TestRerankRequests(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name string
		path string
		body string
		want *pb.RerankRequest
	}{
		{"dify plugin", "/v1/rerank",
			`{"model": "gw-rerank", "query": "What is the capital of France?", "documents": ["Paris is the capital of France.", "Bananas are yellow."], "top_n": 2}`,
			&pb.RerankRequest{Model: "gw-rerank", Query: "What is the capital of France?", Documents: []*pb.RerankDocument{textDoc("Paris is the capital of France."), textDoc("Bananas are yellow.")}, TopN: ptr32(2)}},
		{"dify sdk, without /v1", "/rerank",
			`{"model":"m","query":"q","documents":["a"],"top_n":null,"return_documents":true,"user":"u-1"}`,
			&pb.RerankRequest{Model: "m", Query: "q", Documents: []*pb.RerankDocument{textDoc("a")}, ReturnDocuments: true, User: "u-1"}},
		{"jina objects, unknown fields ignored", "/v1/rerank",
			`{"model":"m","query":"q","documents":[{"text":"a"},"b"],"return_documents":false,"truncation":true}`,
			&pb.RerankRequest{Model: "m", Query: "q", Documents: []*pb.RerankDocument{textDoc("a"), textDoc("b")}}},
		{"cohere structured, order kept, non-strings as JSON", "/v1/rerank",
			`{"model":"m","query":"q","documents":[{"title":"T","text":"x\u00e9","year":2024}],"max_chunks_per_doc":3,"rank_fields":["title"]}`,
			&pb.RerankRequest{Model: "m", Query: "q", Documents: []*pb.RerankDocument{structDoc("title", "T", "text", "xé", "year", "2024")}, MaxChunksPerDoc: ptr32(3)}},
		{"proto JSON form", "/v1/rerank",
			`{"model":"m","query":"q","documents":[{"structured":{"fields":[{"key":"b","value":"2"},{"key":"a","value":"1"}]}}]}`,
			&pb.RerankRequest{Model: "m", Query: "q", Documents: []*pb.RerankDocument{structDoc("b", "2", "a", "1")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+tt.path, tt.body)
			wantStatus(t, resp, body, http.StatusOK)
			if diff := cmp.Diff(tt.want, h.rerank.lastRequest(), protocmp.Transform()); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRerankResponse checks the answer against what Dify's plugin and SDK parse
// (results[].index, results[].relevance_score, optional document) and Jina's/Cohere's shapes.
func TestRerankResponse(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := do(t, "POST", h.url+"/v1/rerank", `{"model":"mock/r","query":"q","documents":["a",{"title":"T","body":"B"}],"return_documents":true}`)
	wantStatus(t, resp, body, http.StatusOK)
	want := `{"id":"rerank-1","model":"mock/r","results":[` +
		`{"index":1,"relevance_score":1,"document":{"title":"T","body":"B"}},` +
		`{"index":0,"relevance_score":0.5,"document":{"text":"a"}}],"usage":{"total_tokens":12}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	_, body = do(t, "POST", h.url+"/v1/rerank", `{"model":"mock/cohere","query":"q","documents":["a"]}`)
	m := object(t, body)
	if hasKey(at(t, m, "results", 0), "document") || at(t, m, "meta", "billed_units", "search_units") != json.Number("1") {
		t.Errorf("no documents unless asked; search units in meta: %s", body)
	}
}

func TestRerankBadRequests(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name, body, param string
		status            int
	}{
		{"documents not a list", `{"model":"m","query":"q","documents":"a"}`, "documents", 400},
		{"document a number", `{"model":"m","query":"q","documents":["a",7]}`, "documents[1]", 400},
		{"query a number", `{"model":"m","query":1,"documents":["a"]}`, "query", 400},
		{"top_n a fraction", `{"model":"m","query":"q","documents":["a"],"top_n":1.5}`, "top_n", 400},
		{"top_n a string", `{"model":"m","query":"q","documents":["a"],"top_n":"2"}`, "top_n", 400},
		{"return_documents a string", `{"model":"m","query":"q","documents":["a"],"return_documents":"yes"}`, "return_documents", 400},
		{"duplicate key", `{"model":"m","model":"n","query":"q","documents":["a"]}`, "model", 400},
		{"not JSON", `{"model":`, "", 400},
		{"upstream not found", `{"model":"mock/missing","query":"q","documents":["a"]}`, "model", 404},
		{"rate limited", `{"model":"mock/limited","query":"q","documents":["a"]}`, "", 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+"/v1/rerank", tt.body)
			wantStatus(t, resp, body, tt.status)
			typ := "invalid_request_error"
			if tt.status == 429 {
				typ = "rate_limit_error"
			}
			e := wantOpenAIError(t, body, typ)
			if tt.param != "" && e["param"] != tt.param {
				t.Errorf("param = %v, want %q: %s", e["param"], tt.param, body)
			}
		})
	}
}

// FuzzDecodeRerank feeds arbitrary bodies to the rerank decoder: a body decodes or fails with a
// client-safe KindInvalidArgument error recorded on the body, never panics and never changes the
// body; a decoded request has valid UTF-8 strings (it marshals) and decodes the same again.
func FuzzDecodeRerank(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","query":"q","documents":["a",{"text":"b"},{"title":"T","n":1,"x":null}],"top_n":2,"return_documents":true}`,
		`{"model":"m","query":"q","documents":[{"structured":{"fields":[{"key":"k","value":"v"}]}}],"top_n":null}`,
		`{"model":"m","query":"caf\u00e9","documents":["\ud800"]}`, `{"documents":[[1]]}`, `{"top_n":1e99}`, `{"model":"a","model":"b"}`,
		`{"model": `, `[1]`, `{"documents":[{"text":1}]}`, `{"documents":[{"structured":{"fields":[1]}}]}`,
	} {
		f.Add([]byte(s))
	}
	c := newCodec()
	f.Fuzz(func(t *testing.T, body []byte) {
		var m pb.RerankRequest
		rb := &requestBody{data: bytes.Clone(body)}
		err := c.NewDecoder(rb).Decode(&m)
		if !bytes.Equal(rb.data, body) {
			t.Fatalf("the decoder changed the request body")
		}
		if err != nil {
			checkDecodeError(t, body, err, rb)
			return
		}
		if _, err := proto.Marshal(&m); err != nil {
			t.Fatalf("decoded request does not marshal: %v", err)
		}
		var again pb.RerankRequest
		if err := c.Unmarshal(body, &again); err != nil || !proto.Equal(&m, &again) {
			t.Fatalf("second decode differs: %v", err)
		}
	})
}
