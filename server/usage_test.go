package server

import (
	"context"
	"testing"

	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
)

func TestAnswerSize(t *testing.T) {
	var streamed answerSize
	for _, c := range []*llm.Chunk{
		{Choices: []llm.ChunkChoice{{Role: "assistant", Content: llm.Ptr("hello ")}}},
		{Choices: []llm.ChunkChoice{{ReasoningContent: llm.Ptr("hmm"), ToolCalls: []llm.ToolCallDelta{{Name: "get", Arguments: `{"a":`}}}}},
		{Choices: []llm.ChunkChoice{{ToolCalls: []llm.ToolCallDelta{{Arguments: `1}`}}}, {Index: 1, Refusal: llm.Ptr("no")}}},
		{Usage: &llm.Usage{TotalTokens: 3}},
	} {
		streamed.addChunk(c)
	}
	if want := answerSize(len("hello ") + len("hmm") + len("get") + len(`{"a":1}`) + len("no")); streamed != want {
		t.Errorf("streamed size %d, want %d", streamed, want)
	}
	var whole answerSize
	whole.addResponse(&llm.ChatResponse{Choices: []llm.Choice{
		{Content: llm.Ptr("hello "), ReasoningContent: llm.Ptr("hmm"), ToolCalls: []llm.ToolCall{{ID: "c1", Name: "get", Arguments: `{"a":1}`}}},
		{Index: 1, Refusal: llm.Ptr("no")},
	}})
	if whole != streamed {
		t.Errorf("response size %d, want %d as streamed", whole, streamed)
	}
}

func TestRecordUsage(t *testing.T) {
	prompt := router.Estimate{PromptTokens: 10, MaxTokens: 100}
	cases := []struct {
		name     string
		reported *llm.Usage
		answer   answerSize
		want     llm.Usage
	}{
		{"reported", &llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}, 400, llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}},
		{"total only", &llm.Usage{TotalTokens: 5}, 400, llm.Usage{TotalTokens: 5}},
		{"none", nil, 9, llm.Usage{PromptTokens: 10, CompletionTokens: 3, TotalTokens: 13, Estimated: true}},
		{"all zero", &llm.Usage{}, 0, llm.Usage{PromptTokens: 10, TotalTokens: 10, Estimated: true}},
	}
	for _, c := range cases {
		_, call := callinfo.NewContext(context.Background(), "r")
		recordUsage(call, c.reported, prompt, c.answer)
		if info := call.Info(); !info.HasUsage || info.Usage != c.want {
			t.Errorf("%s: usage %+v (has %v), want %+v", c.name, info.Usage, info.HasUsage, c.want)
		}
	}
}
