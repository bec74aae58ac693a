package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
)

// decodeSeeds are request bodies in the shapes clients send (see gateway_test.go), valid and not.
var decodeSeeds = []string{
	`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"max_tokens":128,"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"What colour?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA==","detail":"low"}}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"city\": \"Paris\"}"}}]},{"role":"tool","tool_call_id":"c","content":"sunny"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END","tool_choice":"required","response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"}}}}`,
	`{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \"q\" \n 日本"}],"seed":-1,"n":1,"user":"u","logit_bias":{"1":2}}`,
	`{"model": "m", `, `{"model": 5, "messages": []}`, `{"model":"m","max_tokens":"abc"}`, `{"model":"a","model":"b"}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":3}]}]}`, `[1,2]`, ` `, `{"temperature":"NaN","top_p":1e400}`,
	`{"model":"e","input":"hello"}`, `{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":8}`,
	`{"model":"e","input":[1,2,3]}`, `{"model":"e","input":[[1,2],[3]]}`, `{"model":"e","input":[]}`, `{"model":"e","input":{"x":1}}`,
	`{"model":"e","input":["a",1]}`, `{"input":[[1],"a"]}`,
}

// FuzzDecodeRequest feeds arbitrary bodies to the request decoder (the fast decoder, or the
// normalizer and protojson) of the chat and embeddings endpoints. A body decodes or fails with a client-safe
// KindInvalidArgument error, never panics; when it decodes, the normalizer's output is valid JSON
// that normalizes to itself, and the decoded request survives a protojson round trip through the
// decoder unchanged.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	c := newCodec()
	marshal := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	f.Fuzz(func(t *testing.T, body []byte, embedding bool) {
		var msg, again proto.Message = new(pb.CreateChatCompletionRequest), new(pb.CreateChatCompletionRequest)
		normalize := normalizeChat
		if embedding {
			msg, again, normalize = new(pb.CreateEmbeddingRequest), new(pb.CreateEmbeddingRequest), normalizeEmbedding
		}
		rb := &requestBody{data: bytes.Clone(body)}
		err := c.NewDecoder(rb).Decode(msg)
		if !bytes.Equal(rb.data, body) {
			t.Fatalf("the decoder changed the request body")
		}
		if err != nil {
			checkDecodeError(t, body, err, rb)
			return
		}
		trimmed := bytes.TrimSpace(body)
		norm := normalize(nil, trimmed)
		if !json.Valid(norm) {
			t.Fatalf("normalized body is not JSON: %s", norm)
		}
		if twice := normalize(nil, norm); !bytes.Equal(twice, norm) {
			t.Fatalf("normalizing twice changes the body:\n once %s\ntwice %s", norm, twice)
		}
		js, err := marshal.Marshal(msg)
		if err != nil {
			t.Fatalf("re-encode %v: %v", msg, err)
		}
		if err := c.Unmarshal(js, again); err != nil {
			t.Fatalf("decode of the re-encoded request %s: %v", js, err)
		}
		if d := cmp.Diff(msg, again, protocmp.Transform(), cmpopts.EquateNaNs()); d != "" {
			t.Fatalf("round trip through %s changed the request (-first +second):\n%s", js, d)
		}
	})
}

func checkDecodeError(t *testing.T, body []byte, err error, rb *requestBody) {
	t.Helper()
	if errors.Is(err, io.EOF) {
		if len(bytes.TrimSpace(body)) != 0 {
			t.Fatalf("io.EOF for a non-empty body")
		}
		return
	}
	var le *llm.Error
	if !errors.As(err, &le) || le.Kind != llm.KindInvalidArgument || le.Message == "" {
		t.Fatalf("error %#v (%v) is not a KindInvalidArgument *llm.Error with a message", err, err)
	}
	if rb.decodeErr != le {
		t.Fatalf("decode error not recorded on the request body")
	}
}
