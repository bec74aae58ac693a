package providertest

import (
	"net/http"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

// reasoning checks that reasoning text reaches ReasoningContent, separate from the answer, on
// both paths. Wires of providers whose protocol has no reasoning skip "reasoning".
func (s *suite) reasoning(t *testing.T) {
	m := s.h.Model
	const thought, answer = "The user greets me; greet back.", "Hello."
	p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
		if !c.Stream {
			resp := textResponse(m, answer, llm.FinishStop, testUsage)
			resp.Choices[0].ReasoningContent = llm.Ptr(thought)
			s.h.Wire.WriteChat(w, resp)
			return
		}
		s.writeStream(w, []*llm.Chunk{
			{ID: "chatcmpl-test", Model: m, Created: 1767225600, Choices: []llm.ChunkChoice{{Role: llm.RoleAssistant, ReasoningContent: llm.Ptr(thought[:10])}}},
			{ID: "chatcmpl-test", Model: m, Created: 1767225600, Choices: []llm.ChunkChoice{{ReasoningContent: llm.Ptr(thought[10:])}}},
			textChunk(m, "", answer), finishChunk(m, llm.FinishStop), usageChunk(m, testUsage),
		})
	})
	resp, err := p.Chat(testContext(t), s.chatRequest())
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	ch := resp.Choices[0]
	if ch.ReasoningContent == nil || *ch.ReasoningContent != thought || ch.Content == nil || *ch.Content != answer {
		t.Errorf("blocking: reasoning %v content %v, want %q and %q", deref(ch.ReasoningContent), deref(ch.Content), thought, answer)
	}
	st, err := p.ChatStream(testContext(t), s.chatRequest())
	if err != nil {
		t.Fatalf("ChatStream: %v", err)
	}
	defer st.Close()
	a, err := Collect(st)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if a.Reasoning != thought || a.Content != answer {
		t.Errorf("streamed: reasoning %q content %q, want %q and %q", a.Reasoning, a.Content, thought, answer)
	}
	wantUsage(t, a.Usage)
}

// finishReasons checks that each canonical finish reason survives the native protocol, blocking
// and streamed. Subtests are named finish_reason/<reason>; a Wire whose protocol cannot express
// a reason lists "finish_reason/<reason>" in Skip.
func (s *suite) finishReasons(t *testing.T) {
	m := s.h.Model
	call := llm.ToolCall{ID: "call_fr1", Name: "get_weather", Arguments: `{"city":"Oslo"}`}
	for _, reason := range []string{llm.FinishStop, llm.FinishLength, llm.FinishToolCalls, llm.FinishContentFilter} {
		t.Run(reason, func(t *testing.T) {
			if s.skipped("finish_reason/" + reason) {
				t.Skip("skipped by the harness")
			}
			p, _ := s.upstream(t, func(w http.ResponseWriter, r *http.Request, c *Call) {
				choice := llm.Choice{Content: llm.Ptr("Partial answer"), FinishReason: reason}
				chunks := []*llm.Chunk{textChunk(m, llm.RoleAssistant, "Partial answer")}
				if reason == llm.FinishToolCalls {
					choice = llm.Choice{ToolCalls: []llm.ToolCall{call}, FinishReason: reason}
					chunks = []*llm.Chunk{toolChunk(m, llm.ToolCallDelta{ID: call.ID, Name: call.Name, Arguments: call.Arguments})}
				}
				if !c.Stream {
					s.h.Wire.WriteChat(w, &llm.ChatResponse{ID: "chatcmpl-test", Model: m, Created: 1767225600, Usage: testUsage, Choices: []llm.Choice{choice}})
					return
				}
				s.writeStream(w, append(chunks, finishChunk(m, reason), usageChunk(m, testUsage)))
			})
			req := s.chatRequest()
			req.Tools = []llm.Tool{weatherTool}
			resp, err := p.Chat(testContext(t), req)
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if got := resp.Choices[0].FinishReason; got != reason {
				t.Errorf("blocking finish = %q, want %q", got, reason)
			}
			st, err := p.ChatStream(testContext(t), req)
			if err != nil {
				t.Fatalf("ChatStream: %v", err)
			}
			defer st.Close()
			a, err := Collect(st)
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if a.FinishReason != reason {
				t.Errorf("streamed finish = %q, want %q", a.FinishReason, reason)
			}
		})
	}
}

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
