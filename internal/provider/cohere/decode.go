package cohere

import (
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// finishReason maps a Cohere finish_reason onto the canonical set: COMPLETE and STOP_SEQUENCE
// are stop (tool_calls when the answer made calls), MAX_TOKENS length, TOOL_CALL tool_calls.
// ERROR and TIMEOUT are errors (streamError), not reasons; unknown reasons end as stop.
func finishReason(reason string, calls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return llm.FinishLength
	case "TOOL_CALL":
		return llm.FinishToolCalls
	}
	if calls {
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

// decodeUsage maps usage: tokens holds the counts the model saw; billed_units (what Cohere
// bills, which can exclude system tokens) is the fallback when tokens is absent.
func decodeUsage(u *usage) *llm.Usage {
	if u == nil {
		return nil
	}
	out := &llm.Usage{CachedTokens: int32(u.CachedTokens)}
	switch {
	case u.Tokens != nil:
		out.PromptTokens, out.CompletionTokens = int32(u.Tokens.InputTokens), int32(u.Tokens.OutputTokens)
	case u.BilledUnits != nil:
		out.PromptTokens, out.CompletionTokens = int32(u.BilledUnits.InputTokens), int32(u.BilledUnits.OutputTokens)
	default:
		return nil
	}
	out.TotalTokens = out.PromptTokens + out.CompletionTokens
	return out
}

// decodeResponse converts a complete ChatResponseV2. Text parts are concatenated into the
// content; thinking parts, then the tool plan, into reasoning_content. Citations are not
// carried (the canonical answer has no annotations): the text is unchanged.
func decodeResponse(w *chatResponse, model string, created int64) *llm.ChatResponse {
	ch := llm.Choice{}
	var text, reasoning strings.Builder
	var hasText bool
	if m := w.Message; m != nil {
		for _, p := range m.Content {
			switch {
			case p.Type == "thinking" && p.Thinking != nil:
				reasoning.WriteString(*p.Thinking)
			case p.Text != nil:
				text.WriteString(*p.Text)
				hasText = true
			}
		}
		if m.ToolPlan != "" {
			if reasoning.Len() > 0 {
				reasoning.WriteString("\n")
			}
			reasoning.WriteString(m.ToolPlan)
		}
		for _, tc := range m.ToolCalls {
			args := tc.Function.Arguments
			if args == "" {
				args = "{}"
			}
			ch.ToolCalls = append(ch.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args})
		}
	}
	if hasText {
		ch.Content = llm.Ptr(text.String())
	}
	if reasoning.Len() > 0 {
		ch.ReasoningContent = llm.Ptr(reasoning.String())
	}
	ch.FinishReason = finishReason(w.FinishReason, len(ch.ToolCalls) > 0)
	return &llm.ChatResponse{ID: w.ID, Model: model, Created: created, Choices: []llm.Choice{ch}, Usage: decodeUsage(w.Usage)}
}
