package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// maxEventSize bounds one SSE event (long tool-argument or thinking pieces are legitimate; an
// endless line is not).
const maxEventSize = 8 << 20

// blockState is what the stream remembers about one open content block.
type blockState struct {
	typ     string
	tool    int32 // canonical tool call index, for tool_use blocks
	hasArgs bool  // a non-empty input_json_delta was seen
	thought int   // index in stream.thoughts, for thinking blocks
}

// stream converts Anthropic's named SSE events into canonical chunks as they arrive: one chunk
// per event that carries something (message_start → the role, text_delta → content,
// thinking_delta → reasoning, tool_use start → a tool call's id and name, input_json_delta → an
// argument piece, message_delta → the finish reason and reasoning signature, message_stop → the
// usage chunk). ping and unknown events are skipped; an error event ends the stream with a
// classified error.
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	provider string
	status   int
	body     io.ReadCloser
	events   *wireutil.SSEReader

	id, model string
	created   int64
	usage     usage
	blocks    map[int]*blockState
	tools     int32   // tool calls started so far
	thoughts  []block // thinking blocks with their text so far, for the signature

	finished  bool  // message_delta carried a stop_reason
	usageSent bool  // the usage chunk went out
	err       error // sticky: io.EOF or the error that ended the stream
	once      sync.Once
}

func newStream(ctx context.Context, cancel context.CancelFunc, provider string, resp *http.Response, created int64) *stream {
	return &stream{
		ctx: ctx, cancel: cancel, provider: provider, status: resp.StatusCode, created: created,
		body: resp.Body, events: wireutil.NewSSEReader(resp.Body, maxEventSize), blocks: map[int]*blockState{},
	}
}

// Recv returns the next chunk, io.EOF after message_stop, or an *llm.Error: an error event sent
// by the upstream, a broken connection (KindUpstream), the end of ctx (KindCanceled, KindTimeout;
// checked before each event, so events already buffered are not delivered after a cancel).
func (s *stream) Recv() (*llm.Chunk, error) {
	for s.err == nil {
		if err := s.ctx.Err(); err != nil {
			s.err = wireutil.ClassifyTransport(s.ctx, s.provider, err, true)
			break
		}
		data, name, err := s.events.Next()
		if err != nil {
			return s.fail(err)
		}
		var ev event
		if err := json.Unmarshal(data, &ev); err != nil {
			s.err = s.badEvent(err)
			break
		}
		if ev.Type == "" {
			ev.Type = name
		}
		if c, err := s.handle(&ev); c != nil || err != nil {
			if err != nil {
				s.err = err
				break
			}
			return c, nil
		}
	}
	return nil, s.err
}

// handle converts one event; both results are nil for events that carry nothing.
func (s *stream) handle(ev *event) (*llm.Chunk, error) {
	switch ev.Type {
	case "message_start":
		if ev.Message == nil {
			return nil, s.badEvent(errors.New("message_start without a message"))
		}
		s.id, s.model = ev.Message.ID, ev.Message.Model
		s.usage.merge(&ev.Message.Usage)
		return s.chunk(llm.ChunkChoice{Role: llm.RoleAssistant, Content: llm.Ptr("")}), nil
	case "content_block_start":
		return s.blockStart(ev)
	case "content_block_delta":
		return s.blockDelta(ev)
	case "content_block_stop":
		b := s.blocks[ev.Index]
		delete(s.blocks, ev.Index)
		if b != nil && b.typ == "tool_use" && !b.hasArgs {
			return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: b.tool, Arguments: "{}"}}}), nil
		}
	case "message_delta":
		s.usage.merge(ev.Usage)
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			s.finished = true
			return s.chunk(llm.ChunkChoice{FinishReason: finishReason(ev.Delta.StopReason), ReasoningSignature: encodeSignature(s.thoughts)}), nil
		}
	case "message_stop":
		s.err = io.EOF
		return s.usageChunk(), nil
	case "error":
		return nil, classifyEvent(s.provider, s.status, ev.Error)
	}
	return nil, nil // ping, and event types added after this adapter was written
}

