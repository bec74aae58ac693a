package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// maxEventSize bounds one SSE event (inline images and long function arguments are legitimate;
// an endless line is not).
const maxEventSize = 8 << 20

// stream reads a streamGenerateContent?alt=sse answer incrementally, one event per Recv. Each
// event is a GenerateContentResponse; there is no terminator: the body ends after the event
// carrying the finishReason. usageMetadata is cumulative, so the last one seen is sent as the
// usage chunk once the body has ended.
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	provider string
	model    string
	created  int64
	body     io.ReadCloser
	sse      *wireutil.SSEReader

	cands    map[int32]*candState
	usage    *llm.Usage
	finished bool       // a finishReason was seen: the end of the body is then the end of the answer
	pending  *llm.Chunk // the finish reasons of the last event, sent after its content
	err      error      // sticky: io.EOF or the error that ended the stream
	once     sync.Once
}

// candState is what the stream remembers about one candidate.
type candState struct {
	started bool // the role was sent
	calls   int  // function calls so far: the next call's index
}

func newStream(ctx context.Context, cancel context.CancelFunc, providerName, model string, created int64, resp *http.Response) *stream {
	return &stream{
		ctx: ctx, cancel: cancel, provider: providerName, model: model, created: created,
		body: resp.Body, sse: wireutil.NewSSEReader(resp.Body, maxEventSize), cands: map[int32]*candState{},
	}
}

// Recv returns the next chunk, the usage chunk after the last event, then io.EOF. Errors are
// *llm.Error values: an error event sent by the upstream, a blocked prompt (KindBusiness), a
// connection that broke or a body that ended before a finishReason (KindUpstream), the end of
// ctx (KindCanceled, KindTimeout).
func (s *stream) Recv() (*llm.Chunk, error) {
	if p := s.pending; p != nil {
		s.pending = nil
		return p, nil
	}
	for s.err == nil {
		data, _, err := s.sse.Next()
		if err != nil {
			return s.end(err)
		}
		var w generateResponse
		if err := json.Unmarshal(data, &w); err != nil {
			s.err = s.badEvent(err)
			break
		}
		if w.Error != nil {
			s.err = classify(s.provider, http.StatusOK, w.Error)
			break
		}
		if e := blocked(s.provider, &w); e != nil {
			s.err = e
			break
		}
		if u := decodeUsage(w.UsageMetadata); u != nil {
			s.usage = u
		}
		if c := s.decode(&w); c != nil {
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
		if u := s.usage; u != nil {
			s.usage = nil
			return &llm.Chunk{Model: s.model, Created: s.created, Usage: u}, nil
		}
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

// decode converts one event, or returns nil when it carries nothing for the client (an event
// with usage only, say). Gemini puts the finishReason in the event with the last content; OpenAI
// clients expect it in a chunk of its own (the OpenAI SDK reports a finished tool call only when a
// later chunk arrives), so a choice that has both is split: content now, finish reason next.
func (s *stream) decode(w *generateResponse) *llm.Chunk {
	if w.ModelVersion != "" {
		s.model = w.ModelVersion
	}
	var choices []llm.ChunkChoice
	for i := range w.Candidates {
		c := &w.Candidates[i]
		st := s.cands[c.Index]
		if st == nil {
			st = &candState{}
			s.cands[c.Index] = st
		}
		ch := llm.ChunkChoice{Index: c.Index}
		var text, thought strings.Builder
		var hasText, hasThought bool
		if c.Content != nil {
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				switch {
				case p.FunctionCall != nil:
					// Gemini sends a call whole: one delta carries id, name and all arguments.
					ch.ToolCalls = append(ch.ToolCalls, llm.ToolCallDelta{
						Index: int32(st.calls), ID: callID(w.ResponseID, c.Index, st.calls, p),
						Name: p.FunctionCall.Name, Arguments: callArguments(p.FunctionCall.Args),
					})
					st.calls++
				case p.Text == nil || *p.Text == "":
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
		ch.FinishReason = finishReason(c.FinishReason, st.calls > 0)
		if ch.FinishReason != "" {
			s.finished = true
		}
		if !hasText && !hasThought && len(ch.ToolCalls) == 0 && ch.FinishReason == "" {
			continue
		}
		if !st.started {
			ch.Role, st.started = llm.RoleAssistant, true
		}
		choices = append(choices, ch)
	}
	if len(choices) == 0 {
		return nil
	}
	var finishes []llm.ChunkChoice
	for i := range choices {
		ch := &choices[i]
		if ch.FinishReason != "" && (ch.Content != nil || ch.ReasoningContent != nil || len(ch.ToolCalls) > 0) {
			finishes = append(finishes, llm.ChunkChoice{Index: ch.Index, FinishReason: ch.FinishReason})
			ch.FinishReason = ""
		}
	}
	if len(finishes) > 0 {
		s.pending = &llm.Chunk{ID: w.ResponseID, Model: s.model, Created: s.created, Choices: finishes}
	}
	return &llm.Chunk{ID: w.ResponseID, Model: s.model, Created: s.created, Choices: choices}
}

func (s *stream) badEvent(err error) *llm.Error {
	e := llm.Wrap(llm.KindUpstream, fmt.Errorf("gemini: decode stream event: %w", err), "the upstream provider sent an invalid stream")
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
