package session

import (
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// AnswerMessage is the assistant message a session keeps of a blocking answer: its first choice
// (index 0) with text (or the refusal when there is no text), reasoning and its signature, and
// tool calls.
func AnswerMessage(r *llm.ChatResponse) llm.Message {
	m := llm.Message{Role: llm.RoleAssistant}
	if r == nil || len(r.Choices) == 0 {
		return m
	}
	c := &r.Choices[0]
	for i := range r.Choices {
		if r.Choices[i].Index == 0 {
			c = &r.Choices[i]
			break
		}
	}
	if c.Content != nil {
		m.Content = []llm.Part{{Type: llm.PartText, Text: *c.Content}}
	} else if c.Refusal != nil {
		m.Content = []llm.Part{{Type: llm.PartText, Text: *c.Refusal}}
	}
	if c.ReasoningContent != nil {
		m.ReasoningContent = *c.ReasoningContent
	}
	m.ReasoningSignature = c.ReasoningSignature
	m.ToolCalls = c.ToolCalls
	return m
}

// AnswerBuilder accumulates a streamed answer's first choice (index 0) into the message that
// AnswerMessage makes of the same answer unstreamed. The zero value is ready to use; it is not
// safe for concurrent use.
type AnswerBuilder struct {
	text, refusal, reasoning strings.Builder
	hasText, hasRefusal      bool
	signature                string
	calls                    []llm.ToolCall
	callIndex                []int32 // the stream's index of each entry of calls
}

// Add adds a chunk of the stream.
func (b *AnswerBuilder) Add(c *llm.Chunk) {
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		if ch.Content != nil {
			b.hasText = true
			b.text.WriteString(*ch.Content)
		}
		if ch.Refusal != nil {
			b.hasRefusal = true
			b.refusal.WriteString(*ch.Refusal)
		}
		if ch.ReasoningContent != nil {
			b.reasoning.WriteString(*ch.ReasoningContent)
		}
		if ch.ReasoningSignature != "" {
			b.signature = ch.ReasoningSignature
		}
		for _, d := range ch.ToolCalls {
			b.addCall(d)
		}
	}
}

func (b *AnswerBuilder) addCall(d llm.ToolCallDelta) {
	for i, idx := range b.callIndex {
		if idx == d.Index {
			tc := &b.calls[i]
			if d.ID != "" {
				tc.ID = d.ID
			}
			if d.Name != "" {
				tc.Name = d.Name
			}
			tc.Arguments += d.Arguments
			return
		}
	}
	b.callIndex = append(b.callIndex, d.Index)
	b.calls = append(b.calls, llm.ToolCall{ID: d.ID, Name: d.Name, Arguments: d.Arguments})
}

// Message returns the answer accumulated so far.
func (b *AnswerBuilder) Message() llm.Message {
	m := llm.Message{Role: llm.RoleAssistant, ReasoningContent: b.reasoning.String(),
		ReasoningSignature: b.signature, ToolCalls: b.calls}
	switch {
	case b.hasText && (b.text.Len() > 0 || !b.hasRefusal):
		m.Content = []llm.Part{{Type: llm.PartText, Text: b.text.String()}}
	case b.hasRefusal:
		m.Content = []llm.Part{{Type: llm.PartText, Text: b.refusal.String()}}
	}
	return m
}
