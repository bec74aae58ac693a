package gateway

import (
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

func TestAppendString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain", `"plain"`},
		{`q"b\s`, `"q\"b\\s"`},
		{"nl\n cr\r tab\t", `"nl\n cr\r tab\t"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"café 日本 🎉", `"café 日本 🎉"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\xe6\x97", `"\ufffd\ufffd"`}, // truncated 3-byte sequence: one replacement per byte
		{"ls\u2028ps\u2029", `"ls\u2028ps\u2029"`},
		{"<html>&", `"<html>&"`},
		{"", `""`},
	}
	for _, tt := range tests {
		got := string(appendString(nil, tt.in))
		if got != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("appendString(%q) is not JSON: %v", tt.in, err)
		}
		if utf8.ValidString(tt.in) && back != tt.in {
			t.Errorf("round trip of %q = %q", tt.in, back)
		}
	}
}

func TestAppendChunk(t *testing.T) {
	head := `{"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[`
	base := func(choices ...*pb.ChunkChoice) *pb.StreamChatCompletionResponse {
		return &pb.StreamChatCompletionResponse{Id: "c", Created: 1700000000, Model: "m", Choices: choices}
	}
	tests := []struct {
		name string
		in   *pb.StreamChatCompletionResponse
		want string
	}{
		{"first chunk", base(&pb.ChunkChoice{Delta: &pb.Delta{Role: "assistant", Content: proto.String("")}}),
			head + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`},
		{"tool call opens", base(&pb.ChunkChoice{Delta: &pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 1, Id: "call_1", Type: "function", Function: &pb.FunctionCall{Name: "f"}}}}}),
			head + `{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}`},
		{"tool call continues", base(&pb.ChunkChoice{Delta: &pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 1, Function: &pb.FunctionCall{Arguments: `ris"}`}}}}}),
			head + `{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"ris\"}"}}]},"finish_reason":null}]}`},
		{"tool call without function", base(&pb.ChunkChoice{Delta: &pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 0}}}}),
			head + `{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":""}}]},"finish_reason":null}]}`},
		{"reasoning and refusal", base(&pb.ChunkChoice{Delta: &pb.Delta{ReasoningContent: proto.String("hmm"), Refusal: proto.String("no")}}),
			head + `{"index":0,"delta":{"reasoning_content":"hmm","refusal":"no"},"finish_reason":null}]}`},
		{"reasoning signature", base(&pb.ChunkChoice{Delta: &pb.Delta{ReasoningSignature: "sig=="}, FinishReason: "stop"}),
			head + `{"index":0,"delta":{"reasoning_signature":"sig=="},"finish_reason":"stop"}]}`},
		{"finish", base(&pb.ChunkChoice{Delta: &pb.Delta{}, FinishReason: "stop"}),
			head + `{"index":0,"delta":{},"finish_reason":"stop"}]}`},
		{"nil delta", base(&pb.ChunkChoice{Index: 2}),
			head + `{"index":2,"delta":{},"finish_reason":null}]}`},
		{"usage", &pb.StreamChatCompletionResponse{Id: "c", Created: 1700000000, Model: "m", SystemFingerprint: "fp", Usage: &pb.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, CompletionTokensDetails: &pb.CompletionTokensDetails{ReasoningTokens: 1}}},
			head + `],"system_fingerprint":"fp","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":1,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendChunk(nil, tt.in)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAppendChatCompletion(t *testing.T) {
	in := &pb.CreateChatCompletionResponse{
		Id: "x", Created: 5, Model: "m", ServiceTier: "default",
		Choices: []*pb.Choice{{Message: &pb.AssistantMessage{Content: proto.String("hi"), ReasoningContent: proto.String("r"), ReasoningSignature: "s"}, FinishReason: "length"}},
	}
	want := `{"id":"x","object":"chat.completion","created":5,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null,"reasoning_content":"r","reasoning_signature":"s"},"finish_reason":"length","logprobs":null}],"usage":null,"system_fingerprint":null,"service_tier":"default"}`
	if got := string(appendChatCompletion(nil, in)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendEmbeddings(t *testing.T) {
	tests := []struct {
		name string
		in   *pb.CreateEmbeddingResponse
		want string
	}{
		{"floats", &pb.CreateEmbeddingResponse{Model: "e", Data: []*pb.Embedding{{Embedding: []float32{0.1, -2, 1e-7, float32(math.NaN())}}}, Usage: &pb.EmbeddingUsage{PromptTokens: 3, TotalTokens: 3}},
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2,1e-07,0]}],"model":"e","usage":{"prompt_tokens":3,"total_tokens":3}}`},
		{"base64", &pb.CreateEmbeddingResponse{Model: "e", Data: []*pb.Embedding{{Index: 0, EmbeddingBytes: []byte{0, 0, 128, 63}}, {Index: 1, EmbeddingBytes: []byte{0, 0, 0, 64}}}},
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPw=="},{"object":"embedding","index":1,"embedding":"AAAAQA=="}],"model":"e","usage":{"prompt_tokens":0,"total_tokens":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendEmbeddings(nil, tt.in)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestEncodeWithReusesNothing checks that encoded answers do not share memory with the pool.
func TestEncodeWithReusesNothing(t *testing.T) {
	a := encodeWith("", func(b []byte) []byte { return append(b, "first"...) })
	b := encodeWith("", func(b []byte) []byte { return append(b, "other"...) })
	if string(a) != "first" || string(b) != "other" {
		t.Errorf("a = %q, b = %q", a, b)
	}
}
