package gateway

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

// fastSeeds are bodies beside decodeSeeds that exercise the fast decoder's edges: escapes,
// surrogates, nulls, duplicates, camelCase names, numbers protojson takes in other spellings,
// typed shapes of the polymorphic fields.
var fastSeeds = []string{
	difyBlocking,
	`{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 \u00e9\/\b\f\r\t"}],"top_p":-0,"seed":9223372036854775807}`,
	`{"model":"m","messages":[{"role":"user","content":"\ud83d"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"\udc00\ud83d"}]}`,
	`{"model":null,"messages":null,"stop":null,"tool_choice":null,"max_tokens":null,"model":"x"}`,
	`{"maxTokens":5,"max_tokens":6}`, `{"toolChoice":"auto"}`, `{"max_tokens":1.0}`, `{"max_tokens":1e2}`, `{"n":"3"}`,
	`{"max_tokens":2147483648}`, `{"seed":-0}`, `{"temperature":1e-400}`, `{"temperature":"1"}`,
	`{"messages":[{"content":{"text":"typed"}}]}`, `{"messages":[{"content":{"parts":{"parts":[]}}}]}`,
	`{"messages":[{"content":[]}],"stop":[],"tools":[]}`, `{"messages":[{"content":5}]}`, `{"messages":[null]}`,
	`{"tool_choice":{"mode":"auto"}}`, `{"tool_choice":{"named":{"type":"function"}}}`, `{"tool_choice":{"type":"function","function":{}}}`,
	`{"tool_choice":{"type":"function","function":{"name":"f","name":"g"}}}`,
	`{"tools":[{"type":"function","function":{"name":"f","strict":true,"parameters":{"a":[1,"x",null,true,{"b":{}}],"a2":-1.5e3}}}]}`,
	`{"tools":[{"function":{"parameters":{"a":1,"a":2}}}]}`, `{"tools":[{"function":{"parameters":[]}}]}`,
	`{"response_format":{"type":"json_schema","json_schema":{"name":"n","strict":false,"schema":{"k\u00e9y":"v"}}},"stream_options":{}}`,
	`{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}},{"type":"file","file":{"file_id":"f","filename":"a.pdf","file_data":"x"}}]}]}`,
	`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}],"reasoning_content":"r","reasoning_signature":"s","name":"n","tool_call_id":"t"}]}`,
	`{"unknown":{"deep":[[[{"x":"\u0000"}]]]},"other":[1,2e5,-0.5,true,false,null],"model":"m"}`,
	`{"unknown":"\ud800"}`, `{"[ext]":1}`, `{"model":"m"} `, "{\"model\":\"m\"}\t\n", `{"model":"m"}x`, `{"model":"m",}`,
	`{"parallel_tool_calls":false,"reasoning_effort":"low","session_id":"s","presence_penalty":0,"frequency_penalty":2}`,
	`{"model":"e","input":[[1,2],[]],"dimensions":3}`, `{"model":"e","input":[[1],[-2147483648]]}`, `{"input":[1,[2]]}`,
	`{"input":[2147483648]}`, `{"input":{"texts":["a"]}}`, `{"input":[null]}`, `{"input":[[null]]}`, `{"input":null}`,
	`{"input":["a"],"input":["b"]}`, `{"model":"e","input":["a\u0000b"]}`, `{"model":"e","input":true}`,
}

// fastCommon are chat bodies that must take the fast path.
var fastCommon = []string{
	`{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 \u00e9\/\b\f\r\t"}],"top_p":-0,"seed":9223372036854775807}`,
	`{"model":null,"messages":null,"stop":null,"tool_choice":null,"max_tokens":null,"user":"x"}`,
	`{"messages":[{"content":[]}],"stop":[],"tools":[],"tool_choice":{"type":"function","function":{}}}`,
	`{"tools":[{"type":"function","function":{"name":"f","strict":true,"parameters":{"a":[1,"x",null,true,{"b":{}}],"a2":-1.5e3}}}]}`,
	`{"response_format":{"type":"json_schema","json_schema":{"name":"n","strict":false,"schema":{"k\u00e9y":"v"}}},"stream_options":{}}`,
	`{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}},{"type":"file","file":{"file_id":"f","filename":"a.pdf","file_data":"x"}}]}]}`,
	`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}],"reasoning_content":"r","reasoning_signature":"s","name":"n","tool_call_id":"t"}]}`,
	`{"unknown":{"deep":[[[{"x":"\u0000"}]]]},"other":[1,2e5,-0.5,true,false,null],"model":"m"}`,
	`{"parallel_tool_calls":false,"reasoning_effort":"low","session_id":"s","presence_penalty":0,"frequency_penalty":2,"n":1,"max_completion_tokens":0}`,
}

