package server

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/router"
)

type chatService struct {
	pb.UnimplementedChatServiceServer
	routes func() *router.Router
}

// CreateChatCompletion resolves the model, calls the provider and answers with its response. The
// answer's model is the upstream's model name; the route header names "provider/model".
func (s *chatService) CreateChatCompletion(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	target, err := s.routes().Resolve(in.GetModel())
	if err != nil {
		return nil, err
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(RouteHeader, target.Name()))
	req, err := pbconv.ChatRequestFromPB(in, target.Model, false)
	if err != nil {
		return nil, err
	}
	ctx, warnings := llm.WithWarnings(ctx)
	resp, err := target.Provider.Chat(ctx, req)
	setWarnings(ctx, warnings, grpc.SetHeader)
	if err != nil {
		return nil, err
	}
	return chatResponse(resp, target.Model), nil
}

// StreamChatCompletion resolves the model, starts the provider's stream and forwards each chunk as
// soon as it arrives. Every chunk carries the same id and created time; each choice's first delta
// carries role "assistant". The usage chunk is forwarded only when the client asked for it with
// stream_options.include_usage. An error after chunks were sent ends the stream with that error.
func (s *chatService) StreamChatCompletion(in *pb.StreamChatCompletionRequest, stream grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	ctx := stream.Context()
	inner := in.GetRequest()
	target, err := s.routes().Resolve(inner.GetModel())
	if err != nil {
		return err
	}
	_ = stream.SetHeader(metadata.Pairs(RouteHeader, target.Name()))
	req, err := pbconv.ChatRequestFromPB(inner, target.Model, true)
	if err != nil {
		return err
	}
	ctx, warnings := llm.WithWarnings(ctx)
	up, err := target.Provider.ChatStream(ctx, req)
	setWarnings(ctx, warnings, func(_ context.Context, md metadata.MD) error { return stream.SetHeader(md) })
	if err != nil {
		return err
	}
	defer up.Close()

	cv := chunkConverter{includeUsage: req.IncludeStreamUsage, model: target.Model}
	for {
		c, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		out := cv.convert(c)
		if out == nil {
			continue
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// chatResponse converts a provider's answer, filling in an id and the created time when the
// provider sent none, and model when the provider names no model.
func chatResponse(r *llm.ChatResponse, model string) *pb.CreateChatCompletionResponse {
	out := pbconv.ChatResponseToPB(r)
	if out.Id == "" {
		out.Id = newID("chatcmpl-")
	}
	if out.Created == 0 {
		out.Created = time.Now().Unix()
	}
	if out.Model == "" {
		out.Model = model
	}
	return out
}

// chunkConverter turns a provider's chunks into stream responses. It fixes the id and created time
// at the first chunk and remembers which choices have had their role sent.
type chunkConverter struct {
	includeUsage bool
	model        string // upstream model name, until a chunk names one

	started  bool
	id       string
	created  int64
	roleSent uint64 // bit i: choice i has had its role; choices ≥ 64 get no role fix-up
}

// convert returns the response for c, or nil if nothing of c is to be sent.
func (cv *chunkConverter) convert(c *llm.Chunk) *pb.StreamChatCompletionResponse {
	u := c.Usage
	if !cv.includeUsage {
		u = nil
	}
	if len(c.Choices) == 0 && u == nil {
		return nil
	}
	if !cv.started {
		cv.started = true
		cv.id, cv.created = c.ID, c.Created
		if cv.id == "" {
			cv.id = newID("chatcmpl-")
		}
		if cv.created == 0 {
			cv.created = time.Now().Unix()
		}
	}
	if c.Model != "" {
		cv.model = c.Model
	}
	out := &pb.StreamChatCompletionResponse{
		Id:                cv.id,
		Object:            "chat.completion.chunk",
		Created:           cv.created,
		Model:             cv.model,
		Usage:             pbconv.UsageToPB(u),
		SystemFingerprint: c.SystemFingerprint,
	}
	if len(c.Choices) > 0 {
		out.Choices = make([]*pb.ChunkChoice, len(c.Choices))
	}
	for i := range c.Choices {
		ch := pbconv.ChunkChoiceToPB(&c.Choices[i])
		if ch.Index >= 0 && ch.Index < 64 {
			bit := uint64(1) << ch.Index
			if cv.roleSent&bit == 0 {
				cv.roleSent |= bit
				if ch.Delta.Role == "" {
					ch.Delta.Role = llm.RoleAssistant
				}
			}
		}
		out.Choices[i] = ch
	}
	return out
}

// setWarnings sends the adapter's warnings (parameters it dropped or clamped) as response headers.
// Adapters convert the request before their first upstream byte, so the warnings are complete
// when Chat or ChatStream returns, before the first message is sent.
func setWarnings(ctx context.Context, w *llm.Warnings, set func(context.Context, metadata.MD) error) {
	list := w.List()
	if len(list) == 0 {
		return
	}
	_ = set(ctx, metadata.MD{WarningHeader: list})
}
