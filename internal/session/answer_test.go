package session_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/session"
)

func TestAnswerBuilderMatchesAnswerMessage(t *testing.T) {
	chunks := []*llm.Chunk{
		{Choices: []llm.ChunkChoice{{Role: "assistant", ReasoningContent: llm.Ptr("think ")}}},
		{Choices: []llm.ChunkChoice{{ReasoningContent: llm.Ptr("hard")}, {Index: 1, Content: llm.Ptr("other choice")}}},
		{Choices: []llm.ChunkChoice{{Content: llm.Ptr("Hel")}}},
		{Choices: []llm.ChunkChoice{{Content: llm.Ptr("lo")}}},
		{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "a", Name: "f"}, {Index: 1, ID: "b", Name: "g", Arguments: "{"}}}}},
		{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: "{}"}, {Index: 1, Arguments: "}"}}}}},
		{Choices: []llm.ChunkChoice{{FinishReason: "tool_calls", ReasoningSignature: "sig"}}},
		{Usage: &llm.Usage{TotalTokens: 3}},
	}
	var b session.AnswerBuilder
	for _, c := range chunks {
		b.Add(c)
	}
	whole := &llm.ChatResponse{Choices: []llm.Choice{
		{Index: 1, Content: llm.Ptr("other choice")},
		{Index: 0, Content: llm.Ptr("Hello"), ReasoningContent: llm.Ptr("think hard"), ReasoningSignature: "sig",
			ToolCalls: []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g", Arguments: "{}"}}},
	}}
	if diff := cmp.Diff(session.AnswerMessage(whole), b.Message()); diff != "" {
		t.Errorf("streamed answer differs from the blocking one (-blocking +streamed):\n%s", diff)
	}
	if m := b.Message(); m.Role != llm.RoleAssistant || m.Text() != "Hello" || len(m.ToolCalls) != 2 {
		t.Errorf("message = %+v; want the assistant's text and both calls", m)
	}
}

func TestAnswerMessageRefusal(t *testing.T) {
	m := session.AnswerMessage(&llm.ChatResponse{Choices: []llm.Choice{{Refusal: llm.Ptr("no")}}})
	if m.Text() != "no" {
		t.Errorf("refusal answer text = %q; want no", m.Text())
	}
	var b session.AnswerBuilder
	b.Add(&llm.Chunk{Choices: []llm.ChunkChoice{{Refusal: llm.Ptr("no")}}})
	if diff := cmp.Diff(m, b.Message()); diff != "" {
		t.Errorf("streamed refusal differs (-blocking +streamed):\n%s", diff)
	}
}
