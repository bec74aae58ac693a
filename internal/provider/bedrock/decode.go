package bedrock

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/switchyard/switchyard/internal/llm"
)

// finishReason maps Converse's stopReason onto the canonical finish reasons.
func finishReason(r types.StopReason) string {
	switch r {
	case types.StopReasonToolUse:
		return llm.FinishToolCalls
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return llm.FinishLength
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		return llm.FinishContentFilter
	default: // end_turn, stop_sequence, malformed output
		return llm.FinishStop
	}
}

// usage converts Bedrock's token usage. inputTokens excludes prompt-cache reads and writes,
// which count in the prompt here, as in OpenAI's prompt_tokens; cache reads are CachedTokens.
func usage(u *types.TokenUsage) *llm.Usage {
	if u == nil {
		return nil
	}
	in, out := deref32(u.InputTokens), deref32(u.OutputTokens)
	cr, cw := deref32(u.CacheReadInputTokens), deref32(u.CacheWriteInputTokens)
	r := &llm.Usage{PromptTokens: in + cr + cw, CompletionTokens: out, CachedTokens: cr, TotalTokens: deref32(u.TotalTokens)}
	if r.TotalTokens == 0 {
		r.TotalTokens = r.PromptTokens + r.CompletionTokens
	}
	return r
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// responseID names an answer after Bedrock's request id (Converse has no answer id).
func responseID(md middleware.Metadata) string {
	if id, ok := awsmiddleware.GetRequestIDMetadata(md); ok && id != "" {
		return "chatcmpl-" + id
	}
	return fmt.Sprintf("chatcmpl-bedrock-%d", time.Now().UnixNano())
}

func decodeResponse(model string, out *bedrockruntime.ConverseOutput) (*llm.ChatResponse, error) {
	ch := llm.Choice{FinishReason: finishReason(out.StopReason)}
	var text, reasoning, signature string
	if m, ok := out.Output.(*types.ConverseOutputMemberMessage); ok {
		for _, b := range m.Value.Content {
			switch b := b.(type) {
			case *types.ContentBlockMemberText:
				text += b.Value
			case *types.ContentBlockMemberToolUse:
				args := "{}"
				if b.Value.Input != nil {
					raw, err := b.Value.Input.MarshalSmithyDocument()
					if err != nil {
						return nil, llm.Wrap(llm.KindUpstream, fmt.Errorf("bedrock: tool input: %w", err), "the upstream provider sent an invalid answer")
					}
					args = string(raw)
				}
				ch.ToolCalls = append(ch.ToolCalls, llm.ToolCall{ID: str(b.Value.ToolUseId), Name: str(b.Value.Name), Arguments: args})
			case *types.ContentBlockMemberReasoningContent:
				if rt, ok := b.Value.(*types.ReasoningContentBlockMemberReasoningText); ok {
					reasoning += str(rt.Value.Text)
					signature += str(rt.Value.Signature)
				}
			}
		}
	}
	if text != "" || len(ch.ToolCalls) == 0 {
		ch.Content = &text
	}
	if reasoning != "" {
		ch.ReasoningContent = &reasoning
		ch.ReasoningSignature = signature
	}
	return &llm.ChatResponse{ID: responseID(out.ResultMetadata), Model: model, Created: time.Now().Unix(),
		Choices: []llm.Choice{ch}, Usage: usage(out.Usage)}, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// stream turns ConverseStream events into chunks: messageStart gives the role, text and
// reasoning deltas give content, a toolUse contentBlockStart opens a tool call (its content
// block index mapped to the call's index) whose input deltas follow, messageStop gives the
// finish reason and the metadata event the usage chunk.
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	provider string
	model    string
	id       string
	created  int64
	es       *bedrockruntime.ConverseStreamEventStream
	tools    map[int32]int32 // content block index → tool call index
	sig      string          // reasoning signature, sent with the finish reason
	role     bool            // the role was sent
	stopped  bool            // messageStop was seen: an end of the stream after it is complete
	err      error           // sticky: the error or io.EOF that ended the stream
	once     sync.Once
}

func newStream(ctx context.Context, cancel context.CancelFunc, provider, model string, out *bedrockruntime.ConverseStreamOutput) *stream {
	return &stream{ctx: ctx, cancel: cancel, provider: provider, model: model, id: responseID(out.ResultMetadata),
		created: time.Now().Unix(), es: out.GetStream(), tools: map[int32]int32{}}
}

func (s *stream) chunk(c llm.ChunkChoice) *llm.Chunk {
	if !s.role {
		c.Role, s.role = llm.RoleAssistant, true
	}
	return &llm.Chunk{ID: s.id, Model: s.model, Created: s.created, Choices: []llm.ChunkChoice{c}}
}

func (s *stream) Recv() (*llm.Chunk, error) {
	for s.err == nil {
		var ev types.ConverseStreamOutput
		var ok bool
		if s.ctx.Err() != nil { // a cancellation wins over events already decoded
			s.err = classify(s.ctx, s.provider, s.ctx.Err(), true)
			s.Close()
			return nil, s.err
		}
		select {
		case ev, ok = <-s.es.Events():
		case <-s.ctx.Done():
			s.err = classify(s.ctx, s.provider, s.ctx.Err(), true)
			s.Close()
			return nil, s.err
		}
		if !ok {
			if err := s.es.Err(); err != nil || s.ctx.Err() != nil {
				if err == nil {
					err = s.ctx.Err()
				}
				s.err = classify(s.ctx, s.provider, err, true)
			} else if !s.stopped {
				e := llm.Wrap(llm.KindUpstream, fmt.Errorf("bedrock: the event stream ended before messageStop"), "the upstream provider's stream broke")
				e.Provider = s.provider
				s.err = e
			} else {
				s.err = io.EOF
			}
			s.Close()
			return nil, s.err
		}
		if c := s.event(ev); c != nil {
			return c, nil
		}
	}
	return nil, s.err
}

// event converts one event; nil when it carries nothing for the client.
func (s *stream) event(ev types.ConverseStreamOutput) *llm.Chunk {
	switch e := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		if s.role {
			return nil
		}
		return s.chunk(llm.ChunkChoice{})
	case *types.ConverseStreamOutputMemberContentBlockStart:
		tu, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse)
		if !ok {
			return nil
		}
		idx := int32(len(s.tools))
		s.tools[deref32(e.Value.ContentBlockIndex)] = idx
		return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: idx, ID: str(tu.Value.ToolUseId), Name: str(tu.Value.Name)}}})
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := e.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			return s.chunk(llm.ChunkChoice{Content: &d.Value})
		case *types.ContentBlockDeltaMemberToolUse:
			idx, ok := s.tools[deref32(e.Value.ContentBlockIndex)]
			if !ok || d.Value.Input == nil || *d.Value.Input == "" {
				return nil
			}
			return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: idx, Arguments: *d.Value.Input}}})
		case *types.ContentBlockDeltaMemberReasoningContent:
			switch r := d.Value.(type) {
			case *types.ReasoningContentBlockDeltaMemberText:
				return s.chunk(llm.ChunkChoice{ReasoningContent: &r.Value})
			case *types.ReasoningContentBlockDeltaMemberSignature:
				s.sig += r.Value
			}
		}
		return nil
	case *types.ConverseStreamOutputMemberMessageStop:
		s.stopped = true
		return s.chunk(llm.ChunkChoice{FinishReason: finishReason(e.Value.StopReason), ReasoningSignature: s.sig})
	case *types.ConverseStreamOutputMemberMetadata:
		if u := usage(e.Value.Usage); u != nil {
			return &llm.Chunk{ID: s.id, Model: s.model, Created: s.created, Usage: u}
		}
	}
	return nil
}

// Close releases the upstream connection. Safe to call more than once.
func (s *stream) Close() error {
	s.once.Do(func() {
		s.es.Close()
		s.cancel()
		if s.err == nil {
			s.err = io.EOF
		}
	})
	return nil
}
