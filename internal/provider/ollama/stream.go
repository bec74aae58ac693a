package ollama

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

// maxLineSize bounds one NDJSON line (a whole tool call or a long fragment is legitimate; an
// endless line is not).
const maxLineSize = 8 << 20

// stream reads an NDJSON answer incrementally, one line per Recv.
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	provider string
	body     io.ReadCloser
	lines    *wireutil.LineReader

	id        string
	roleSent  bool
	calls     int32      // tool calls seen so far; the next one's index
	pending   *llm.Chunk // the usage report, returned after the finish chunk
	err       error      // sticky: io.EOF or the error that ended the stream
	closeOnce sync.Once
}

func newStream(ctx context.Context, cancel context.CancelFunc, provider string, resp *http.Response) *stream {
	return &stream{
		ctx: ctx, cancel: cancel, provider: provider, body: resp.Body,
		lines: wireutil.NewLineReader(resp.Body, maxLineSize), id: newID("chatcmpl-"),
	}
}

// Recv returns the next chunk: one per line with content, thinking or tool calls, then for the
// done:true line a chunk with the finish reason followed by the usage chunk, then io.EOF. An
// {"error":...} line, a broken connection or an end of body before done:true end the stream with
// an *llm.Error, as does the end of ctx (KindCanceled, KindTimeout).
func (s *stream) Recv() (*llm.Chunk, error) {
	if s.pending != nil {
		c := s.pending
		s.pending, s.err = nil, io.EOF
		return c, nil
	}
	for s.err == nil {
		line, err := s.lines.ReadLine()
		if err != nil {
			s.fail(err)
			break
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var w chatResponse
		if err := json.Unmarshal(line, &w); err != nil {
			s.err = badAnswer(s.provider, fmt.Errorf("decode stream line: %w", err))
			break
		}
		if w.Error != nil {
			s.err = streamError(s.provider, *w.Error)
			break
		}
		if c := s.chunk(&w); c != nil {
			return c, nil
		}
	}
	return nil, s.err
}

// chunk converts one line; nil for a line without anything to report.
func (s *stream) chunk(w *chatResponse) *llm.Chunk {
	m := &w.Message
	ch := llm.ChunkChoice{}
	if m.Content != "" {
		ch.Content = llm.Ptr(m.Content)
	}
	if m.Thinking != "" {
		ch.ReasoningContent = llm.Ptr(m.Thinking)
	}
	for _, tc := range m.ToolCalls { // tool calls arrive whole, one delta each
		ch.ToolCalls = append(ch.ToolCalls, llm.ToolCallDelta{
			Index: s.calls, ID: callID(tc.ID), Name: tc.Function.Name, Arguments: compactArgs(tc.Function.Arguments),
		})
		s.calls++
	}
	c := &llm.Chunk{ID: s.id, Model: w.Model, Created: created(w.CreatedAt)}
	if w.Done {
		ch.FinishReason = finishReason(w.DoneReason, s.calls > 0)
		s.pending = &llm.Chunk{ID: s.id, Model: w.Model, Created: c.Created, Usage: usage(w)}
	} else if ch.Content == nil && ch.ReasoningContent == nil && len(ch.ToolCalls) == 0 {
		return nil
	}
	if !s.roleSent {
		ch.Role, s.roleSent = llm.RoleAssistant, true
	}
	c.Choices = []llm.ChunkChoice{ch}
	return c
}

// fail records why reading stopped: the body ended before done:true, the line limit, or a
// transport error.
func (s *stream) fail(err error) {
	switch {
	case errors.Is(err, io.EOF):
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, io.ErrUnexpectedEOF, true)
	case errors.Is(err, wireutil.ErrLineTooLong):
		s.err = badAnswer(s.provider, err)
	default:
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, err, true)
	}
}

// Close releases the upstream connection and the call's context. Safe to call more than once,
// and from another goroutine to abort a blocked Recv (which then returns KindCanceled).
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		_ = s.body.Close()
	})
	return nil
}
