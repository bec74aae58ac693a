package server

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/session"
)

type chatService struct {
	pb.UnimplementedChatServiceServer
	routes   func() *router.Router
	sessions *session.Manager // nil: sessions are not enabled
}

// withSession binds req to the session the request names, if any (see session.Manager.Begin),
// echoes the session's id with setHeader, and returns the model to route. Without a session it
// returns in's model and a nil turn.
func (s *chatService) withSession(ctx context.Context, in *pb.CreateChatCompletionRequest, req *llm.ChatRequest, setHeader func(metadata.MD) error) (*session.Turn, string, error) {
	id := sessionID(ctx, in)
	if id == "" {
		return nil, in.GetModel(), nil
	}
	if s.sessions == nil {
		return nil, "", llm.Errorf(llm.KindInvalidArgument, "sessions are not enabled on this gateway")
	}
	p, err := principal(ctx)
	if err != nil {
		return nil, "", err
	}
	t, err := s.sessions.Begin(ctx, p, id, in.GetModel(), req)
	if err != nil {
		return nil, "", err
	}
	_ = setHeader(metadata.Pairs(mdkey.SessionID, t.SessionID()))
	return t, t.Model(), nil
}

// CreateChatCompletion plans the route for the model and runs it (retries, fallbacks), answering
// with the response of the target that succeeded. The answer's model is the upstream's model
// name; the route headers name "provider/model", the decision and the attempts (see routed).
//
// The call's record gets the answer's usage, estimated when the upstream reported none
// (recordUsage); the client's answer carries only what the upstream reported.
//
// With a session (session_id or the x-switchyard-session-id header) the request carries the
// session's system prompt, parameters and history (docs/sessions.md), and the request's messages
// and the answer are appended to the session before the answer is returned. A failed call
// appends nothing.
func (s *chatService) CreateChatCompletion(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	req, err := pbconv.ChatRequestFromPB(in, "", false)
	if err != nil {
		return nil, err
	}
	t, model, err := s.withSession(ctx, in, req, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	if err != nil {
		return nil, err
	}
	est := router.EstimateChat(req)
	plan, err := s.routes().Plan(model, est)
	if err != nil {
		return nil, err
	}
	resp, res, err := plan.Chat(ctx, req)
	call := routed(ctx, res, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	if err != nil {
		return nil, err
	}
	var size answerSize
	if resp.Usage == nil {
		size.addResponse(resp)
	}
	recordUsage(call, resp.Usage, est, size)
	if t != nil {
		if err := t.Commit(ctx, session.AnswerMessage(resp)); err != nil {
			return nil, err
		}
	}
	out := chatResponse(resp, res.Target.Model)
	call.SetResponseModel(out.Model)
	return out, nil
}

// StreamChatCompletion plans the route for the model and starts the stream: retries and
// fallbacks happen until the first chunk arrives, then the headers are sent and each chunk is
// forwarded as soon as it arrives. Every chunk carries the same id and created time; each
// choice's first delta carries role "assistant". The usage chunk is forwarded only when the
// client asked for it with stream_options.include_usage; the adapters ask their upstream for it
// whether or not the client did, and the call's record gets the usage either way, estimated
// from the request and the streamed text when the upstream reported none (recordUsage). An
// error after chunks were sent ends the stream with that error.
//
// With a session, the streamed answer's first choice is accumulated and appended to the session
// with the request's messages when the upstream stream ends cleanly, before the stream ends; an
// error or a client that goes away appends nothing.
func (s *chatService) StreamChatCompletion(in *pb.StreamChatCompletionRequest, stream grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	ctx := stream.Context()
	inner := in.GetRequest()
	req, err := pbconv.ChatRequestFromPB(inner, "", true)
	if err != nil {
		return err
	}
	t, model, err := s.withSession(ctx, inner, req, stream.SetHeader)
	if err != nil {
		return err
	}
	est := router.EstimateChat(req)
	plan, err := s.routes().Plan(model, est)
	if err != nil {
		return err
	}
	up, res, err := plan.ChatStream(ctx, req)
	call := routed(ctx, res, stream.SetHeader)
	if err != nil {
		return err
	}
	defer up.Close()
	cv := chunkConverter{includeUsage: req.IncludeStreamUsage, model: res.Target.Model}
	var (
		usage *llm.Usage // the last usage the upstream reported
		size  answerSize // what was streamed, for the estimate when it reported none
	)
	defer func() {
		recordUsage(call, usage, est, size)
		call.SetResponseModel(cv.model)
	}()

	var answer *session.AnswerBuilder
	if t != nil {
		answer = new(session.AnswerBuilder)
	}
	for {
		c, err := up.Recv()
		if errors.Is(err, io.EOF) {
			if t == nil {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err // the client went away: the turn is not kept
			}
			return t.Commit(ctx, answer.Message())
		}
		if err != nil {
			return err
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		size.addChunk(c)
		if answer != nil {
			answer.Add(c)
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

// routed reports the route of a request the router has answered or given up on: in the
// response headers, with setHeader (the target that answered, or the last one tried; the
// decision; the attempts; the answering adapter's warnings), and in the call's record, which it
// returns (nil outside the interceptor chain).
func routed(ctx context.Context, res router.Result, setHeader func(metadata.MD) error) *callinfo.Record {
	md := metadata.MD{
		mdkey.RouteDecision: {res.Decision},
		mdkey.Attempts:      {res.AttemptsString()},
	}
	var target string
	if res.Target.Provider != nil {
		target = res.Target.Name()
		md[mdkey.Route] = []string{target}
	}
	if len(res.Warnings) > 0 {
		md[mdkey.Warning] = res.Warnings
	}
	_ = setHeader(md)
	call := callinfo.FromContext(ctx)
	call.SetRoute(target, res.Attempts)
	return call
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
