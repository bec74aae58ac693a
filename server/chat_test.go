package server

import (
	"testing"

	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/google/go-cmp/cmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
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

func TestChatRequest(t *testing.T) {
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
			got, err := chatRequest(c.in, model, c.stream)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("chatRequest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatResponse(t *testing.T) {
	in := &llm.ChatResponse{
		ID: "up-1", Model: "gpt-4o-2024-08-06", Created: 1700000000, SystemFingerprint: "fp", ServiceTier: "default",
		Choices: []llm.Choice{
			{Index: 0, Content: llm.Ptr("hello"), FinishReason: "stop"},
			{Index: 1, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: "{}"}}, FinishReason: "tool_calls", ReasoningContent: llm.Ptr("hm")},
		},
		Usage: &llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, CachedTokens: 1, ReasoningTokens: 2},
	}
	want := &pb.CreateChatCompletionResponse{
		Id: "up-1", Object: "chat.completion", Created: 1700000000, Model: "gpt-4o-2024-08-06", SystemFingerprint: "fp", ServiceTier: "default",
		Choices: []*pb.Choice{
			{Index: 0, Message: &pb.AssistantMessage{Role: "assistant", Content: llm.Ptr("hello")}, FinishReason: "stop"},
			{Index: 1, Message: &pb.AssistantMessage{Role: "assistant", ReasoningContent: llm.Ptr("hm"), ToolCalls: []*pb.ToolCall{
				{Id: "c1", Type: "function", Function: &pb.FunctionCall{Name: "f", Arguments: "{}"}},
			}}, FinishReason: "tool_calls"},
		},
		Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7,
			PromptTokensDetails:     &pb.PromptTokensDetails{CachedTokens: 1},
			CompletionTokensDetails: &pb.CompletionTokensDetails{ReasoningTokens: 2}},
	}
	if diff := cmp.Diff(want, chatResponse(in, "gpt-4o"), protocmp.Transform()); diff != "" {
		t.Errorf("chatResponse mismatch (-want +got):\n%s", diff)
	}

	// Without upstream id, created and model, the gateway fills them in.
	got := chatResponse(&llm.ChatResponse{}, "gpt-4o")
	if len(got.Id) <= len("chatcmpl-") || got.Id[:9] != "chatcmpl-" || got.Created == 0 || got.Model != "gpt-4o" {
		t.Errorf("chatResponse of a bare answer = id %q created %d model %q; want a chatcmpl- id, now and the upstream model", got.Id, got.Created, got.Model)
	}
}

func TestChunkConverter(t *testing.T) {
	cases := []struct {
		name         string
		includeUsage bool
		in           []*llm.Chunk
		want         []*pb.StreamChatCompletionResponse // nil entries: chunk dropped
	}{
		{
			name: "role on each choice's first delta, id and created fixed at the first chunk",
			in: []*llm.Chunk{
				{ID: "c-1", Created: 100, Model: "m-1", Choices: []llm.ChunkChoice{{Index: 0, Content: llm.Ptr("a")}, {Index: 1, Content: llm.Ptr("b")}}},
				{ID: "c-2", Created: 200, Choices: []llm.ChunkChoice{{Index: 0, Content: llm.Ptr("c"), FinishReason: "stop"}}},
			},
			want: []*pb.StreamChatCompletionResponse{
				{Id: "c-1", Object: "chat.completion.chunk", Created: 100, Model: "m-1", Choices: []*pb.ChunkChoice{
					{Index: 0, Delta: &pb.Delta{Role: "assistant", Content: llm.Ptr("a")}},
					{Index: 1, Delta: &pb.Delta{Role: "assistant", Content: llm.Ptr("b")}},
				}},
				{Id: "c-1", Object: "chat.completion.chunk", Created: 100, Model: "m-1", Choices: []*pb.ChunkChoice{
					{Index: 0, Delta: &pb.Delta{Content: llm.Ptr("c")}, FinishReason: "stop"},
				}},
			},
		},
		{
			name: "tool call deltas name the type on the first piece",
			in: []*llm.Chunk{
				{ID: "c", Created: 1, Choices: []llm.ChunkChoice{{Role: "assistant", ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "call_1", Name: "f"}}}}},
				{ID: "c", Created: 1, Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `{"x"`}}}}},
			},
			want: []*pb.StreamChatCompletionResponse{
				{Id: "c", Object: "chat.completion.chunk", Created: 1, Model: "up", Choices: []*pb.ChunkChoice{{Delta: &pb.Delta{Role: "assistant",
					ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "call_1", Type: "function", Function: &pb.FunctionCall{Name: "f"}}}}}}},
				{Id: "c", Object: "chat.completion.chunk", Created: 1, Model: "up", Choices: []*pb.ChunkChoice{{Delta: &pb.Delta{
					ToolCalls: []*pb.ToolCallDelta{{Index: 0, Function: &pb.FunctionCall{Arguments: `{"x"`}}}}}}},
			},
		},
		{
			name: "usage chunk dropped unless asked for",
			in: []*llm.Chunk{
				{ID: "c", Created: 1, Choices: []llm.ChunkChoice{{Content: llm.Ptr("a"), FinishReason: "stop"}}, Usage: &llm.Usage{TotalTokens: 3}},
				{ID: "c", Created: 1, Usage: &llm.Usage{TotalTokens: 3}},
				{ID: "c", Created: 1},
			},
			want: []*pb.StreamChatCompletionResponse{
				{Id: "c", Object: "chat.completion.chunk", Created: 1, Model: "up", Choices: []*pb.ChunkChoice{
					{Delta: &pb.Delta{Role: "assistant", Content: llm.Ptr("a")}, FinishReason: "stop"},
				}},
				nil,
				nil,
			},
		},
		{
			name:         "usage chunk forwarded when asked for",
			includeUsage: true,
			in: []*llm.Chunk{
				{ID: "c", Created: 1, Choices: []llm.ChunkChoice{{Content: llm.Ptr("a")}}},
				{Usage: &llm.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}},
			},
			want: []*pb.StreamChatCompletionResponse{
				{Id: "c", Object: "chat.completion.chunk", Created: 1, Model: "up", Choices: []*pb.ChunkChoice{
					{Delta: &pb.Delta{Role: "assistant", Content: llm.Ptr("a")}},
				}},
				{Id: "c", Object: "chat.completion.chunk", Created: 1, Model: "up", Usage: &pb.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3,
					PromptTokensDetails: &pb.PromptTokensDetails{}, CompletionTokensDetails: &pb.CompletionTokensDetails{}}},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cv := chunkConverter{includeUsage: c.includeUsage, model: "up"}
			for i, in := range c.in {
				got := cv.convert(in)
				if diff := cmp.Diff(c.want[i], got, protocmp.Transform()); diff != "" {
					t.Errorf("chunk %d mismatch (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestChunkConverterFillsIDAndCreated(t *testing.T) {
	cv := chunkConverter{model: "up"}
	first := cv.convert(&llm.Chunk{Choices: []llm.ChunkChoice{{Content: llm.Ptr("a")}}})
	second := cv.convert(&llm.Chunk{Choices: []llm.ChunkChoice{{Content: llm.Ptr("b")}}})
	if first.Id == "" || first.Id != second.Id || first.Created == 0 || first.Created != second.Created {
		t.Errorf("ids %q/%q, created %d/%d; want one generated id and time for the whole stream", first.Id, second.Id, first.Created, second.Created)
	}
}