func (s *stream) blockStart(ev *event) (*llm.Chunk, error) {
	cb := ev.ContentBlock
	if cb == nil {
		return nil, s.badEvent(errors.New("content_block_start without a content_block"))
	}
	b := &blockState{typ: cb.Type}
	s.blocks[ev.Index] = b
	switch cb.Type {
	case "text":
		if cb.Text != "" {
			return s.chunk(llm.ChunkChoice{Content: llm.Ptr(cb.Text)}), nil
		}
	case "tool_use":
		b.tool = s.tools
		s.tools++
		return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: b.tool, ID: cb.ID, Name: cb.Name}}}), nil
	case "thinking":
		text := ""
		if cb.Thinking != nil {
			text = *cb.Thinking
		}
		b.thought = len(s.thoughts)
		s.thoughts = append(s.thoughts, block{Type: "thinking", Thinking: &text, Signature: cb.Signature})
		if text != "" {
			return s.chunk(llm.ChunkChoice{ReasoningContent: llm.Ptr(text)}), nil
		}
	case "redacted_thinking":
		s.thoughts = append(s.thoughts, block{Type: "redacted_thinking", Data: cb.Data})
	}
	return nil, nil
}

func (s *stream) blockDelta(ev *event) (*llm.Chunk, error) {
	d, b := ev.Delta, s.blocks[ev.Index]
	if d == nil || b == nil {
		return nil, s.badEvent(fmt.Errorf("content_block_delta for block %d, which is not open", ev.Index))
	}
	switch d.Type {
	case "text_delta":
		if d.Text != "" {
			return s.chunk(llm.ChunkChoice{Content: llm.Ptr(d.Text)}), nil
		}
	case "input_json_delta":
		if d.PartialJSON != "" && b.typ == "tool_use" {
			b.hasArgs = true
			return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: b.tool, Arguments: d.PartialJSON}}}), nil
		}
	case "thinking_delta":
		if d.Thinking != "" && b.typ == "thinking" {
			t := s.thoughts[b.thought].Thinking
			*t += d.Thinking
			return s.chunk(llm.ChunkChoice{ReasoningContent: llm.Ptr(d.Thinking)}), nil
		}
	case "signature_delta":
		if b.typ == "thinking" {
			s.thoughts[b.thought].Signature += d.Signature
		}
	}
	return nil, nil // citations_delta and later additions
}

func (s *stream) chunk(c llm.ChunkChoice) *llm.Chunk {
	return &llm.Chunk{ID: s.id, Model: s.model, Created: s.created, Choices: []llm.ChunkChoice{c}}
}

func (s *stream) usageChunk() *llm.Chunk {
	s.usageSent = true
	return &llm.Chunk{ID: s.id, Model: s.model, Created: s.created, Usage: decodeUsage(&s.usage)}
}

// fail records why reading stopped. A clean end of body without message_stop is accepted once
// the finish reason was seen (the usage chunk is still delivered); before that it is a broken
// stream.
func (s *stream) fail(err error) (*llm.Chunk, error) {
	switch {
	case errors.Is(err, io.EOF) && s.finished:
		s.err = io.EOF
		if !s.usageSent {
			return s.usageChunk(), nil
		}
	case errors.Is(err, io.EOF):
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, io.ErrUnexpectedEOF, true)
	case errors.Is(err, wireutil.ErrLineTooLong):
		s.err = s.badEvent(err)
	default:
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, err, true)
	}
	return nil, s.err
}

func (s *stream) badEvent(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("anthropic: decode stream event: %w", err), "the upstream provider sent an invalid stream")
	e.Provider = s.provider
	return e
}

// Close releases the upstream connection and the call's context. Safe to call more than once,
// and from another goroutine to abort a blocked Recv (which then returns KindCanceled).
func (s *stream) Close() error {
	s.once.Do(func() {
		s.cancel()
		_ = s.body.Close()
	})
	return nil
}
