package session

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchyard/switchyard/internal/llm"
)

func TestTrimHistory(t *testing.T) {
	text := func(role string, n int) Entry {
		return Entry{Message: llm.TextMessage(role, strings.Repeat("x", n))}
	}
	call := Entry{Message: llm.Message{Role: llm.RoleAssistant,
		ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: strings.Repeat("a", 28)}}}}
	result := Entry{Message: llm.Message{Role: llm.RoleTool, ToolCallID: "c1", Content: []llm.Part{{Type: llm.PartText, Text: "ok"}}}}
	// Tokens: user/assistant text of n chars costs (len(role)+n+3)/4.
	hist := []Entry{
		text(llm.RoleUser, 36),      // 0: 10
		text(llm.RoleAssistant, 31), // 1: 10
		text(llm.RoleUser, 36),      // 2: 10
		call,                        // 3: 10
		result,                      // 4: 2
		text(llm.RoleAssistant, 31), // 5: 10
		text(llm.RoleUser, 36),      // 6: 10
		text(llm.RoleAssistant, 31), // 7: 10
	}
	cases := []struct {
		name   string
		budget int
		want   int // index of the first kept entry
	}{
		{"no limit", -1, 0},
		{"everything fits", 72, 0},
		{"one short of everything", 71, 2},
		{"the tool exchange stays whole", 35, 6},
		{"still not the tool turn", 51, 6},
		{"the tool turn fits", 52, 2},
		{"newest turn only", 20, 6},
		{"not even the newest turn", 19, 8},
		{"zero", 0, 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := trimHistory(hist, c.budget)
			if len(hist)-len(got) != c.want {
				t.Errorf("trimHistory(budget %d) keeps from %d; want %d", c.budget, len(hist)-len(got), c.want)
			}
		})
	}
}

func TestEstimateTokens(t *testing.T) {
	cases := []struct {
		m    llm.Message
		want int
	}{
		{llm.TextMessage("user", "abcd"), 2},  // 8 chars
		{llm.TextMessage("user", "abcde"), 3}, // 9 chars, rounded up
		{llm.Message{Role: "tool", ToolCallID: "id", Content: []llm.Part{{Type: llm.PartText, Text: "12"}}}, 2},
		{llm.Message{Role: "assistant", ReasoningContent: "r", ToolCalls: []llm.ToolCall{{ID: "i", Name: "n", Arguments: "{}"}}}, 4},
		{llm.Message{Role: "user", Content: []llm.Part{{Type: llm.PartImageURL, ImageURL: "data:12345678"}}}, 5},
	}
	for _, c := range cases {
		if got := estimateTokens(&c.m); got != c.want {
			t.Errorf("estimateTokens(%+v) = %d; want %d", c.m, got, c.want)
		}
	}
}

func TestMergeParams(t *testing.T) {
	p := Params{Temperature: llm.Ptr(0.1), TopP: llm.Ptr(0.5), MaxTokens: llm.Ptr[int32](9), Stop: []string{"S"},
		PresencePenalty: llm.Ptr(1.0), FrequencyPenalty: llm.Ptr(-1.0), Seed: llm.Ptr[int64](3), ReasoningEffort: "low"}
	empty := &llm.ChatRequest{}
	mergeParams(empty, &p)
	want := &llm.ChatRequest{Temperature: p.Temperature, TopP: p.TopP, MaxTokens: p.MaxTokens, Stop: p.Stop,
		PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty, Seed: p.Seed, ReasoningEffort: "low"}
	if diff := cmp.Diff(want, empty); diff != "" {
		t.Errorf("merged into an empty request (-want +got):\n%s", diff)
	}
	full := &llm.ChatRequest{Temperature: llm.Ptr(1.5), TopP: llm.Ptr(0.9), MaxTokens: llm.Ptr[int32](100), Stop: []string{"R"},
		PresencePenalty: llm.Ptr(0.0), FrequencyPenalty: llm.Ptr(0.0), Seed: llm.Ptr[int64](7), ReasoningEffort: "high"}
	before := *full
	mergeParams(full, &p)
	if diff := cmp.Diff(&before, full); diff != "" {
		t.Errorf("request values must win (-want +got):\n%s", diff)
	}
}