// FuzzDecodeFast checks the fast request decoder against the general path (normalizer and
// protojson): whenever the fast decoder accepts a body, the general path accepts it too and gives
// an equal proto. Where the fast decoder declines, the codec uses the general path, so the codec's
// answers (the proto, or the error and its wording) are exactly the general path's.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range slices.Concat(decodeSeeds, fastSeeds, fastCommon) {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	c := newCodec()
	f.Fuzz(func(t *testing.T, body []byte, embedding bool) {
		data := bytes.TrimSpace(body)
		if len(data) == 0 || data[0] != '{' {
			return
		}
		orig := bytes.Clone(data)
		var fast, general proto.Message
		var ok bool
		if embedding {
			m := new(pb.CreateEmbeddingRequest)
			ok, fast, general = fastDecodeEmbedding(data, m), m, new(pb.CreateEmbeddingRequest)
		} else {
			m := new(pb.CreateChatCompletionRequest)
			ok, fast, general = fastDecodeChat(data, m), m, new(pb.CreateChatCompletionRequest)
		}
		if !bytes.Equal(data, orig) {
			t.Fatal("the fast decoder changed the body")
		}
		// The codec (fast path, general path when it declines) answers as the general path alone.
		viaCodec, alone := proto.Clone(general), proto.Clone(general)
		errCodec, errAlone := c.decodeMessage(data, viaCodec), c.decodeGeneral(data, alone)
		if (errCodec == nil) != (errAlone == nil) || (errCodec != nil && (errCodec.Message != errAlone.Message || errCodec.Param != errAlone.Param)) {
			t.Fatalf("codec error %v, general path error %v, on %s", errCodec, errAlone, data)
		}
		if errCodec == nil && !proto.Equal(viaCodec, alone) {
			t.Fatalf("codec and general path differ on %s:\n codec   %v\n general %v", data, viaCodec, alone)
		}
		if !ok {
			return
		}
		if err := c.decodeGeneral(data, general); err != nil {
			t.Fatalf("fast decoder accepted %s, the general path rejects it: %v", data, err)
		}
		if !proto.Equal(fast, general) {
			t.Fatalf("decoders differ on %s:\n fast    %v\n general %v", data, fast, general)
		}
	})
}

// TestFastDecodeCovers checks that the bodies clients commonly send take the fast path (a fast
// decoder that always declined would pass the fuzz test).
func TestFastDecodeCovers(t *testing.T) {
	for _, s := range []string{decodeSeeds[0], decodeSeeds[1], decodeSeeds[2], decodeSeeds[3], decodeSeeds[4], difyBlocking} {
		if !fastDecodeChat([]byte(s), new(pb.CreateChatCompletionRequest)) {
			t.Errorf("chat body takes the general path: %s", s)
		}
	}
	for _, s := range fastCommon {
		if !fastDecodeChat([]byte(s), new(pb.CreateChatCompletionRequest)) {
			t.Errorf("chat body takes the general path: %s", s)
		}
	}
	for _, s := range []string{`{"model":"e","input":"hello"}`, `{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":8}`,
		`{"model":"e","input":[1,2,3]}`, `{"model":"e","input":[[1,2],[3]]}`, `{"model":"e","input":[]}`} {
		if !fastDecodeEmbedding([]byte(s), new(pb.CreateEmbeddingRequest)) {
			t.Errorf("embeddings body takes the general path: %s", s)
		}
	}
}
