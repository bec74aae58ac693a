package cohere

import (
	"bytes"
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

// maxEventSize bounds one SSE event (long tool arguments are legitimate; an endless line is not).
const maxEventSize = 8 << 20

// stream reads a Chat v2 SSE answer incrementally, one event per Recv. Events are JSON objects
// discriminated by "type": message-start, content-start/delta/end (text or thinking),
// tool-plan-delta, tool-call-start/delta/end (keyed by Cohere's index, which text blocks share:
// calls are re-indexed 0..k), citation-start/end and debug (ignored), and message-end carrying
// finish_reason, usage and, on failure, error. The finish reason and the usage become two
// chunks; the body then ends (a "[DONE]" data line, which the spec also allows, ends it too).
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	provider string
	model    string
	created  int64
	body     io.ReadCloser
	sse      *wireutil.SSEReader

	id       string
	started  bool            // the role was sent
	calls    map[int32]int32 // Cohere's tool call index → canonical index
	finished bool            // message-end was seen
	pending  *llm.Chunk      // the usage chunk, sent after the finish chunk
	err      error           // sticky: io.EOF or the error that ended the stream
	once     sync.Once
}

func newStream(ctx context.Context, cancel context.CancelFunc, providerName, model string, created int64, resp *http.Response) *stream {
	return &stream{
		ctx: ctx, cancel: cancel, provider: providerName, model: model, created: created,
		body: resp.Body, sse: wireutil.NewSSEReader(resp.Body, maxEventSize), calls: map[int32]int32{},
	}
}

// Recv returns the next chunk, the usage chunk after the finish chunk, then io.EOF. Errors are
// *llm.Error values: a message-end with finish_reason ERROR or TIMEOUT or an error message
// (KindUpstream, KindTimeout), a connection that broke or a body that ended before
// message-end (KindUpstream), the end of ctx (KindCanceled, KindTimeout).
func (s *stream) Recv() (*llm.Chunk, error) {
	if p := s.pending; p != nil {
		s.pending = nil
		return p, nil
	}
	for s.err == nil {
		if s.finished {
			s.err = io.EOF
			break
		}
		data, _, err := s.sse.Next()
		if err != nil {
			return s.end(err)
		}
		if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
			return s.end(io.EOF)
		}
		var ev streamEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			s.err = s.badEvent(err)
			break
		}
		c, err := s.decode(&ev)
		if err != nil {
			s.err = err
			break
		}
		if c != nil {
			return c, nil
		}
	}
	return nil, s.err
}

// end handles the end of the body or a read error.
func (s *stream) end(err error) (*llm.Chunk, error) {
	var le *llm.Error
	switch {
	case errors.Is(err, io.EOF) && s.finished:
		s.err = io.EOF
	case errors.Is(err, io.EOF):
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, io.ErrUnexpectedEOF, true)
	case errors.Is(err, wireutil.ErrLineTooLong):
		s.err = s.badEvent(err)
	case errors.As(err, &le):
		s.err = le
	default:
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, err, true)
	}
	return nil, s.err
}

func (s *stream) chunk(ch llm.ChunkChoice) *llm.Chunk {
	if !s.started {
		ch.Role, s.started = llm.RoleAssistant, true
	}
	return &llm.Chunk{ID: s.id, Model: s.model, Created: s.created, Choices: []llm.ChunkChoice{ch}}
}

// decode converts one event, or returns nil when it carries nothing for the client.
func (s *stream) decode(ev *streamEvent) (*llm.Chunk, error) {
	if ev.ID != "" && s.id == "" {
		s.id = ev.ID
	}
	if ev.Type == "" && ev.Message != "" { // a bare error object
		return nil, streamError(s.provider, "ERROR", ev.Message)
	}
	d := ev.Delta
	var m *deltaMessage
	if d != nil {
		m = d.Message
	}
	switch ev.Type {
	case "content-start", "content-delta":
		var c contentPart
		if m == nil || len(m.Content) == 0 {
			return nil, nil
		}
		if err := json.Unmarshal(m.Content, &c); err != nil {
			return nil, s.badEvent(err)
		}
		switch {
		case c.Thinking != nil && *c.Thinking != "":
			return s.chunk(llm.ChunkChoice{ReasoningContent: c.Thinking}), nil
		case c.Text != nil && *c.Text != "":
			return s.chunk(llm.ChunkChoice{Content: c.Text}), nil
		}
	case "tool-plan-delta":
		if m != nil && m.ToolPlan != nil && *m.ToolPlan != "" {
			return s.chunk(llm.ChunkChoice{ReasoningContent: m.ToolPlan}), nil
		}
	case "tool-call-start":
		var tc toolCall
		if m == nil || len(m.ToolCalls) == 0 {
			return nil, s.badEvent(fmt.Errorf("tool-call-start without tool_calls"))
		}
		if err := json.Unmarshal(m.ToolCalls, &tc); err != nil {
			return nil, s.badEvent(err)
		}
		i := int32(len(s.calls))
		s.calls[ev.Index] = i
		return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: i, ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}}}), nil
	case "tool-call-delta":
		i, ok := s.calls[ev.Index]
		if !ok {
			return nil, s.badEvent(fmt.Errorf("tool-call-delta for index %d without tool-call-start", ev.Index))
		}
		var tc toolCall
		if m == nil || len(m.ToolCalls) == 0 {
			return nil, nil
		}
		if err := json.Unmarshal(m.ToolCalls, &tc); err != nil {
			return nil, s.badEvent(err)
		}
		if tc.Function.Arguments == "" {
			return nil, nil
		}
		return s.chunk(llm.ChunkChoice{ToolCalls: []llm.ToolCallDelta{{Index: i, Arguments: tc.Function.Arguments}}}), nil
	case "message-end":
		if d == nil {
			return nil, s.badEvent(fmt.Errorf("message-end without delta"))
		}
		if d.Error != "" || d.FinishReason == "ERROR" || d.FinishReason == "TIMEOUT" {
			return nil, streamError(s.provider, d.FinishReason, d.Error)
		}
		s.finished = true
		if u := decodeUsage(d.Usage); u != nil {
			s.pending = &llm.Chunk{ID: s.id, Model: s.model, Created: s.created, Usage: u}
		}
		return s.chunk(llm.ChunkChoice{FinishReason: finishReason(d.FinishReason, len(s.calls) > 0)}), nil
	}
	// message-start, content-end, tool-call-end, citation-start/end, debug and types added later.
	return nil, nil
}

func (s *stream) badEvent(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("cohere: decode stream event: %w", err), "the upstream provider sent an invalid stream")
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
