package server

import (
	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
)

// answerSize counts the characters of an answer's text (content, reasoning, refusal, tool call
// names and arguments) for estimating its tokens when the upstream reports no usage. It keeps
// the count only, never the text, so counting a stream costs nothing per chunk but the adds.
type answerSize int

// addText counts the texts that are set.
func (n *answerSize) addText(texts ...*string) {
	for _, s := range texts {
		if s != nil {
			*n += answerSize(len(*s))
		}
	}
}

// addChunk counts the text of every choice of c.
func (n *answerSize) addChunk(c *llm.Chunk) {
	for i := range c.Choices {
		ch := &c.Choices[i]
		n.addText(ch.Content, ch.ReasoningContent, ch.Refusal)
		for _, tc := range ch.ToolCalls {
			*n += answerSize(len(tc.Name) + len(tc.Arguments))
		}
	}
}

// addResponse counts the text of every choice of r.
func (n *answerSize) addResponse(r *llm.ChatResponse) {
	for _, ch := range r.Choices {
		n.addText(ch.Content, ch.ReasoningContent, ch.Refusal)
		for j := range ch.ToolCalls {
			n.addText(&ch.ToolCalls[j].Name, &ch.ToolCalls[j].Arguments)
		}
	}
}

// recordUsage records the usage of an answered chat request in the call's record, the one
// place audit and limits read it from. u is the usage the upstream reported; when it reported
// none (nil, or a report whose counts are all zero, which some compatible servers send), the usage is estimated and marked so: the prompt as the router estimated it from the
// request, the completion from the answer's size, both at about 4 characters a token.
func recordUsage(call *callinfo.Record, u *llm.Usage, prompt router.Estimate, answer answerSize) {
	if u != nil && (u.PromptTokens > 0 || u.CompletionTokens > 0 || u.TotalTokens > 0) {
		call.SetUsage(*u)
		return
	}
	p, c := int32(prompt.PromptTokens), int32(llm.TokensForChars(int(answer)))
	call.SetUsage(llm.Usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c, Estimated: true})
}
