package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// maxEventSize bounds one SSE event (long base64 or tool-argument lines are legitimate; an
// endless line is not).
const maxEventSize = 8 << 20

// stream reads an OpenAI SSE answer incrementally, one event per Recv.
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	provider string
	status   int
	body     io.ReadCloser
	events   *wireutil.SSEReader

	prev     chunk // the ids of the last event, whose strings the next one reuses
	finished bool  // a finish_reason was seen: a missing [DONE] is then not an error
	err      error // sticky: io.EOF or the error that ended the stream
	once     sync.Once
}

func newStream(ctx context.Context, cancel context.CancelFunc, provider string, resp *http.Response) *stream {
	return &stream{
		ctx: ctx, cancel: cancel, provider: provider, status: resp.StatusCode,
		body: resp.Body, events: wireutil.NewSSEReader(resp.Body, maxEventSize),
	}
}

// Recv returns the next chunk, io.EOF after [DONE], or an *llm.Error: an error event sent by the
// upstream, a broken connection (KindUpstream), the end of ctx (KindCanceled, KindTimeout).
// Events without content (no choices and no usage, e.g. Azure's prompt_filter_results) are skipped.
func (s *stream) Recv() (*llm.Chunk, error) {
	for s.err == nil {
		data, event, err := s.events.Next()
		if err != nil {
			s.fail(err)
			break
		}
		if bytes.Equal(data, []byte("[DONE]")) {
			s.err = io.EOF
			break
		}
		if event == "error" {
			s.err = classifyStreamError(s.provider, s.status, data)
			break
		}
		var w chunk
		if err := decodeChunkJSON(data, &w, &s.prev); err != nil {
			s.err = s.badEvent(err)
			break
		}
		if hasError(w.Error) {
			s.err = classifyStreamError(s.provider, s.status, w.Error)
			break
		}
		s.prev = chunk{ID: w.ID, Model: w.Model, SystemFingerprint: w.SystemFingerprint}
		if len(w.Choices) == 0 && w.Usage == nil {
			continue
		}
		c := decodeChunk(&w)
		for i := range c.Choices {
			if c.Choices[i].FinishReason != "" {
				s.finished = true
			}
		}
		return c, nil
	}
	return nil, s.err
}

// fail records why reading stopped. A clean end of body without [DONE] is accepted once a
// finish_reason was seen (some compatible servers omit [DONE]); before that it is a broken stream.
func (s *stream) fail(err error) {
	switch {
	case errors.Is(err, io.EOF) && s.finished:
		s.err = io.EOF
	case errors.Is(err, io.EOF):
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, io.ErrUnexpectedEOF, true)
	case errors.Is(err, wireutil.ErrLineTooLong):
		s.err = s.badEvent(err)
	default:
		s.err = wireutil.ClassifyTransport(s.ctx, s.provider, err, true)
	}
}

func (s *stream) badEvent(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("openai: decode stream event: %w", err), "the upstream provider sent an invalid stream")
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
