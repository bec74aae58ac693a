package pbconv_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
)

func textContent(s string) *pb.MessageContent {
	return &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChatRequestFromPB(t *testing.T) {
	params := mustStruct(t, map[string]any{"type": "object"})
	cases := []struct {
		name   string
		in     *pb.CreateChatCompletionRequest
		stream bool
		want   *llm.ChatRequest
	}{
		{
			name: "text message and sampling parameters",
			in: &pb.CreateChatCompletionRequest{
				Model:       "openai/gpt-4o",
				Messages:    []*pb.ChatMessage{{Role: "user", Content: textContent("hi"), Name: "bob"}},
				Temperature: llm.Ptr(0.5), TopP: llm.Ptr(0.9), Stop: []string{"END"}, Seed: llm.Ptr(int64(7)), N: llm.Ptr(int32(2)),
				PresencePenalty: llm.Ptr(1.0), FrequencyPenalty: llm.Ptr(-1.0), User: "u1", ReasoningEffort: "low",
				ParallelToolCalls: llm.Ptr(false),
			},
			want: &llm.ChatRequest{
				Model:       "gpt-4o",
				Messages:    []llm.Message{{Role: "user", Name: "bob", Content: []llm.Part{{Type: "text", Text: "hi"}}}},
				Temperature: llm.Ptr(0.5), TopP: llm.Ptr(0.9), Stop: []string{"END"}, Seed: llm.Ptr(int64(7)), N: llm.Ptr(int32(2)),
				PresencePenalty: llm.Ptr(1.0), FrequencyPenalty: llm.Ptr(-1.0), User: "u1", ReasoningEffort: "low",
				ParallelToolCalls: llm.Ptr(false),
			},
		},
		{
			name: "content parts",
			in: &pb.CreateChatCompletionRequest{Messages: []*pb.ChatMessage{{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Parts{Parts: &pb.ContentParts{Parts: []*pb.ContentPart{
				{Type: "text", Text: "look"},
				{Type: "image_url", ImageUrl: &pb.ImageURL{Url: "data:image/png;base64,AA", Detail: "low"}},
				{Type: "input_audio", InputAudio: &pb.InputAudio{Data: "UklG", Format: "wav"}},
				{Type: "file", File: &pb.File{FileData: "data:application/pdf;base64,AA", FileId: "f1", Filename: "a.pdf"}},
			}}}}}}},
			want: &llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: "user", ContentIsParts: true, Content: []llm.Part{
				{Type: "text", Text: "look"},
				{Type: "image_url", ImageURL: "data:image/png;base64,AA", ImageDetail: "low"},
				{Type: "input_audio", AudioData: "UklG", AudioFormat: "wav"},
				{Type: "file", FileData: "data:application/pdf;base64,AA", FileID: "f1", FileName: "a.pdf"},
			}}}},
		},
		{
			name: "tool calls, tool results and tools",
			in: &pb.CreateChatCompletionRequest{
				Messages: []*pb.ChatMessage{
					{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: "c1", Type: "function", Function: &pb.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}, ReasoningContent: "thought"},
					{Role: "tool", ToolCallId: "c1", Content: textContent("42")},
				},
				Tools: []*pb.Tool{
					{Type: "function", Function: &pb.FunctionDefinition{Name: "f", Description: "does f", Parameters: params, Strict: llm.Ptr(true)}},
					{Type: "function", Function: &pb.FunctionDefinition{Name: "g"}},
				},
				ToolChoice: &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: &pb.NamedToolChoice{Type: "function", Function: &pb.FunctionName{Name: "f"}}}},
			},
			want: &llm.ChatRequest{
				Model: "m",
				Messages: []llm.Message{
					{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: `{"a":1}`}}, ReasoningContent: "thought"},
					{Role: "tool", ToolCallID: "c1", Content: []llm.Part{{Type: "text", Text: "42"}}},
				},
				Tools: []llm.Tool{
					{Name: "f", Description: "does f", Parameters: []byte(`{"type":"object"}`), Strict: llm.Ptr(true)},
					{Name: "g"},
				},
				ToolChoice: &llm.ToolChoice{Mode: "function", Name: "f"},
			},
		},
		{
			name: "tool choice mode and json schema response format",
			in: &pb.CreateChatCompletionRequest{
				ToolChoice: &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: "required"}},
				ResponseFormat: &pb.ResponseFormat{Type: "json_schema", JsonSchema: &pb.JSONSchema{
					Name: "answer", Description: "the answer", Schema: params, Strict: llm.Ptr(true),
				}},
			},
			want: &llm.ChatRequest{
				Model:      "m",
				Messages:   []llm.Message{},
				ToolChoice: &llm.ToolChoice{Mode: "required"},
				ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "answer", SchemaDescription: "the answer",
					Schema: []byte(`{"type":"object"}`), Strict: llm.Ptr(true)},
			},
		},
		{
			name: "max_completion_tokens wins over max_tokens",
			in:   &pb.CreateChatCompletionRequest{MaxTokens: llm.Ptr(int32(10)), MaxCompletionTokens: llm.Ptr(int32(20))},
			want: &llm.ChatRequest{Model: "m", Messages: []llm.Message{}, MaxTokens: llm.Ptr(int32(20))},
		},
		{
			name: "only max_tokens keeps the legacy name",
			in:   &pb.CreateChatCompletionRequest{MaxTokens: llm.Ptr(int32(10))},
			want: &llm.ChatRequest{Model: "m", Messages: []llm.Message{}, MaxTokens: llm.Ptr(int32(10)), LegacyMaxTokensName: true},
		},
		{
			name: "include_usage counts when streaming",
			in:   &pb.CreateChatCompletionRequest{StreamOptions: &pb.StreamOptions{IncludeUsage: true}},
			want: &llm.ChatRequest{Model: "m", Messages: []llm.Message{}, IncludeStreamUsage: true}, stream: true,
		},
		{
			name: "include_usage is ignored by the unary call",
			in:   &pb.CreateChatCompletionRequest{StreamOptions: &pb.StreamOptions{IncludeUsage: true}},
			want: &llm.ChatRequest{Model: "m", Messages: []llm.Message{}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model := "m"
			if c.want.Model != "m" {
				model = c.want.Model
			}
			got, err := pbconv.ChatRequestFromPB(c.in, model, c.stream)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("ChatRequestFromPB mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatRequestToPB(t *testing.T) {
	params := mustStruct(t, map[string]any{"type": "object"})
	cases := []struct {
		name string
		in   *llm.ChatRequest
		want *pb.CreateChatCompletionRequest
	}{
		{
			name: "text, parameters and max_completion_tokens",
			in: &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("system", "be brief"), {Role: "user", Name: "bob", Content: []llm.Part{{Type: "text", Text: "hi"}}}},
				Temperature: llm.Ptr(0.5), TopP: llm.Ptr(0.9), MaxTokens: llm.Ptr(int32(20)), Stop: []string{"END"}, Seed: llm.Ptr(int64(7)), N: llm.Ptr(int32(1)),
				PresencePenalty: llm.Ptr(1.0), FrequencyPenalty: llm.Ptr(-1.0), User: "u1", ReasoningEffort: "low", ParallelToolCalls: llm.Ptr(false)},
			want: &pb.CreateChatCompletionRequest{Model: "m",
				Messages:    []*pb.ChatMessage{{Role: "system", Content: textContent("be brief")}, {Role: "user", Name: "bob", Content: textContent("hi")}},
				Temperature: llm.Ptr(0.5), TopP: llm.Ptr(0.9), MaxCompletionTokens: llm.Ptr(int32(20)), Stop: []string{"END"}, Seed: llm.Ptr(int64(7)), N: llm.Ptr(int32(1)),
				PresencePenalty: llm.Ptr(1.0), FrequencyPenalty: llm.Ptr(-1.0), User: "u1", ReasoningEffort: "low", ParallelToolCalls: llm.Ptr(false)},
		},
		{
			name: "legacy max_tokens name",
			in:   &llm.ChatRequest{Model: "m", MaxTokens: llm.Ptr(int32(10)), LegacyMaxTokensName: true},
			want: &pb.CreateChatCompletionRequest{Model: "m", Messages: []*pb.ChatMessage{}, MaxTokens: llm.Ptr(int32(10))},
		},
		{
			name: "parts, tool calls, tools, named tool choice and json schema",
			in: &llm.ChatRequest{Model: "m",
				Messages: []llm.Message{
					{Role: "user", ContentIsParts: true, Content: []llm.Part{{Type: "text", Text: "look"}, {Type: "image_url", ImageURL: "https://x/y.png", ImageDetail: "low"},
						{Type: "input_audio", AudioData: "UklG", AudioFormat: "wav"}, {Type: "file", FileData: "data:application/pdf;base64,AA", FileID: "f1", FileName: "a.pdf"}}},
					{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: `{"a":1}`}}, ReasoningContent: "thought"},
					{Role: "tool", ToolCallID: "c1", Content: []llm.Part{{Type: "text", Text: "42"}}},
				},
				Tools:          []llm.Tool{{Name: "f", Description: "does f", Parameters: []byte(`{"type":"object"}`), Strict: llm.Ptr(true)}, {Name: "g"}},
				ToolChoice:     &llm.ToolChoice{Mode: "function", Name: "f"},
				ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "answer", SchemaDescription: "the answer", Schema: []byte(`{"type":"object"}`), Strict: llm.Ptr(true)},
			},
			want: &pb.CreateChatCompletionRequest{Model: "m",
				Messages: []*pb.ChatMessage{
					{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Parts{Parts: &pb.ContentParts{Parts: []*pb.ContentPart{
						{Type: "text", Text: "look"}, {Type: "image_url", ImageUrl: &pb.ImageURL{Url: "https://x/y.png", Detail: "low"}},
						{Type: "input_audio", InputAudio: &pb.InputAudio{Data: "UklG", Format: "wav"}}, {Type: "file", File: &pb.File{FileData: "data:application/pdf;base64,AA", FileId: "f1", Filename: "a.pdf"}},
					}}}}},
					{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: "c1", Type: "function", Function: &pb.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}, ReasoningContent: "thought"},
					{Role: "tool", ToolCallId: "c1", Content: textContent("42")},
				},
				Tools: []*pb.Tool{
					{Type: "function", Function: &pb.FunctionDefinition{Name: "f", Description: "does f", Parameters: params, Strict: llm.Ptr(true)}},
					{Type: "function", Function: &pb.FunctionDefinition{Name: "g"}},
				},
				ToolChoice:     &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: &pb.NamedToolChoice{Type: "function", Function: &pb.FunctionName{Name: "f"}}}},
				ResponseFormat: &pb.ResponseFormat{Type: "json_schema", JsonSchema: &pb.JSONSchema{Name: "answer", Description: "the answer", Schema: params, Strict: llm.Ptr(true)}},
			},
		},
		{
			name: "tool choice mode and json_object",
			in:   &llm.ChatRequest{Model: "m", ToolChoice: &llm.ToolChoice{Mode: "required"}, ResponseFormat: &llm.ResponseFormat{Type: "json_object"}},
			want: &pb.CreateChatCompletionRequest{Model: "m", Messages: []*pb.ChatMessage{},
				ToolChoice: &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: "required"}}, ResponseFormat: &pb.ResponseFormat{Type: "json_object"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pbconv.ChatRequestToPB(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("ChatRequestToPB mismatch (-want +got):\n%s", diff)
			}
			// Back again: the server's direction restores the request.
			back, err := pbconv.ChatRequestFromPB(got, c.in.Model, false)
			if err != nil {
				t.Fatal(err)
			}
			want := *c.in
			if want.Messages == nil {
				want.Messages = []llm.Message{}
			}
			if diff := cmp.Diff(&want, back, cmp.Comparer(jsonEqual)); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// jsonEqual compares JSON texts by value (protojson does not promise a byte layout).
func jsonEqual(a, b []byte) bool {
	sa, errA := pbconv.JSONStruct(a, "a")
	sb, errB := pbconv.JSONStruct(b, "b")
	return errA == nil && errB == nil && cmp.Equal(sa, sb, protocmp.Transform())
}

func TestChatRequestToPBRejectsBadSchema(t *testing.T) {
	cases := []struct {
		name      string
		in        *llm.ChatRequest
		wantParam string
	}{
		{"tool parameters", &llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}, {Name: "g", Parameters: []byte(`[1]`)}}}, "tools[1].function.parameters"},
		{"response schema", &llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "x", Schema: []byte(`{`)}}, "response_format.json_schema.schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := pbconv.ChatRequestToPB(c.in)
			e := llm.AsError(err)
			if err == nil || e.Kind != llm.KindInvalidArgument || e.Param != c.wantParam {
				t.Fatalf("err = %v; want invalid_argument on %s", err, c.wantParam)
			}
		})
	}
}

