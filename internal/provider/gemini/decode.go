package gemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// finishReason maps a Gemini finishReason onto the canonical set. A function call ends with
// STOP, so calls decides between stop and tool_calls. Reasons about blocked content (text or
// image) are content_filter. The rest (FINISH_REASON_UNSPECIFIED, OTHER, LANGUAGE,
// MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, NO_IMAGE, IMAGE_OTHER
// and reasons added later) end the answer without a better canonical name: stop, or
// tool_calls when calls were made. An empty reason means the candidate is not finished.
func finishReason(reason string, calls bool) string {
	switch reason {
	case "":
		return ""
	case "MAX_TOKENS":
		return llm.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return llm.FinishContentFilter
	}
	if calls {
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

// decodeUsage maps usageMetadata: the prompt includes tool-use prompt tokens, the completion
// includes thoughts (candidatesTokenCount excludes them).
func decodeUsage(u *usageMetadata) *llm.Usage {
	if u == nil {
		return nil
	}
	out := &llm.Usage{
		PromptTokens:     u.PromptTokenCount + u.ToolUsePromptTokenCount,
		CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		TotalTokens:      u.TotalTokenCount,
		CachedTokens:     u.CachedContentTokenCount,
		ReasoningTokens:  u.ThoughtsTokenCount,
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// callID returns the canonical id of a function call: Gemini's own id when it sent one, else
// one derived from the response id, the candidate, the call's position and the call itself,
// so that the same answer always yields the same ids. The thought signature, if any, is
// appended (see joinCallID).
func callID(responseID string, cand int32, n int, p *part) string {
	id := p.FunctionCall.ID
	if id == "" {
		h := sha256.New()
		h.Write([]byte(responseID))
		var idx [8]byte
		binary.BigEndian.PutUint32(idx[:4], uint32(cand))
		binary.BigEndian.PutUint32(idx[4:], uint32(n))
		h.Write(idx[:])
		h.Write([]byte(p.FunctionCall.Name))
		h.Write([]byte{0})
		h.Write([]byte(callArguments(p.FunctionCall.Args))) // compact: layout does not change the id
		id = "call_" + hex.EncodeToString(h.Sum(nil)[:12])
	}
	return joinCallID(id, p.ThoughtSignature)
}

// callArguments renders functionCall.args as the canonical JSON text ("{}" when absent).
func callArguments(args json.RawMessage) string {
	args = bytes.TrimSpace(args)
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, args) != nil {
		return string(args)
	}
	return buf.String()
}

// blocked returns the business error for a prompt Gemini refused to answer
// (promptFeedback.blockReason with no candidates), or nil.
func blocked(providerName string, w *generateResponse) *llm.Error {
	if len(w.Candidates) > 0 || w.PromptFeedback == nil || w.PromptFeedback.BlockReason == "" {
		return nil
	}
	return &llm.Error{
		Kind:            llm.KindBusiness,
		Code:            "content_filter",
		Message:         "the prompt was blocked by the provider's content policy (" + w.PromptFeedback.BlockReason + ")",
		Provider:        providerName,
		UpstreamStatus:  200,
		UpstreamMessage: "promptFeedback.blockReason: " + w.PromptFeedback.BlockReason,
	}
}

// decodeResponse converts a complete GenerateContentResponse. model is the requested model,
// used when the answer names no modelVersion.
func decodeResponse(w *generateResponse, model string, created int64) *llm.ChatResponse {
	out := &llm.ChatResponse{ID: w.ResponseID, Model: w.ModelVersion, Created: created, Usage: decodeUsage(w.UsageMetadata)}
	if out.Model == "" {
		out.Model = model
	}
	out.Choices = make([]llm.Choice, 0, len(w.Candidates))
	for i := range w.Candidates {
		c := &w.Candidates[i]
		var text, thought strings.Builder
		var hasText, hasThought bool
		ch := llm.Choice{Index: c.Index}
		if c.Content != nil {
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				switch {
				case p.FunctionCall != nil:
					ch.ToolCalls = append(ch.ToolCalls, llm.ToolCall{
						ID: callID(w.ResponseID, c.Index, len(ch.ToolCalls), p), Name: p.FunctionCall.Name,
						Arguments: callArguments(p.FunctionCall.Args),
					})
				case p.Text == nil:
				case p.Thought:
					thought.WriteString(*p.Text)
					hasThought = true
				default:
					text.WriteString(*p.Text)
					hasText = true
				}
			}
		}
		if hasText {
			ch.Content = llm.Ptr(text.String())
		}
		if hasThought {
			ch.ReasoningContent = llm.Ptr(thought.String())
		}
		reason := c.FinishReason
		if reason == "" {
			reason = "STOP" // a complete answer is finished even if the reason is missing
		}
		ch.FinishReason = finishReason(reason, len(ch.ToolCalls) > 0)
		out.Choices = append(out.Choices, ch)
	}
	return out
}
