package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

// chatClient is the ChatServiceClient the gateway's handlers call. StreamChatCompletion waits for
// the first message before returning, so an error before the first chunk reaches the gateway's
// error handler as an ordinary error (a real HTTP status with an OpenAI error body) instead of a
// 200 event stream; and it ends a clean stream with doneChunk, which encodes as "data: [DONE]".
type chatClient struct {
	pb.ChatServiceClient
}

func (c chatClient) StreamChatCompletion(ctx context.Context, in *pb.StreamChatCompletionRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[pb.StreamChatCompletionResponse], error) {
	s, err := c.ChatServiceClient.StreamChatCompletion(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	first, err := s.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return &sseStream{ServerStreamingClient: s, eof: true}, nil
	case err != nil:
		// The generated handler records response metadata only for streams that start, so the
		// headers of a stream that failed before its first message travel with the error.
		hdr, _ := s.Header()
		return nil, &earlyStreamError{err: err, header: hdr, trailer: s.Trailer()}
	}
	sse := &sseStream{ServerStreamingClient: s, first: first}
	if c, ok := ctx.Value(coalescerKey{}).(*coalescer); ok {
		sse.inner = readyFunc(s)
		c.ready = sse.ready
	}
	return sse, nil
}

// readier is a client stream that can tell whether its next message is already here: the
// in-process channel's (internal/inproc). A gRPC connection's stream cannot, and is flushed
// after every event.
type readier interface{ Ready() bool }

// readyFunc returns s's Ready, looking through the generated client's wrapper; nil when s has
// none.
func readyFunc(s grpc.ServerStreamingClient[pb.StreamChatCompletionResponse]) func() bool {
	if r, ok := s.(readier); ok {
		return r.Ready
	}
	if g, ok := s.(*grpc.GenericClientStream[pb.StreamChatCompletionRequest, pb.StreamChatCompletionResponse]); ok {
		if r, ok := g.ClientStream.(readier); ok {
			return r.Ready
		}
	}
	return nil
}

// coalescerKey is the context key under which the router leaves a streaming request's
// *coalescer for StreamChatCompletion to find.
type coalescerKey struct{}

// coalescer is the response writer of a streamed chat completion. grpc-gateway flushes after
// every event; the coalescer skips that flush when the stream's next event is already waiting
// (ready), so events that arrive together leave in one write instead of one write(2) each.
// Nothing is ever held while the gateway waits: the last event before a wait is always flushed,
// and so is the first one (the headers and the first token go out at once).
type coalescer struct {
	http.ResponseWriter
	flushed bool        // the first flush has happened
	ready   func() bool // nil until the stream starts, or when it cannot tell
}

func (c *coalescer) FlushError() error {
	if c.flushed && c.ready != nil && c.ready() {
		return nil
	}
	c.flushed = true
	return http.NewResponseController(c.ResponseWriter).Flush()
}

func (c *coalescer) Flush() { _ = c.FlushError() }

// Unwrap lets http.ResponseController reach the connection's writer (deadlines).
func (c *coalescer) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// earlyStreamError is a stream's failure before its first message, with the response metadata
// the server sent (x-switchyard-route, x-switchyard-attempts, retry-after ...).
type earlyStreamError struct {
	err             error
	header, trailer metadata.MD
}

func (e *earlyStreamError) Error() string              { return e.err.Error() }
func (e *earlyStreamError) Unwrap() error              { return e.err }
func (e *earlyStreamError) GRPCStatus() *status.Status { return status.Convert(e.err) }

// sseStream replays the peeked first message, then the rest, then doneChunk once after a clean
// end. An error after the first message is returned as is; the gateway writes it as an error
// event and ends the response without [DONE].
type sseStream struct {
	grpc.ServerStreamingClient[pb.StreamChatCompletionResponse]
	first    *pb.StreamChatCompletionResponse
	eof      bool
	sentDone bool
	inner    func() bool // the stream's Ready; nil: unknown
}

// ready reports whether Recv would return without waiting.
func (s *sseStream) ready() bool {
	if s.first != nil || s.eof || s.sentDone {
		return true
	}
	return s.inner != nil && s.inner()
}

func (s *sseStream) Recv() (*pb.StreamChatCompletionResponse, error) {
	if m := s.first; m != nil {
		s.first = nil
		return m, nil
	}
	if !s.eof {
		m, err := s.ServerStreamingClient.Recv()
		if !errors.Is(err, io.EOF) {
			return m, err
		}
		s.eof = true
	}
	if !s.sentDone {
		s.sentDone = true
		return doneChunk, nil
	}
	return nil, io.EOF
}
