package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
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
	r        *bufio.Reader

	data     []byte // the current event's data, reused across events
	line     []byte // scratch for lines longer than the reader's buffer
	finished bool   // a finish_reason was seen: a missing [DONE] is then not an error
	err      error  // sticky: io.EOF or the error that ended the stream
	once     sync.Once
}

func newStream(ctx context.Context, cancel context.CancelFunc, provider string, resp *http.Response) *stream {
	return &stream{
		ctx: ctx, cancel: cancel, provider: provider, status: resp.StatusCode,
		body: resp.Body, r: bufio.NewReaderSize(resp.Body, 16<<10),
	}
}

// Recv returns the next chunk, io.EOF after [DONE], or an *llm.Error: an error event sent by the
// upstream, a broken connection (KindUpstream), the end of ctx (KindCanceled, KindTimeout).
// Events without content (no choices and no usage, e.g. Azure's prompt_filter_results) are skipped.
func (s *stream) Recv() (*llm.Chunk, error) {
	for s.err == nil {
		data, event, err := s.nextEvent()
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
		if err := json.Unmarshal(data, &w); err != nil {
			s.err = s.badEvent(err)
			break
		}
		if hasError(w.Error) {
			s.err = classifyStreamError(s.provider, s.status, w.Error)
			break
		}
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
		s.err = classifyTransport(s.ctx, s.provider, io.ErrUnexpectedEOF, true)
	default:
		var le *llm.Error
		if errors.As(err, &le) {
			s.err = le
		} else {
			s.err = classifyTransport(s.ctx, s.provider, err, true)
		}
	}
}

func (s *stream) badEvent(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("openai: decode stream event: %w", err), "the upstream provider sent an invalid stream")
	e.Provider = s.provider
	return e
}

// nextEvent reads lines up to the blank line that ends an SSE event and returns its data (data
// lines joined by "\n"; the slice is valid until the next call) and its event name. Comments,
// id and retry lines are ignored. At the end of the body a pending event is returned first.
func (s *stream) nextEvent() (data []byte, event string, err error) {
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && hasData {
				return s.data, event, nil
			}
			return nil, "", err
		}
		if len(line) == 0 {
			if hasData {
				return s.data, event, nil
			}
			event = "" // an event without data is dropped
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > maxEventSize {
				return nil, "", s.badEvent(fmt.Errorf("event larger than %d bytes", maxEventSize))
			}
			s.data = append(s.data, value...)
			hasData = true
		case "event":
			event = string(value)
		}
	}
}

// readLine returns the next line without its line ending ("\n", "\r\n"). The slice is valid
// until the next read.
func (s *stream) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.line = append(s.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.line) > maxEventSize {
				return nil, s.badEvent(fmt.Errorf("line longer than %d bytes", maxEventSize))
			}
			line, err = s.r.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
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
