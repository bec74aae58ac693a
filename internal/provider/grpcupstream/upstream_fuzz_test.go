package grpcupstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
)

// FuzzUpstreamMessage decodes arbitrary bytes as what an upstream sends (sel%4 picks the
// message: a google.rpc.Status, a chat response, a stream chunk, an embeddings response) and runs
// the adapter's conversion. Nothing may panic; a status becomes an *llm.Error of a known kind,
// naming the provider, with an HTTP status a REST edge can write (400 to 599); an embeddings
// answer is refused or has one vector per input.
func FuzzUpstreamMessage(f *testing.F) {
	add := func(sel uint8, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sel, b)
	}
	for _, e := range []*llm.Error{
		{Kind: llm.KindBusiness, Message: "too long", Code: "context_length_exceeded", HTTPStatus: 422, Provider: "up", UpstreamStatus: 400, UpstreamMessage: "x"},
		{Kind: llm.KindRateLimited, Message: "slow down", RetryAfter: 3 * time.Second},
		{Kind: llm.KindInvalidArgument, Message: "bad", Param: "messages[0]"},
	} {
		add(0, errmap.ToStatus(e).Proto())
	}
	add(0, status.New(codes.ResourceExhausted, "grpc: received message larger than max").Proto())
	add(1, &pb.CreateChatCompletionResponse{Id: "c", Model: "m", Choices: []*pb.Choice{{Message: &pb.AssistantMessage{Content: proto.String("hi"),
		ToolCalls: []*pb.ToolCall{{Id: "t", Function: &pb.FunctionCall{Name: "f", Arguments: "{}"}}}}, FinishReason: "stop"}}, Usage: &pb.Usage{TotalTokens: 3}})
	add(2, &pb.StreamChatCompletionResponse{Id: "c", Choices: []*pb.ChunkChoice{{Delta: &pb.Delta{Role: "assistant", Content: proto.String("h"),
		ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "t", Function: &pb.FunctionCall{Name: "f"}}}}}}, Usage: &pb.Usage{PromptTokens: 1}})
	add(3, &pb.CreateEmbeddingResponse{Model: "e", Data: []*pb.Embedding{{Index: 1, Embedding: []float32{1, 2}}, {Index: 0, EmbeddingBytes: []byte{0, 0, 128, 63}}}})
	f.Fuzz(func(t *testing.T, sel uint8, b []byte) {
		switch sel % 4 {
		case 0:
			var st spb.Status
			if proto.Unmarshal(b, &st) != nil {
				return
			}
			err := status.ErrorProto(&st)
			if err == nil { // code OK: not an error
				return
			}
			checkClassified(t, grpcupstream.Classify(context.Background(), "fz", err, sel&4 != 0))
		case 1:
			var m pb.CreateChatCompletionResponse
			if proto.Unmarshal(b, &m) == nil {
				_ = pbconv.ChatResponseFromPB(&m)
			}
		case 2:
			var m pb.StreamChatCompletionResponse
			if proto.Unmarshal(b, &m) == nil {
				_ = pbconv.ChunkFromPB(&m)
			}
		case 3:
			var m pb.CreateEmbeddingResponse
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			for n := range 3 {
				if r, err := pbconv.EmbeddingResponseFromPB(&m, n); err == nil && len(r.Vectors) != n {
					t.Fatalf("%d vectors for %d inputs", len(r.Vectors), n)
				}
			}
		}
	})
}

func checkClassified(t *testing.T, e *llm.Error) {
	t.Helper()
	if e == nil {
		t.Fatal("Classify returned nil")
	}
	if k, ok := llm.KindByName(e.Kind.String()); !ok || k != e.Kind {
		t.Fatalf("unknown kind %d", e.Kind)
	}
	if e.Provider != "fz" {
		t.Fatalf("Provider = %q", e.Provider)
	}
	if s := e.Status(); s < 400 || s > 599 {
		t.Fatalf("HTTP status %d: %v", s, e)
	}
	if !errors.Is(e, e.Err) {
		t.Fatalf("cause not kept")
	}
}
