package server

import (
	"testing"

	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
)

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