func TestChatResponseRoundTrip(t *testing.T) {
	in := &llm.ChatResponse{ID: "r1", Model: "m", Created: 1700000000, SystemFingerprint: "fp", ServiceTier: "default",
		Choices: []llm.Choice{
			{Index: 0, Content: llm.Ptr("hi"), ReasoningContent: llm.Ptr("because"), ReasoningSignature: "sig==", FinishReason: "stop"},
			{Index: 1, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: `{}`}}, FinishReason: "tool_calls"},
			{Index: 2, Refusal: llm.Ptr("no"), FinishReason: "content_filter"},
		},
		Usage: &llm.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, CachedTokens: 4, PromptAudioTokens: 5, ReasoningTokens: 6,
			CompletionAudioTokens: 7, AcceptedPredictionTokens: 8, RejectedPredictionTokens: 9},
	}
	p := pbconv.ChatResponseToPB(in)
	if p.GetObject() != "chat.completion" || p.GetChoices()[1].GetMessage().GetRole() != "assistant" {
		t.Errorf("object %q, role %q; want chat.completion and assistant", p.GetObject(), p.GetChoices()[1].GetMessage().GetRole())
	}
	if diff := cmp.Diff(in, pbconv.ChatResponseFromPB(p)); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if got := pbconv.ChatResponseFromPB(&pb.CreateChatCompletionResponse{}); got.Usage != nil || len(got.Choices) != 0 {
		t.Errorf("empty response = %+v; want no usage and no choices", got)
	}
}

func TestChunkRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		in   *llm.Chunk
	}{
		{"text", &llm.Chunk{ID: "c", Model: "m", Created: 1, SystemFingerprint: "fp", Choices: []llm.ChunkChoice{{Index: 0, Role: "assistant", Content: llm.Ptr("he")}}}},
		{"reasoning and refusal", &llm.Chunk{Choices: []llm.ChunkChoice{{ReasoningContent: llm.Ptr("hm"), Refusal: llm.Ptr("no")}}}},
		{"tool call pieces", &llm.Chunk{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "c1", Name: "f"}, {Index: 1, Arguments: `{"a"`}}}}}},
		{"finish", &llm.Chunk{Choices: []llm.ChunkChoice{{Index: 1, FinishReason: "length"}}}},
		{"reasoning signature", &llm.Chunk{Choices: []llm.ChunkChoice{{ReasoningSignature: "sig==", FinishReason: "stop"}}}},
		{"usage only", &llm.Chunk{Usage: &llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := &pb.StreamChatCompletionResponse{Id: c.in.ID, Model: c.in.Model, Created: c.in.Created, SystemFingerprint: c.in.SystemFingerprint, Usage: pbconv.UsageToPB(c.in.Usage)}
			for i := range c.in.Choices {
				msg.Choices = append(msg.Choices, pbconv.ChunkChoiceToPB(&c.in.Choices[i]))
			}
			if diff := cmp.Diff(c.in, pbconv.ChunkFromPB(msg)); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmbeddingRequestRoundTrip(t *testing.T) {
	cases := []*llm.EmbeddingRequest{
		{Model: "e", Texts: []string{"a", "b"}, Dimensions: llm.Ptr(int32(8)), User: "u"},
		{Model: "e", Tokens: [][]int32{{1, 2}, {3}}},
	}
	for _, in := range cases {
		p := pbconv.EmbeddingRequestToPB(in)
		if p.GetEncodingFormat() != "float" {
			t.Errorf("encoding_format = %q; want float", p.GetEncodingFormat())
		}
		if diff := cmp.Diff(in, pbconv.EmbeddingRequestFromPB(p, "e")); diff != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestEmbeddingResponseFromPB(t *testing.T) {
	cases := []struct {
		name    string
		in      *pb.CreateEmbeddingResponse
		n       int
		want    [][]float32
		wantErr bool
	}{
		{name: "placed by index", n: 2, in: &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 1, Embedding: []float32{2}}, {Index: 0, Embedding: []float32{1}}}},
			want: [][]float32{{1}, {2}}},
		{name: "bytes decoded", n: 1, in: &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 0, EmbeddingBytes: pbconv.Float32Bytes([]float32{0.5, -2})}}},
			want: [][]float32{{0.5, -2}}},
		{name: "repeated index", n: 2, in: &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 0}, {Index: 0}}}, wantErr: true},
		{name: "out of range", n: 1, in: &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 1}}}, wantErr: true},
		{name: "missing", n: 2, in: &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 0}}}, wantErr: true},
		{name: "ragged bytes", n: 1, in: &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 0, EmbeddingBytes: []byte{1, 2, 3}}}}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pbconv.EmbeddingResponseFromPB(c.in, c.n)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v; want error %v", err, c.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(c.want, got.Vectors); diff != "" {
					t.Errorf("vectors mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}
