package gateway

import (
	"context"
	"errors"
	"io"

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
	return &sseStream{ServerStreamingClient: s, first: first}, nil
}

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
