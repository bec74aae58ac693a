package anthropic

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// finishReason maps a stop_reason to a canonical finish reason: end_turn, stop_sequence and
// pause_turn (a long server-tool turn the client may continue by sending it back) → stop;
// max_tokens and model_context_window_exceeded → length; tool_use → tool_calls; refusal →
// content_filter. Unknown reasons are stop; "" (no reason yet) stays "".
func finishReason(stop string) string {
	switch stop {
	case "":
		return ""
	case "max_tokens", "model_context_window_exceeded":
		return llm.FinishLength
	case "tool_use":
		return llm.FinishToolCalls
	case "refusal":
		return llm.FinishContentFilter
	}
	return llm.FinishStop
}

func val(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// decodeUsage converts usage. Anthropic's input_tokens excludes cache reads and writes, so the
// canonical prompt count adds them; cache reads are the cached tokens.
func decodeUsage(u *usage) *llm.Usage {
	out := &llm.Usage{
		PromptTokens:     val(u.InputTokens) + val(u.CacheCreationInputTokens) + val(u.CacheReadInputTokens),
		CompletionTokens: val(u.OutputTokens),
		CachedTokens:     val(u.CacheReadInputTokens),
	}
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	return out
}

// merge overlays the fields d carries onto u (message_delta's cumulative counts over message_start's).
func (u *usage) merge(d *usage) {
	if d == nil {
		return
	}
	over := func(dst **int32, src *int32) {
		if src != nil {
			*dst = src
		}
	}
	over(&u.InputTokens, d.InputTokens)
	over(&u.OutputTokens, d.OutputTokens)
	over(&u.CacheCreationInputTokens, d.CacheCreationInputTokens)
	over(&u.CacheReadInputTokens, d.CacheReadInputTokens)
}

// toolArguments renders a tool_use input as the canonical JSON text ("{}" when absent).
func toolArguments(input json.RawMessage) string {
	if len(bytes.TrimSpace(input)) == 0 {
		return "{}"
	}
	var b bytes.Buffer
	if json.Compact(&b, input) != nil {
		return string(input)
	}
	return b.String()
}

// decodeResponse converts a blocking answer: text blocks make Content (nil when there are
// none), thinking blocks ReasoningContent and ReasoningSignature, tool_use blocks ToolCalls.
// Other block types (server tools, citations) are not represented and left out.
func decodeResponse(w *messageResponse, created int64) *llm.ChatResponse {
	ch := llm.Choice{FinishReason: finishReason(w.StopReason)}
	var text, reasoning strings.Builder
	var hasText, hasReasoning bool
	var thoughts []block
	for i := range w.Content {
		b := &w.Content[i]
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
			hasText = true
		case "thinking":
			if b.Thinking != nil {
				reasoning.WriteString(*b.Thinking)
			}
			hasReasoning = true
			thoughts = append(thoughts, *b)
		case "redacted_thinking":
			thoughts = append(thoughts, *b)
		case "tool_use":
			ch.ToolCalls = append(ch.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: toolArguments(b.Input)})
		}
	}
	if hasText {
		ch.Content = llm.Ptr(text.String())
	}
	if hasReasoning {
		ch.ReasoningContent = llm.Ptr(reasoning.String())
	}
	ch.ReasoningSignature = encodeSignature(thoughts)
	return &llm.ChatResponse{ID: w.ID, Model: w.Model, Created: created, Choices: []llm.Choice{ch}, Usage: decodeUsage(&w.Usage)}
}
